"""A class-folder zip the project has never seen: procedurally drawn shapes on noisy, coloured backgrounds."""

from __future__ import annotations

import io
import math
import random
import zipfile

from PIL import Image, ImageDraw, ImageFilter

CLASSES = ("circle", "square", "triangle", "star", "cross")


def _polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if kind == "square":
        pts = [(math.cos(angle + k * math.pi / 2 + math.pi / 4), math.sin(angle + k * math.pi / 2 + math.pi / 4)) for k in range(4)]
    elif kind == "triangle":
        pts = [(math.cos(angle + k * 2 * math.pi / 3), math.sin(angle + k * 2 * math.pi / 3)) for k in range(3)]
    elif kind == "star":
        pts = [((1 if k % 2 == 0 else 0.45) * math.cos(angle + k * math.pi / 5),
                (1 if k % 2 == 0 else 0.45) * math.sin(angle + k * math.pi / 5)) for k in range(10)]
    else:  # cross
        w = 0.33
        base = [(-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1), (-w, 1), (-w, w), (-1, w), (-1, -w), (-w, -w)]
        pts = [(x * math.cos(angle) - y * math.sin(angle), x * math.sin(angle) + y * math.cos(angle)) for x, y in base]
    return [(cx + r * x, cy + r * y) for x, y in pts]


def draw(kind: str, rng: random.Random, size: int = 96) -> Image.Image:
    bg = tuple(rng.randrange(256) for _ in range(3))
    img = Image.effect_noise((size, size), rng.uniform(20, 60)).convert("RGB")
    img = Image.blend(Image.new("RGB", (size, size), bg), img, 0.35)
    d = ImageDraw.Draw(img)
    fg = tuple((c + rng.randrange(96, 160)) % 256 for c in bg)
    r = rng.uniform(0.2, 0.38) * size
    cx, cy = (rng.uniform(r, size - r) for _ in range(2))
    if kind == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
    else:
        d.polygon(_polygon(kind, cx, cy, r, rng.uniform(0, 2 * math.pi)), fill=fg)
    return img.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.2)))


def shapes_zip(per_class: int = 60, seed: int = 0, size: int = 96) -> bytes:
    rng = random.Random(seed)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for kind in CLASSES:
            for i in range(per_class):
                png = io.BytesIO()
                draw(kind, rng, size).save(png, "PNG")
                z.writestr(f"shapes/{kind}/{i:03d}.png", png.getvalue())
    return buf.getvalue()


if __name__ == "__main__":
    import sys

    open(sys.argv[1] if len(sys.argv) > 1 else "shapes.zip", "wb").write(shapes_zip())
