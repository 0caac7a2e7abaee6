"""Photo-like digit images rendered from MNIST test digits, for the predict_files tests.

Each image: one MNIST digit scaled to 35-75% of a 64-400 px frame (aspect ratio jittered),
placed off-centre, drawn as dark ink on light paper (3 in 4) or light on dark, in random
ink/paper colours (tints) with Gaussian noise, saved as PNG (gray, RGB or RGBA) or JPEG.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # Pillow is imported where an image is made
    from PIL import Image


def render_digit(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
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


# --- a harder, broader renderer for photo_eval.py (and a small test): what real photos and scans do

def render_photo(digit: np.ndarray,
                 rng: np.random.Generator) -> tuple[Image.Image, str, dict, np.ndarray]:
    """One MNIST digit as a photo or scan with a random mix of real-world defects.

    Returns the PIL image, the file suffix to save it with, the variation tags (one value per
    factor) that photo_eval.py breaks accuracy down by, and the ink alone (float [H,W] in [0,1],
    light on dark: the digit as drawn, before paper, lighting, noise and compression).
    """
    from PIL import Image, ImageFilter

    tags: dict[str, str] = {}
    width, height = (int(v) for v in rng.integers(64, 401, size=2))
    while max(width, height) > 2 * min(width, height):  # frames up to 2:1, as photos and crops are
        width, height = (int(v) for v in rng.integers(64, 401, size=2))
    tags["frame"] = ("small <128" if min(width, height) < 128 else
                     "medium <256" if min(width, height) < 256 else "large")
    tags["aspect"] = "square-ish" if max(width, height) < 1.2 * min(width, height) else "non-square"

    # the stroke, at 4x MNIST resolution: thinner, normal or thicker pen, then a small rotation
    hi = Image.fromarray(digit).resize((112, 112), Image.Resampling.BICUBIC)
    hi = hi.crop((-24, -24, 136, 136))  # room to rotate and dilate without clipping
    stroke = str(rng.choice(["thin", "normal", "normal", "thick", "very thick"]))
    tags["stroke"] = stroke
    if stroke == "thin":
        hi = hi.filter(ImageFilter.MinFilter(3))
    elif stroke == "thick":
        hi = hi.filter(ImageFilter.MaxFilter(5))
    elif stroke == "very thick":
        hi = hi.filter(ImageFilter.MaxFilter(7))
    angle = float(rng.uniform(-10, 10))
    tags["rotation"] = "<3 deg" if abs(angle) < 3 else "3-7 deg" if abs(angle) < 7 else "7-10 deg"
    hi = hi.rotate(angle, Image.Resampling.BICUBIC)
    a = np.asarray(hi, dtype=np.float32) / 255.0
    rows, cols = np.nonzero(a.max(axis=1) > 0.1)[0], np.nonzero(a.max(axis=0) > 0.1)[0]
    a = a[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]

    # digit height 20-90% of the frame's shorter side, aspect ratio jittered
    frac = float(rng.uniform(0.2, 0.9))
    tags["digit size"] = "20-40%" if frac < 0.4 else "40-65%" if frac < 0.65 else "65-90%"
    dh = max(8, int(frac * min(width, height)))
    dw = max(3, min(width - 2, int(dh * a.shape[1] / a.shape[0] * rng.uniform(0.85, 1.15))))
    ink = np.asarray(Image.fromarray(a, "F").resize((dw, dh), Image.Resampling.LANCZOS))
    ink = np.clip(ink, 0, 1) * float(rng.uniform(0.6, 1.0))  # pen pressure / faint pencil
    field = np.zeros((height, width), dtype=np.float32)
    top, left = int(rng.integers(0, height - dh + 1)), int(rng.integers(0, width - dw + 1))
    field[top:top + dh, left:left + dw] = ink

    # paper and ink colours (tinted), with polarity
    dark_ink = rng.random() < 0.75
    tags["polarity"] = "dark ink on light" if dark_ink else "light on dark"
    while True:
        paper = rng.uniform(170, 255, size=3) if dark_ink else rng.uniform(0, 90, size=3)
        pen = rng.uniform(0, 110, size=3) if dark_ink else rng.uniform(150, 255, size=3)
        luma = np.array([0.299, 0.587, 0.114])
        if abs(float((paper - pen) @ luma)) >= 90:
            break
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    texture = rng.random() < 0.5
    tags["paper texture"] = "yes" if texture else "no"
    paper_map = np.broadcast_to(paper, (height, width, 3)).astype(np.float32)
    if texture:  # blotchy low-frequency paper grain
        coarse = rng.normal(0, 1, size=(max(2, height // 24),
                                        max(2, width // 24))).astype(np.float32)
        blotch = np.asarray(Image.fromarray(coarse, "F").resize((width, height),
                                                                Image.Resampling.BICUBIC))
        paper_map = paper_map + float(rng.uniform(3, 10)) * blotch[..., None]
    rgb = paper_map * (1 - field[..., None]) + pen[None, None, :] * field[..., None]

    # edges of the page: a band of table or scanner lid along one or two sides, clear of the digit
    tags["edge border"] = "no"
    if rng.random() < 0.35:
        room = {"top": top, "bottom": height - top - dh, "left": left, "right": width - left - dw}
        sides = [s for s in room if room[s] >= 6]
        rng.shuffle(sides)
        table = rng.uniform(0, 80, size=3) if dark_ink else rng.uniform(120, 230, size=3)
        for side in sides[:int(rng.integers(1, 3))]:
            depth = int(rng.uniform(0.3, 0.9) * room[side])
            depth = max(2, min(depth, int(0.15 * (height if side in ("top", "bottom") else width))))
            mask = {"top": yy < depth, "bottom": yy >= height - depth,
                    "left": xx < depth, "right": xx >= width - depth}[side]
            rgb[mask] = table
            tags["edge border"] = "yes"

    # lighting: flat, a gradient across the page, a vignette, or a soft cast shadow
    light = str(rng.choice(["flat", "gradient", "vignette", "shadow"]))
    tags["lighting"] = light
    if light == "gradient":
        theta = rng.uniform(0, 2 * np.pi)
        t = (np.cos(theta) * xx / width + np.sin(theta) * yy / height)
        t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
        illum = 1 - float(rng.uniform(0.2, 0.55)) * t
    elif light == "vignette":
        r2 = ((xx - width / 2) / (width / 2)) ** 2 + ((yy - height / 2) / (height / 2)) ** 2
        illum = 1 - float(rng.uniform(0.2, 0.5)) * np.clip(r2 / 2, 0, 1)
    elif light == "shadow":
        theta = rng.uniform(0, 2 * np.pi)
        cx, cy = width * rng.uniform(0.2, 0.8), height * rng.uniform(0.2, 0.8)
        d = np.cos(theta) * (xx - cx) + np.sin(theta) * (yy - cy)
        soft = float(rng.uniform(0.02, 0.15)) * min(width, height)
        illum = 1 - float(rng.uniform(0.25, 0.5)) / (1 + np.exp(-d / soft))
    else:
        illum = np.ones_like(xx)
    rgb = rgb * illum[..., None]

    # optics then sensor: blur, Gaussian noise, salt-and-pepper
    img = Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), "RGB")
    blur = rng.random() < 0.35
    tags["blur"] = "yes" if blur else "no"
    if blur:  # 0.3-0.8 MNIST pixels of blur at the digit's scale
        img = img.filter(ImageFilter.GaussianBlur(max(0.5, float(rng.uniform(0.3, 0.8)) * dh / 20)))
    rgb = np.asarray(img, dtype=np.float32)
    sigma = float(rng.uniform(0, 20))
    tags["gaussian noise"] = ("sigma <5" if sigma < 5 else
                              "sigma 5-12" if sigma < 12 else "sigma 12-20")
    rgb = (rgb + rng.normal(0.0, sigma, size=rgb.shape[:2] + (1,))
           + rng.normal(0.0, sigma / 3, size=rgb.shape))
    tags["salt-pepper"] = "no"
    if rng.random() < 0.25:
        density = float(rng.uniform(0.001, 0.01))
        hit = rng.random((height, width))
        rgb[hit < density / 2] = 0
        rgb[hit > 1 - density / 2] = 255
        tags["salt-pepper"] = "yes"
    img = Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), "RGB")

    kind = str(rng.choice(["jpeg", "jpeg", "png gray", "png rgb", "png rgba"]))
    if kind == "jpeg":
        quality = int(rng.integers(30, 96))
        tags["format"] = "jpeg q30-59" if quality < 60 else "jpeg q60-95"
        if rng.random() < 0.3:
            img = img.convert("L")
        img.info["quality"] = quality
        return img, ".jpg", tags, field
    tags["format"] = kind
    img = img.convert({"png gray": "L", "png rgb": "RGB", "png rgba": "RGBA"}[kind])
    return img, ".png", tags, field


def write_photo(img: Image.Image, path: Path) -> None:
    """Save a render_photo image (JPEG quality carried in img.info)."""
    if path.suffix == ".jpg":
        img.save(path, quality=img.info.get("quality", 90))
    else:
        img.save(path)

