"""The recipe presets on the Model page: pick a paper's recipe, read what it does, see what it sets.

Choosing a preset sets the mode (and the freeze depth or LP-FT) it implies, so the block drawing below shows at
once what it trains; the choice is kept like every Model page setting (`ui.settings.keep`), also across a refresh.
Changing the mode to one the recipe cannot use drops the recipe, so the page never shows a setting that the Train
page would refuse.
"""

from __future__ import annotations

import streamlit as st

from tl_core.config import RECIPES
from tl_core.engine import recipes
from tl_core.presentation import plots

from ui import settings

NONE = settings.NO_RECIPE
OPTIONS = settings.RECIPE_CHOICES


def _label(name: str) -> str:
    return "None: the mode and freeze depth alone" if name == NONE else recipes.CATALOGUE[name].label


def _recipe_picked() -> None:
    """Apply what the recipe implies: its mode, and for the fine-tuning recipes the freeze depth and LP-FT."""
    name = settings.get("recipe")
    if name == NONE or not settings.moved("recipe"):
        return
    settings.put("mode", RECIPES[name])
    if name in ("gradual", "discriminative"):  # every block takes part: gradually, or at its own rate
        settings.put("freeze_depth", 0)
    if RECIPES[name] == "finetune":
        settings.put("lp_ft", name == "lp-ft")


def mode_changed() -> None:
    """The mode radio's callback: a recipe that needs another mode is dropped."""
    if settings.moved("mode"):
        _drop_a_recipe_of_another_mode()


def _drop_a_recipe_of_another_mode() -> None:
    name = settings.get("recipe")
    if name in RECIPES and RECIPES[name] != settings.get("mode"):
        settings.put("recipe", NONE)


def freeze_depth_moved() -> None:
    """The freeze slider's callback: dragging the freeze depth only means something when fine-tuning, so it
    switches to fine-tuning (and drops a recipe that needs another mode)."""
    if settings.moved("freeze_depth") and settings.get("mode") != "finetune":
        settings.put("mode", "finetune")
        _drop_a_recipe_of_another_mode()


def lp_ft_changed() -> None:
    """The LP-FT checkbox's callback: unticking it while the LP-FT preset is chosen drops the preset."""
    if settings.moved("lp_ft") and not settings.get("lp_ft") and settings.get("recipe") == "lp-ft":
        settings.put("recipe", NONE)


def recipe_picker(info: dict) -> tuple[str | None, int | None]:
    """The preset picker with its paper, paragraph and settings; for surgical fine-tuning, the block to tune.
    Returns (recipe or None, surgical block or None) for the run plan."""
    blocks = info["blocks"]
    shown = settings.seed_widget("recipe")
    name = st.selectbox("Recipe (a preset from the literature)", OPTIONS, index=OPTIONS.index(shown), key="recipe",
                        format_func=_label,
                        on_change=_recipe_picked,
                        help="Classic ways to fine-tune, each from its paper: picking one sets the mode and what "
                             "trains; the drawing below shows it.")
    settings.keep("recipe")
    if name == NONE:
        return None, None
    recipe = recipes.CATALOGUE[name]
    st.markdown(f"**{recipe.title}** · [{recipe.paper}]({recipe.url})")
    st.write(recipe.paragraph)
    st.markdown("It sets:\n" + "\n".join(f"- {line}" for line in recipe.sets))
    mode = settings.get("mode")
    if mode != recipe.mode:  # e.g. a session restored from before the recipe existed
        st.warning(f"{recipe.title} needs the mode *{plots.mode_label(recipe.mode)}*: pick it above, or choose "
                   "no recipe.")
    block = None
    if name == "surgical":
        shown = settings.seed_widget("surgical_block", default=len(blocks) - 1,
                                     valid=lambda v: isinstance(v, int) and 0 <= v < len(blocks))
        block = st.selectbox("Block to tune", list(range(len(blocks))), index=shown, key="surgical_block",
                             format_func=lambda i: f"{i}: {blocks[i]}",
                             help="Lee et al. 2023: the first blocks for input-level shifts (blur, noise, colours), "
                                  "the last ones when the classes are new.")
        settings.keep("surgical_block")
    if name == "adabn" and not info.get("batchnorm_layers"):
        st.warning(f"{info['name']} has no BatchNorm layers (it uses LayerNorm): AdaBN has nothing to adapt. "
                   "Pick a convolutional backbone such as mobilenet_v2.")
    return name, block
