"""Why a model decided: Grad-CAM maps for image models, integrated gradients over the tokens of a text.

Both come from Captum, PyTorch's own attribution library (LayerGradCam, LayerIntegratedGradients), rather than
hand-written hooks: it is maintained with PyTorch and it is what a student meets outside this app. Its only
extra dependency is matplotlib (grad-cam would add OpenCV as well, and does nothing for text).

Grad-CAM (Selvaraju et al. 2017) weighs each channel of a convolutional block's output by the average gradient
of the class score over that channel and keeps the positive part of the sum: where in the image the evidence
for the class sits, at the block's resolution. The target is the last block whose output is still a spatial map
(the one closest to the decision); earlier blocks see finer grids but less of the class.

Integrated gradients (Sundararajan et al. 2017) integrate the gradient of the class's log-probability along a
straight path from a baseline sentence (every word token replaced by padding; [CLS]/[SEP] kept) to the typed
one, in the word-embedding space. The token scores add up to log p(class | sentence) - log p(class | baseline)
(completeness), which `TokenResult.gap` checks. The log-probability, not the logit: softmax ignores a constant
added to every logit, so a logit alone can move without changing any prediction.

Both functions hook the model's modules while they run, so one lock serialises them: the app shares one loaded
model between its sessions. Inside it the weights stop asking for gradients (restored after): Grad-CAM needs the
gradient of an activation, not of every weight.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from tl_core.errors import UserError
from tl_core.inputs.images import resize_crop

#: Interpolation steps of integrated gradients: the completeness gap is below 1% of the score change from ~20.
IG_STEPS = 32
_HOOKS = threading.Lock()
#: model -> {image size: spatial blocks}: the shapes never change, and finding them costs a forward pass.
_SPATIAL: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


class AttributionError(UserError):
    """An attribution that cannot be made: a text model asked for a map, a network with no spatial block..."""


class _Decision:
    """What the model decided about one input (its `classes`, `probabilities` and the `target` class an
    attribution explains), shared by both kinds of result."""

    classes: list[str]
    probabilities: np.ndarray
    target: int

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def predicted_class(self) -> str:
        return self.classes[self.predicted]

    @property
    def probability(self) -> float:
        return float(self.probabilities[self.predicted])

    @property
    def target_class(self) -> str:
        return self.classes[self.target]

    def _decision_dict(self) -> dict:
        return {"predicted_class": self.predicted_class, "probability": self.probability,
                "target_class": self.target_class, "target_probability": float(self.probabilities[self.target]),
                "probabilities": {c: float(p) for c, p in zip(self.classes, self.probabilities)}}


@dataclass
class CamResult(_Decision):
    """A Grad-CAM map of one image for one class, and what the model predicted."""

    image: np.ndarray  # uint8 [S,S,3]: the resized, centre-cropped image the model saw
    heatmap: np.ndarray  # float32 [S,S] in [0,1]: the map upsampled to the image, min-max scaled (see `scale`)
    cam: np.ndarray  # float32 [h,w] >= 0: the map at the block's own resolution, before scaling
    block: str
    classes: list[str]
    probabilities: np.ndarray  # float [classes]
    target: int  # the class the map is for

    @property
    def empty(self) -> bool:
        """No positive evidence anywhere: the block's gradients all point against the class."""
        return not float(self.cam.max()) > 0

    def to_dict(self, digits: int = 4) -> dict:
        return {**self._decision_dict(),
                "block": self.block, "map_size": list(self.cam.shape), "image_size": self.heatmap.shape[0],
                "cam": np.round(self.cam, digits).tolist(), "heatmap": np.round(self.heatmap, digits).tolist()}


@dataclass
class TokenResult(_Decision):
    """Integrated-gradient scores of the tokens of one text for one class, and what the model predicted."""

    text: str
    tokens: list[str]  # what each scored token covers in `text` (special tokens left out)
    spans: list[tuple[int, int]]  # character offsets of each token in `text`
    scores: np.ndarray  # float [tokens]: > 0 pushes towards `target`, < 0 away from it
    classes: list[str]
    probabilities: np.ndarray
    target: int
    gap: float  # |sum(scores) - (log p(x) - log p(baseline))|: integration error, small when the steps suffice
    truncated: bool  # the text was longer than the model's max_length: the tail was not seen

    def to_dict(self, digits: int = 4) -> dict:
        return {**self._decision_dict(),
                "tokens": [{"token": t, "start": s, "end": e, "score": round(float(v), digits)}
                           for t, (s, e), v in zip(self.tokens, self.spans, self.scores)],
                "completeness_gap": round(self.gap, 6), "truncated": self.truncated}


