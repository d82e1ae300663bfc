"""Predict with a model exported from Transfer Lab (standalone: no Transfer Lab install needed).

    python predict.py photo.jpg other.png --top-k 3         # image model
    python predict.py "what a lovely day" --json            # text model

Needs torch, safetensors, numpy, pillow and torchvision (image models; efficientnet_lite0 also needs
efficientnet_lite_pytorch) or transformers (text models). It reads meta.json, model.safetensors and,
for text, tokenizer/ and encoder/ from its own folder, and preprocesses exactly as the app did.
"""
import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_model


def resize_crop(x, size):  # uint8 [n,3,h,w] -> uint8 [n,3,size,size]: shorter side to size, centre crop
    h, w = x.shape[-2:]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    if (nh, nw) != (h, w):
        x = F.interpolate(x.float(), size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
        x = x.round_().clamp_(0, 255).to(torch.uint8)
    top, left = (nh - size) // 2, (nw - size) // 2
    return x[..., top : top + size, left : left + size]


def load_image(path):  # upright RGB uint8 HxWx3; transparency flattened onto white, 16-bit grey scaled
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im.load()
        im = ImageOps.exif_transpose(im)
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        elif im.mode in ("I;16", "I;16B", "I;16L", "I"):
            a = np.asarray(im, dtype=np.float64)
            im = Image.fromarray(np.round(a * (255 / (65535.0 if a.max() > 255 else 255.0))).astype(np.uint8))
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def load(folder):
    """A function from a list of inputs (image paths or strings) to class probabilities [n, classes]."""
    folder = Path(folder)
    meta = json.loads((folder / "meta.json").read_text())
    pre, n, name = meta["preprocess"], len(meta["classes"]), meta["backbone"]
    model = torch.nn.Module()  # parameter names as saved: net.* (+ head.* for text)
    if meta["family"] == "vision":
        if name == "efficientnet_lite0":
            from efficientnet_lite_pytorch import EfficientNet
            model.net = EfficientNet.from_name("efficientnet-lite0", num_classes=n)
        else:
            from torchvision.models import get_model
            extra = dict(aux_logits=False, init_weights=False, transform_input=True) if name == "inception_v3" else {}
            model.net = get_model(name, weights=None, num_classes=n, **extra)
    else:
        from transformers import AutoConfig, AutoModel, AutoTokenizer, T5EncoderModel, logging
        logging.set_verbosity_error()
        config = AutoConfig.from_pretrained(folder / "encoder")
        extra = {"add_pooling_layer": False} if config.model_type in ("bert", "roberta") else {}
        model.net = T5EncoderModel(config) if config.model_type == "t5" else AutoModel.from_config(config, **extra)
        model.head = torch.nn.Linear(meta["feature_dim"], n)
        tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
    load_model(model, str(folder / "model.safetensors"))
    model.eval()

    @torch.no_grad()
    def predict(inputs):
        if meta["family"] == "vision":
            size, mean, std = pre["image_size"], torch.tensor(pre["mean"]), torch.tensor(pre["std"])
            x = torch.cat([resize_crop(torch.from_numpy(load_image(p)).permute(2, 0, 1)[None], size) for p in inputs])
            logits = model.net((x.float() / 255.0 - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1))
        else:
            enc = tokenizer(list(inputs), padding=True, truncation=True, max_length=pre["max_length"], return_tensors="pt")
            hidden = model.net(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            logits = model.head((hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0))  # mean over real tokens
        return torch.softmax(logits.float(), dim=1).numpy()

    return predict, meta["classes"]


def main():
    ap = argparse.ArgumentParser(description="Top-k classes for images (paths) or texts.")
    ap.add_argument("inputs", nargs="+", help="image files for an image model, strings for a text model")
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="print one JSON list instead of a table")
    args = ap.parse_args()
    predict, classes = load(Path(__file__).resolve().parent)
    rows = [{"input": x, "predictions": [{"class": classes[i], "probability": float(p[i])}
                                         for i in np.argsort(-p, kind="stable")[: max(1, args.top_k)]]}
            for x, p in zip(args.inputs, predict(args.inputs))]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        print(row["input"])
        for pred in row["predictions"]:
            print(f"  {pred['probability']:7.2%}  {pred['class']}")


if __name__ == "__main__":
    main()
