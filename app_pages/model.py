"""Model: the backbone, the mode, the freeze depth (with what it means in parameters) and the hyperparameters."""

import streamlit as st

from tl_core.presentation import blocks as blocks_chart, plots
from tl_core.inputs import shifts
from tl_core.config import BUDGET_HELP, CONVERGE_MIN_STEPS, MODE_HELP, MODES, default_lr
from ui import data_choice, messages, recipes_view, run_config, services, settings
from ui.wording import BUDGET_CAPTIONS, BUDGET_LABELS

st.title("Model")

choice = data_choice.current_data()
kind = choice.kind or "image"
family = run_config.FAMILY[kind]
n_classes = len(choice.classes) or 2
if choice.ready:
    st.caption(f"Data: **{choice.label}** ({kind}s, {len(choice.classes)} classes) — "
               f"showing the {family} backbones.")
else:
    st.info("No dataset loaded yet (Data page): showing the vision backbones for 2 classes.")

# ---- backbone ---------------------------------------------------------------------------------------
names = services.backbone_names(family)
with st.spinner("Reading the backbone list…"):
    infos = {n: services.describe(n) for n in names}
order = {"bundled": 0, "cached": 1, "download": 2}
names = sorted(names, key=lambda n: order.get(infos[n]["weights"], 3))


def _label(name: str) -> str:
    i = infos[name]
    return f"{name} · {i['arch']} · {plots.format_params(i['params'])} · {i['weights']}"


shown = settings.seed_widget("backbone", default=run_config.DEFAULT_BACKBONE[kind], valid=lambda v: v in names)
backbone = st.selectbox(f"Backbone ({family})", names, index=names.index(shown), key="backbone", format_func=_label,
                        help="bundled: weights ship with the app · cached: already downloaded · "
                             "needs download: not on this machine")
settings.keep("backbone")
info = infos[backbone]
blocks = info["blocks"]
n_blocks = len(blocks)

c1, c2, c3 = st.columns(3)
badge = {"bundled": ":green[:material/check_circle:] bundled", "cached": ":green[:material/check_circle:] cached",
         "download": ":orange[:material/cloud_download:] needs download"}[info["weights"]]
c1.metric("Weights", badge)
c2.metric("Backbone parameters", plots.format_params(info["params"]), help=f"{info['params']:,}")
if info.get("imagenet_acc1") is not None:
    c3.metric("ImageNet top-1", f"{info['imagenet_acc1']:.1f}%")
st.caption(info["description"])

# ---- mode -----------------------------------------------------------------------------------------------
shown = settings.seed_widget("mode")
mode = st.radio("Mode", MODES, index=MODES.index(shown), key="mode", format_func=plots.mode_label, horizontal=True,
                captions=[MODE_HELP[m] for m in MODES], on_change=recipes_view.mode_changed)
settings.keep("mode")

pretrained_mode = mode != "scratch"
if pretrained_mode:
    if info["weights"] == "download":
        st.warning(f"Pretrained weights for {backbone} are not on this machine (no network here): "
                   "tick *Random initialisation* to train the architecture from random weights, "
                   "or pick a bundled backbone.")
    st.checkbox("Random initialisation (no pretrained weights)", key="random_init",
                value=settings.initial("random_init"),
                help="The same architecture and mode, but starting from random weights: shows what pretraining adds.")
    settings.keep("random_init")

recipe, surgical_block = recipes_view.recipe_picker(info)

# ---- freeze depth -----------------------------------------------------------------------------------
st.subheader("Freeze depth")
surgical = recipe == "surgical"  # it tunes the one block picked above: no freeze depth applies
shown = settings.seed_widget("freeze_depth", default=run_config.default_depth(n_blocks),
                             valid=lambda v: v is not None and v <= n_blocks)
st.slider("Freeze depth", 0, n_blocks, value=shown, key="freeze_depth", on_change=recipes_view.freeze_depth_moved,
          disabled=surgical,
          help="Fine-tune: the first k blocks stay frozen, the rest and the new head train. "
               "Moving it switches the mode to Fine-tune.")
settings.keep("freeze_depth")
mode = settings.get("mode")
if surgical:
    st.caption("Surgical fine-tuning ignores the freeze depth: the block picked under *Block to tune* decides what "
               "trains, and every other block stays frozen.")
elif mode != "finetune":
    st.caption(f"The freeze depth applies to fine-tuning; in {plots.mode_label(mode)} mode "
               + ("every block is frozen." if mode == "frozen" else "nothing is frozen."))

try:  # the engine's plan of the run Start would submit: the diagram shows what will train
    plan = run_config.settings_plan(choice)
except Exception as err:  # noqa: BLE001  (settings that cannot run: say why, keep the rest of the page)
    plan = None
    st.warning(messages.error_text(err))
for problem in plan.problems if plan else []:
    st.warning(problem)
if plan is not None:
    trainable, total, head = plan.trainable_params, plan.total_params, plan.head_params
    st.plotly_chart(blocks_chart.block_diagram(plan), width="stretch", key="block_diagram")
    m1, m2 = st.columns([1, 3])
    m1.metric("Trainable parameters", f"{trainable:,}", help=plots.trainable_summary(trainable, total))
    share = 100 * trainable / total if total else 0
    m2.markdown(f"**{share:.1f}%** of {total:,} parameters train (the new head: {info['feature_dim']:,} features "
                f"× {n_classes} classes + {n_classes} biases = {head:,}).")
    m2.write(plan.sentence())