# ---- shared -------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _explaining(model):
    """The model alone (the lock), in eval mode, its weights without gradients (only the activations' gradients
    are wanted: computing the weights' ones too doubles the cost); everything restored afterwards."""
    with _HOOKS, torch.enable_grad():
        was_training = model.training
        wanted = [p for p in model.parameters() if p.requires_grad]
        model.eval()
        for p in wanted:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in wanted:
                p.requires_grad_(True)
            model.train(was_training)


def _device(model) -> torch.device:
    return next(model.parameters()).device


def _require(model, family: str) -> None:
    if model.family != family:
        if family == "vision":
            raise AttributionError(f"{model.name} is a text model: class activation maps are for image models; "
                                   "explain a typed sentence instead (token attributions)")
        raise AttributionError(f"{model.name} is an image model: token attributions are for text models; "
                               "explain a validation image instead (class activation map)")


# ---- images: Grad-CAM --------------------------------------------------------------------------------------------
def spatial_blocks(model) -> list[tuple[str, tuple[int, int]]]:
    """The blocks whose output is still an image-shaped map at the model's input size, with that map's size
    (MobileNetV2 at 64 px: ..., ('stage7', (2, 2)), ('head_conv', (2, 2))). Found by running the network once on
    a blank image, so every architecture answers the same way (VGG's fc blocks and ViT's token blocks drop out)."""
    _require(model, "vision")
    size = model.preprocess.image_size
    known = _SPATIAL.get(model, {})
    if size in known:
        return list(known[size])
    sizes: dict[int, tuple[int, int]] = {}
    hooks = []
    for i, block in enumerate(model._blocks):
        def record(module, inputs, output, i=i):
            if isinstance(output, torch.Tensor) and output.dim() == 4:
                sizes[i] = tuple(output.shape[-2:])
        hooks.append(block.forward.register_forward_hook(record))
    try:
        with _explaining(model), torch.no_grad():
            model.run_blocks(model.normalize(torch.zeros(1, 3, size, size, dtype=torch.uint8, device=_device(model))),
                             0, model.n_blocks)
    finally:
        for h in hooks:
            h.remove()
    found = [(model._blocks[i].name, sizes[i]) for i in sorted(sizes)]
    _SPATIAL.setdefault(model, {})[size] = found
    return list(found)


def cam_block(model) -> str:
    """The block Grad-CAM looks at by default: the last one with a spatial output."""
    blocks = spatial_blocks(model)
    if not blocks:
        raise AttributionError(f"{model.name} has no convolutional block with a spatial output (a vision transformer "
                               "works on patches as tokens): class activation maps need a convolutional network")
    return blocks[-1][0]


