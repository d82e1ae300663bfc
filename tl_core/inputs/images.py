"""Decoding untrusted images and resizing them the one way the whole project does.

Training data, app predictions and the exported predict.py all go through
`resize_crop`, so the same pixels in give the same probabilities out.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from tl_core.inputs.archive import DEFAULT_LIMITS, DataError, Limits


class UnreadableImage(Exception):
    """An image that is skipped; the message is the reason shown in the report."""


def decode_image(data: bytes, limits: Limits = DEFAULT_LIMITS, max_short_side: int | None = None):
    """Decode untrusted image bytes to (uint8 HxWx3 RGB array, (w, h) original upright size).

    The pixel count is checked from the header before any pixel is decoded
    (PIL's own bomb warning is also made an error, as a second net), EXIF
    rotation is applied, transparency is flattened onto white, and any mode
    becomes RGB. Raises DataError with a one-line reason.
    """
    try:
        return decode_raw(data, limits, max_short_side)
    except UnreadableImage as e:
        raise DataError(f"unreadable image: {e}") from None


def decode_raw(data: bytes, limits: Limits, max_short_side: int | None):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
                if w * h > limits.max_image_pixels:
                    raise UnreadableImage(f"too large: {w}x{h} pixels (limit {limits.max_image_pixels:,})")
                if im.getexif().get(0x0112) in (5, 6, 7, 8):  # EXIF orientations that swap width and height
                    w, h = h, w
                if max_short_side and min(w, h) > max_short_side and im.format == "JPEG":
                    scale = max_short_side / min(w, h)
                    im.draft("RGB", (int(im.size[0] * scale) + 1, int(im.size[1] * scale) + 1))  # fast DCT downscale
                im.load()
                im = ImageOps.exif_transpose(im)
                im = _to_rgb(im)
                if max_short_side and min(im.size) > max_short_side:
                    scale = max_short_side / min(im.size)
                    new = (max(1, round(im.size[0] * scale)), max(1, round(im.size[1] * scale)))
                    im = im.resize(new, Image.Resampling.BILINEAR, reducing_gap=2.0)
                return np.asarray(im, dtype=np.uint8).copy(), (w, h)
    except UnreadableImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UnreadableImage("too large: decompression bomb protection") from None
    except Image.UnidentifiedImageError:
        raise UnreadableImage("not a readable image (unknown or damaged format)") from None
    except Exception as e:  # PIL raises many types on damaged data (OSError, SyntaxError, struct.error...)
        raise UnreadableImage(f"damaged image ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no details'})") from None


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grey: scale, don't clip to white
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        return Image.fromarray(np.round(arr * (255 / top)).astype(np.uint8)).convert("RGB")
    return im.convert("RGB")



def resize_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [n,3,h,w] -> uint8 [n,3,size,size]: shorter side to `size`, then centre crop."""
    h, w = x.shape[-2:]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    if (nh, nw) != (h, w):
        x = F.interpolate(x.float(), size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
        x = x.round_().clamp_(0, 255).to(torch.uint8)
    top, left = (nh - size) // 2, (nw - size) // 2
    return x[..., top : top + size, left : left + size]
