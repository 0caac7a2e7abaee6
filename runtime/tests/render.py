"""Photo-like digit images rendered from MNIST test digits, for the predict_files tests.

Each image: one MNIST digit scaled to 35-75% of a 64-400 px frame (aspect ratio jittered),
placed off-centre, drawn as dark ink on light paper (3 in 4) or light on dark, in random
ink/paper colours (tints) with Gaussian noise, saved as PNG (gray, RGB or RGBA) or JPEG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def render_digit(digit: np.ndarray, rng: np.random.Generator) -> "Image.Image":
    """One MNIST digit (uint8 [28,28], light on dark) as a photo-like RGB PIL image."""
    from PIL import Image

    width, height = (int(v) for v in rng.integers(64, 401, size=2))
    side = rng.uniform(0.35, 0.75) * min(width, height)
    dw = max(12, int(side * rng.uniform(0.85, 1.15)))
    dh = max(12, int(side * rng.uniform(0.85, 1.15)))
    dw, dh = min(dw, width), min(dh, height)
    ink = np.asarray(Image.fromarray(digit).resize((dw, dh), Image.Resampling.BICUBIC),
                     dtype=np.float32) / 255.0
    field = np.zeros((height, width), dtype=np.float32)
    top, left = int(rng.integers(0, height - dh + 1)), int(rng.integers(0, width - dw + 1))
    field[top:top + dh, left:left + dw] = np.clip(ink, 0, 1)
    dark_ink = rng.random() < 0.75
    light, dark = rng.uniform(150, 255, size=3), rng.uniform(0, 90, size=3)
    paper, pen = (light, dark) if dark_ink else (dark, light)
    rgb = paper[None, None, :] * (1 - field[..., None]) + pen[None, None, :] * field[..., None]
    rgb += rng.normal(0.0, rng.uniform(0, 18), size=rgb.shape)
    return Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), "RGB")


def write_photo_set(digits: np.ndarray, folder: Path, seed: int = 0) -> list[Path]:
    """Render every digit and save it as PNG (gray, RGB, RGBA) or JPEG; returns the paths."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, digit in enumerate(digits):
        img = render_digit(digit, rng)
        kind = rng.integers(4)
        if kind == 0:
            path = folder / f"{i:05d}.jpg"
            img.save(path, quality=int(rng.integers(60, 96)))
        elif kind == 1:
            path = folder / f"{i:05d}.png"
            img.convert("L").save(path)
        elif kind == 2:
            path = folder / f"{i:05d}.png"
            img.convert("RGBA").save(path)
        else:
            path = folder / f"{i:05d}.png"
            img.save(path)
        paths.append(path)
    return paths


def plain_resize(path: Path) -> np.ndarray:
    """The naive baseline: grayscale, resize to 28x28, nothing else (uint8 [28,28])."""
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("L").resize((28, 28), Image.Resampling.BILINEAR))