def model_image(model, image: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 of any size -> the uint8 SxSx3 crop the model sees (the resize training used)."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise AttributionError(f"expected an RGB uint8 image of shape HxWx3, got {arr.dtype} {arr.shape}")
    x = torch.tensor(arr).permute(2, 0, 1)[None]  # a copy: stored images are read-only
    return resize_crop(x, model.preprocess.image_size)[0].permute(1, 2, 0).contiguous().numpy()


def _class_index(target: int | str | None, classes: list[str], default: int) -> int:
    if target is None:
        return default
    if isinstance(target, str):
        if target not in classes:
            raise AttributionError(f"unknown class '{target}': this model knows {', '.join(classes)}")
        return classes.index(target)
    if not 0 <= int(target) < len(classes):
        raise AttributionError(f"class index {target} is out of range: use 0..{len(classes) - 1}")
    return int(target)


def scale(cam: np.ndarray) -> np.ndarray:
    """Min-max to [0,1], as the Grad-CAM authors draw it: the weakest cell transparent, the strongest full, so a map
    shows where the evidence is even when every cell holds some. A map without positive evidence stays 0; one that
    is the same everywhere is 1 everywhere (no place stands out)."""
    lo, hi = float(cam.min()), float(cam.max())
    if hi <= 0:
        return np.zeros_like(cam)
    if hi - lo <= 1e-6 * hi:
        return np.ones_like(cam)
    return (cam - lo) / (hi - lo)


def grad_cam(model, image: np.ndarray, classes: list[str], *, target: int | str | None = None,
             block: str | None = None) -> CamResult:
    """Grad-CAM of `image` (uint8 HxWx3) for `target` (default: the predicted class) at `block` (default: the last
    spatial block). `classes` names the model's outputs, in order."""
    from captum.attr import LayerGradCam

    _require(model, "vision")
    names = model.block_names
    if block is None:
        block = cam_block(model)
    elif block not in names:
        raise AttributionError(f"{model.name} has no block '{block}': choose one of {', '.join(names)}")
    elif block not in (spatial := [n for n, _ in spatial_blocks(model)]):
        raise AttributionError(f"block '{block}' of {model.name} has no spatial output: choose one of "
                               f"{', '.join(spatial)}")
    seen = model_image(model, image)
    x = model.normalize(torch.from_numpy(seen).permute(2, 0, 1)[None].contiguous().to(_device(model)))
    layer = model._blocks[names.index(block)].forward
    with _explaining(model):
        with torch.no_grad():
            probs = torch.softmax(model(x).float(), dim=1)[0].cpu().numpy()
        tgt = _class_index(target, classes, int(np.argmax(probs)))
        cam = LayerGradCam(model, layer).attribute(x, target=tgt, relu_attributions=True).detach()
    size = seen.shape[0]
    up = F.interpolate(cam.float(), size=(size, size), mode="bilinear", align_corners=False)[0, 0].clamp_(min=0)
    heatmap = scale(up.cpu().numpy()).astype(np.float32)
    return CamResult(image=seen, heatmap=heatmap, cam=cam[0, 0].float().cpu().numpy(), block=block,
                     classes=list(classes), probabilities=probs, target=tgt)


# ---- text: integrated gradients -----------------------------------------------------------------------------------
def _baseline_id(tokenizer) -> int:
    for tid in (tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.eos_token_id):
        if tid is not None:
            return int(tid)
    return 0


def token_attributions(model, text: str, classes: list[str], *, target: int | str | None = None,
                       steps: int = IG_STEPS) -> TokenResult:
    """Integrated-gradient score of each token of `text` for `target` (default: the predicted class)."""
    from captum.attr import LayerIntegratedGradients

    _require(model, "text")
    text = (text or "").strip()
    if not text:
        raise AttributionError("type a sentence to explain")
    tok = model.tokenizer
    max_length = model.preprocess.max_length
    fast = getattr(tok, "is_fast", False)
    enc = tok([text], truncation=True, max_length=max_length, return_tensors="pt", return_special_tokens_mask=True,
              return_offsets_mapping=fast)
    full = len(tok(text, add_special_tokens=True)["input_ids"])
    device = _device(model)
    ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
    special = enc["special_tokens_mask"][0].bool()
    baseline = ids.clone()
    baseline[0, ~special.to(device)] = _baseline_id(tok)

    def log_probs(input_ids, attention_mask):
        return torch.log_softmax(model({"input_ids": input_ids, "attention_mask": attention_mask}).float(), dim=1)

    with _explaining(model):
        with torch.no_grad():
            lp = log_probs(ids, mask)[0]
            probs = lp.exp().cpu().numpy()
            tgt = _class_index(target, classes, int(np.argmax(probs)))
            change = float(lp[tgt] - log_probs(baseline, mask)[0, tgt])
        ig = LayerIntegratedGradients(log_probs, model.net.get_input_embeddings())
        attr = ig.attribute(ids, baselines=baseline, additional_forward_args=(mask,), target=tgt, n_steps=steps,
                            internal_batch_size=steps).detach()
    per_token = attr[0].sum(-1).float().cpu().numpy()
    keep = (~special).cpu().numpy()
    if fast:
        spans = [tuple(int(v) for v in s) for s in enc["offset_mapping"][0].tolist()]
        spans = [s for s, k in zip(spans, keep) if k]
        tokens = [text[s:e] for s, e in spans]
    else:  # a slow tokenizer has no offsets: its own token strings, without positions
        tokens = [t for t, k in zip(tok.convert_ids_to_tokens(enc["input_ids"][0].tolist()), keep) if k]
        spans = [(-1, -1)] * len(tokens)
    return TokenResult(text=text, tokens=tokens, spans=spans, scores=per_token[keep].astype(np.float32),
                       classes=list(classes), probabilities=probs, target=tgt,
                       gap=abs(float(per_token.sum()) - change), truncated=full > ids.shape[1])