if mode == "finetune":
    st.checkbox("Train the head first (LP-FT)", key="lp_ft", value=settings.initial("lp_ft"),
                on_change=recipes_view.lp_ft_changed,
                help="Fit the new head on frozen features, then fine-tune: the pretrained blocks are not pushed "
                     "around by a random head's gradients, so they change less (Kumar et al. 2022). "
                     "Compare the 'What fine-tuning changed' chart of a run with and without it.")
    settings.keep("lp_ft")

# ---- hyperparameters ---------------------------------------------------------------------------------
st.subheader("Hyperparameters")
# always drawn; the family's own widgets below take value=initial()
shown = {key: settings.seed_widget(key) for key in ("epochs", "lr", "batch_size")}

h1, h2, h3, h4 = st.columns(4)
h1.number_input("Epochs", min_value=1, max_value=settings.MAX_EPOCHS, step=1, value=shown["epochs"], key="epochs",
                help="Passes over the training examples.")
h2.selectbox("Learning rate", settings.LEARNING_RATES, index=settings.LEARNING_RATES.index(shown["lr"]), key="lr",
             format_func=lambda v: f"auto ({default_lr(mode, family):g})" if v == settings.AUTO else f"{v:g}",
             help="AdamW step size for the head; pretrained blocks move 10× slower. Auto picks the rate that "
                  "suits the mode: from scratch needs a larger one. Feature extraction ignores it: its head is "
                  "fitted to convergence.")
h3.selectbox("Batch size", settings.BATCH_SIZES, index=settings.BATCH_SIZES.index(shown["batch_size"]),
             key="batch_size", help="Examples per gradient step.")
if family == "vision":
    fixed = info.get("fixed_image_size")
    if fixed:
        h4.number_input("Image size (px)", value=fixed, disabled=True, key="image_size_fixed",
                        help=f"{backbone} needs {fixed} px: its position embeddings fix the input size.")
    else:
        auto = 64 if choice.source != data_choice.UPLOAD else None
        if auto is None and choice.dataset is not None:
            from tl_core.models import backbones
            from tl_core.engine import training

            auto = training.default_image_size(backbones.get_spec(backbone), choice.dataset)
        auto = auto or info["default_image_size"]
        lo = info["min_image_size"]
        h4.number_input("Image size (px)", min_value=lo, max_value=settings.MAX_IMAGE_SIZE, step=8, key="image_size",
                        value=settings.initial("image_size", valid=lambda v: v is None or v >= lo),
                        placeholder=f"auto: {auto}",
                        help=f"Images are resized to this; empty = {auto} px (small built-in images stay small, "
                             f"which is fast). {backbone} was pretrained at {info['default_image_size']} px.")
        settings.keep("image_size")
    st.checkbox("Data augmentation (random crops and flips)", key="augment", value=settings.initial("augment"),
                help="Each epoch sees slightly different images. This turns activation caching off: every epoch "
                     "runs the whole network, so training is slower.")
    if settings.get("augment"):
        st.caption("Augmentation on: activation caching is off, each epoch runs the full network.")
else:
    h4.number_input("Max tokens", min_value=8, max_value=settings.MAX_TOKENS, step=8, key="max_length",
                    value=settings.initial("max_length"),
                    help="Texts are cut to this many tokens.")
settings.keep("epochs", "lr", "batch_size", "augment", "max_length")

# ---- fairness: the baseline's budget and the out-of-distribution check ----------------------------------------
st.subheader("A fair comparison")
budget = settings.seed_widget("budget")
shift = settings.seed_widget("ood_shift", valid=lambda v: v in shifts.IMAGE_SHIFTS)
f1, f2 = st.columns(2)
f1.selectbox("Training budget", settings.BUDGET_CHOICES, index=settings.BUDGET_CHOICES.index(budget), key="budget",
             format_func=BUDGET_LABELS.get,
             help="Fine-tuning and training from scratch stop far from what they can reach after a few dozen "
                  "steps: compared on a short budget, one arm can look better or worse than it is (Kornblith et "
                  "al. 2019 train each baseline properly). A frozen head is fitted to convergence either way. "
                  f"{BUDGET_HELP['converge'].format(steps=CONVERGE_MIN_STEPS).capitalize()}.")
f1.caption(BUDGET_CAPTIONS[settings.get("budget")].format(steps=CONVERGE_MIN_STEPS))
if family == "vision":
    f2.selectbox("Out-of-distribution check", list(shifts.IMAGE_SHIFTS), index=list(shifts.IMAGE_SHIFTS).index(shift),
                 key="ood_shift",
                 format_func=lambda v: f"{v}: {shifts.SHIFTS[v]}",
                 help="Every run is also scored on its test items after this shift (training never sees it): "
                      "fine-tuning can lose accuracy out of distribution where LP-FT keeps it (Kumar et al. 2022).")
else:
    f2.caption(f"Out-of-distribution check for text: {shifts.SHIFTS['typos']}.")
st.caption("Every run picks its epoch on the validation items and reports its accuracy on separate test items, "
           "so the number you read was not chosen on the items it is measured on.")
settings.keep("budget", "ood_shift")

# ---- which backbone? scores before training ---------------------------------------------------------------
from ui import ranking as backbone_ranking  # noqa: E402

backbone_ranking.render()

from ui import imagenet_view  # noqa: E402
imagenet_view.render()
