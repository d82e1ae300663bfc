"""The recipe presets on the Model page: pick a paper's recipe, read what it does, see what it sets.

Choosing a preset sets the mode (and the freeze depth or LP-FT) it implies, so the block drawing below shows at
once what it trains; the choice is kept like every Model page setting (`state.keep`), also across a refresh.
Changing the mode to one the recipe cannot use drops the recipe, so the page never shows a setting that the Train
page would refuse.
"""

from __future__ import annotations

import streamlit as st

from tl_core.config import RECIPES
from tl_core.engine import recipes
from tl_core.presentation import plots

from . import state

NONE = "none"
OPTIONS = [NONE, *RECIPES]


def _label(name: str) -> str:
    return "None: the mode and freeze depth alone" if name == NONE else recipes.CATALOGUE[name].label


def _set(key: str, value) -> None:
    st.session_state[key] = value
    state.set_setting(key, value)


def _recipe_picked() -> None:
    """Apply what the recipe implies: its mode, and for the fine-tuning recipes the freeze depth and LP-FT."""
    name = st.session_state.get("recipe", NONE)
    if name == NONE:
        return
    _set("mode", RECIPES[name])
    if name in ("gradual", "discriminative"):  # every block takes part: gradually, or at its own rate
        _set("freeze_depth", 0)
    if RECIPES[name] == "finetune":
        _set("lp_ft", name == "lp-ft")


def mode_changed() -> None:
    """The mode radio's (and the freeze slider's) callback: a recipe that needs another mode is dropped."""
    name = st.session_state.get("recipe", state.get("recipe"))
    if name in RECIPES and RECIPES[name] != st.session_state.get("mode"):
        _set("recipe", NONE)


def lp_ft_changed() -> None:
    """The LP-FT checkbox's callback: unticking it while the LP-FT preset is chosen drops the preset."""
    if not st.session_state.get("lp_ft") and st.session_state.get("recipe", state.get("recipe")) == "lp-ft":
        _set("recipe", NONE)


def recipe_picker(info: dict) -> tuple[str | None, int | None]:
    """The preset picker with its paper, paragraph and settings; for surgical fine-tuning, the block to tune.
    Returns (recipe or None, surgical block or None) for the run plan."""
    blocks = info["blocks"]
    state.seed_widget("recipe", default=NONE, valid=lambda v: v in OPTIONS)
    name = st.selectbox("Recipe (a preset from the literature)", OPTIONS, key="recipe", format_func=_label,
                        on_change=_recipe_picked,
                        help="Classic ways to fine-tune, each from its paper: picking one sets the mode and what "
                             "trains; the drawing below shows it.")
    state.keep("recipe")
    if name == NONE:
        return None, None
    recipe = recipes.CATALOGUE[name]
    st.markdown(f"**{recipe.title}** · [{recipe.paper}]({recipe.url})")
    st.write(recipe.paragraph)
    st.markdown("It sets:\n" + "\n".join(f"- {line}" for line in recipe.sets))
    mode = state.get("mode")
    if mode != recipe.mode:  # e.g. a session restored from before the recipe existed
        st.warning(f"{recipe.title} needs the mode *{plots.mode_label(recipe.mode)}*: pick it above, or choose "
                   "no recipe.")
    block = None
    if name == "surgical":
        state.seed_widget("surgical_block", default=len(blocks) - 1,
                          valid=lambda v: isinstance(v, int) and 0 <= v < len(blocks))
        block = st.selectbox("Block to tune", list(range(len(blocks))), key="surgical_block",
                             format_func=lambda i: f"{i}: {blocks[i]}",
                             help="Lee et al. 2023: the first blocks for input-level shifts (blur, noise, colours), "
                                  "the last ones when the classes are new.")
        state.keep("surgical_block")
    if name == "adabn" and not info.get("batchnorm_layers"):
        st.warning(f"{info['name']} has no BatchNorm layers (it uses LayerNorm): AdaBN has nothing to adapt. "
                   "Pick a convolutional backbone such as mobilenet_v2.")
    return name, block
