"""A finished run on disk: weights (safetensors) plus preprocessing and class names (JSON).

That is enough to rebuild the model without the network and predict exactly as
the app did; no pickle anywhere, so an artifacts folder is safe to share.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_model, save_model

from tl_core.models import backbones, hf
from tl_core.inputs.images import resize_crop
from tl_core.models.model import Preprocess, TransferModel

FORMAT_VERSION = 1
WEIGHTS, META = "model.safetensors", "meta.json"


def save_artifacts(model: TransferModel, classes: list[str], folder: Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_model(model, str(folder / WEIGHTS))
    meta = {"format": FORMAT_VERSION, "backbone": model.name, "family": model.family, "classes": list(classes),
            "preprocess": model.preprocess.to_dict(), "head_path": model._head_path, "feature_dim": model.feature_dim}
    if model.family == "text":
        model.tokenizer.save_pretrained(folder / "tokenizer")
        model.net.config.save_pretrained(folder / "encoder")
        meta["pooling"] = "mean over attention mask"
    (folder / META).write_text(json.dumps(meta, indent=2))
    return folder


def read_meta(folder: Path) -> dict:
    return json.loads((Path(folder) / META).read_text())


def load_run_model(folder: Path, device: str | torch.device = "cpu") -> tuple[TransferModel, dict]:
    """Rebuild the architecture offline (random init, no download) and load the run's weights."""
    folder = Path(folder)
    meta = read_meta(folder)
    n = len(meta["classes"])
    if meta["family"] == "vision":
        model = backbones.build(meta["backbone"], n_classes=n, pretrained=False,
                                image_size=meta["preprocess"]["image_size"])
        model.preprocess = Preprocess("vision", **{k: meta["preprocess"][k] for k in ("image_size", "mean", "std")})
    else:
        AutoConfig, AutoModel, AutoTokenizer, T5EncoderModel = hf.names("AutoConfig", "AutoModel", "AutoTokenizer",
                                                                        "T5EncoderModel")

        config = AutoConfig.from_pretrained(folder / "encoder")
        with backbones._quiet():
            net = T5EncoderModel(config) if config.model_type == "t5" else AutoModel.from_config(
                config, **({"add_pooling_layer": False} if config.model_type in ("bert", "roberta") else {}))
        tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
        model = TransferModel(name=meta["backbone"], family="text", net=net, blocks=backbones._text_blocks(net),
                              neck=None, head_path=None, feature_dim=meta["feature_dim"],
                              preprocess=Preprocess("text", max_length=meta["preprocess"]["max_length"]),
                              tokenizer=tokenizer)
        model.set_head(n, 0)
    load_model(model, str(folder / WEIGHTS), device="cpu")
    return model.to(device).eval(), meta


def image_tensor(images: list[np.ndarray], size: int) -> torch.Tensor:
    """The exact resize the training data went through."""
    return torch.cat([resize_crop(torch.from_numpy(np.array(im)).permute(2, 0, 1)[None], size)
                      for im in images])


@torch.no_grad()
def predict_proba(model: TransferModel, inputs: list) -> np.ndarray:
    """Class probabilities [n, classes] for RGB uint8 arrays (vision) or strings (text)."""
    model.eval()
    device = next(model.parameters()).device
    if model.family == "vision":
        x = model.normalize(image_tensor(inputs, model.preprocess.image_size).to(device))
    else:
        enc = model.tokenizer(list(inputs), padding=True, truncation=True, max_length=model.preprocess.max_length,
                              return_tensors="pt")
        x = {"input_ids": enc["input_ids"].to(device), "attention_mask": enc["attention_mask"].to(device)}
    return torch.softmax(model(x).float(), dim=1).cpu().numpy()


def top_k(probs: np.ndarray, classes: list[str], k: int = 5) -> list[dict[str, float]]:
    out = []
    for row in probs:
        order = np.argsort(-row)[:k]
        out.append({classes[i]: float(row[i]) for i in order})
    return out
