"""Generated non-digits: what a camera pointed at the world shows besides handwritten digits.

    from common import nondigits
    images, kinds = nondigits.generate(4000, seed=1, settings=nondigits.TRAIN, digits=x_train)
    # images: uint8 [4000,28,28] light on dark, normalised like a photo's crop; kinds[i] in KINDS

Kinds: ``strokes`` (scribbles, zigzags, spirals, hatching), ``shapes`` (polygons, stars, arrows,
filled discs), ``letters`` (one to four letters from fonts), ``symbols`` (%, #, @, currency,
arrows, maths), ``textures`` (gratings, checkers, dots, blotches), ``scenes`` (crops of the
photos that ship with matplotlib, and drawn compositions of light and shade) and ``pairs`` (two
MNIST digits touching or overlapping in one crop: "one digit" is wrong for them too).

Every picture is drawn at its own size (``Settings.size``) and normalised the way the runtime
normalises a photo: drawn ink through ``to_field`` (crop, thin strokes thickened, 20x20 box,
centre of mass), photos through the whole ``preprocess_image``. Sample ``i`` has its own
generator seeded with (seed, i), so it is the same whatever the set's size.

Characters a hand would make look like a digit (O o Q D I l i j | Z z S s B b G g q y T t ( ) /
\\ ! ? and so on) are never drawn. ``HELDOUT`` draws with other fonts, sizes, stroke widths,
rotations and photos than ``TRAIN``: the report measures on it what training never saw.
Fonts and pictures are matplotlib's own files (DejaVu, STIX, Computer Modern; Grace Hopper, an
MRI slice, elevation maps and two more), so nothing is downloaded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from common import pools
from mnist_edge.errors import BlankImageError
from mnist_edge.normalize import preprocess_image, to_field

KINDS = ("strokes", "shapes", "letters", "symbols", "textures", "scenes", "pairs")

UPPER = "ACEFHKMNPRUVWXY"
LOWER = "acdefhkmnprwx"
SYMBOLS = ("%", "#", "@", "&", "*", "+", "=", "$", "€", "£", "¥", "¶", "©", "®", "™", "♥", "♦",
           "♣", "♠", "★", "☆", "✓", "→", "←", "↑", "↓", "∞", "≈", "≠", "±", "÷", "×", "√", "∑",
           "∫", "π", "Ω", "µ", "Δ", "Ψ", "λ", "æ", "<", ">", "~", ":", "-", "⊕", "⊗")
CHECK_NONDIGITS = 2000   # held-out non-digits beside MNIST's test digits in the verification set
CHECK_SEED = 7_000_001   # added to the training seed: not the training or validation non-digits
INK_LEVEL = 0.5   # as the runtime: pixels above half the peak are the ink proper
_CHUNK = 500     # samples per job of a generate() pool
MAX_TRIES = 20    # redraws of a picture that normalises to nothing (blank)


@dataclass(frozen=True)
class Settings:
    """How pictures are drawn: fonts (matplotlib's font files; the first ``symbol_fonts`` also
    draw symbols), canvas side in pixels, stroke width as a share of the side, rotation in
    degrees either way, and matplotlib's sample photos for scene crops."""

    name: str
    fonts: tuple[str, ...]
    symbol_fonts: int
    size: tuple[int, int]
    width: tuple[float, float]
    rotation: float
    photos: tuple[str, ...]


TRAIN = Settings(
    name="train",
    fonts=("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf",
           "DejaVuSans-Oblique.ttf", "STIXGeneral.ttf"),
    symbol_fonts=3, size=(40, 80), width=(0.04, 0.12), rotation=20.0,
    photos=("grace_hopper.jpg", "s1045.ima.gz", "jacksboro_fault_dem.npz"))
HELDOUT = Settings(
    name="heldout",
    fonts=("STIXGeneralBol.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSans-BoldOblique.ttf",
           "STIXGeneralItalic.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSerif-Italic.ttf",
           "cmr10.ttf", "cmss10.ttf", "cmtt10.ttf"),
    symbol_fonts=4, size=(56, 96), width=(0.03, 0.15), rotation=30.0,
    photos=("Minduka_Present_Blue_Pack.png", "logo2.png", "topobathy.npz"))


def generate(n: int, seed: int, settings: Settings = TRAIN, digits: np.ndarray | None = None,
             kinds: tuple[str, ...] = KINDS, workers: int = 1) -> tuple[np.ndarray, list[str]]:
    """``n`` non-digits as uint8 [n,28,28] with each one's kind, made by ``workers`` processes
    (the same set for any number); ``pairs`` needs ``digits`` (uint8 [N,28,28] MNIST digits) and
    is left out without them."""
    kinds = tuple(k for k in kinds if k != "pairs" or digits is not None)
    unknown = set(kinds) - set(KINDS)
    if unknown or not kinds:
        raise ValueError(f"unknown kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
    job = (seed, settings, digits, kinds)
    chunks = [(start, min(n, start + _CHUNK)) for start in range(0, n, _CHUNK)]
    if workers <= 1 or len(chunks) <= 1:
        _init(job)
        made = [_make(c) for c in chunks]
    else:  # each worker receives the job (and the digits) once, not per chunk
        with pools.workers(workers, _init, (job,)) as pool:
            made = list(pool.map(_make, chunks))
    out = np.zeros((n, 28, 28), np.uint8)
    names: list[str] = []
    for (start, stop), (images, chunk_kinds) in zip(chunks, made, strict=True):
        out[start:stop] = images
        names += chunk_kinds
    return out, names


_job: tuple = ()


def _init(job: tuple) -> None:
    global _job
    _job = job


def _make(chunk: tuple[int, int]) -> tuple[np.ndarray, list[str]]:
    """Samples ``start`` .. ``stop`` of the current generate() call."""
    (seed, settings, digits, kinds), (start, stop) = _job, chunk
    out = np.zeros((stop - start, 28, 28), np.uint8)
    names = []
    for i in range(start, stop):
        rng = np.random.default_rng([seed, i])
        kind = kinds[int(rng.integers(len(kinds)))]
        out[i - start] = sample(kind, rng, settings, digits)
        names.append(kind)
    return out, names


def verification_set(x_test: np.ndarray, seed: int, n: int = CHECK_NONDIGITS
                     ) -> tuple[np.ndarray, np.ndarray]:
    """What every exported gate file is held to (at export and in parity): MNIST's test digits
    and ``n`` HELDOUT non-digits, as (uint8 images, labels 1 = digit / 0 = not a digit)."""
    others, _ = generate(n, seed + CHECK_SEED, HELDOUT, digits=x_test)
    labels = np.concatenate([np.ones(len(x_test), np.int64), np.zeros(len(others), np.int64)])
    return np.concatenate([x_test, others]), labels


def photo_files(folder: Path, n: int, seed: int, digits: np.ndarray
                ) -> tuple[list[Path], list[str]]:
    """``n`` raw HELDOUT non-digit pictures saved in ``folder`` as PNG at their own size (odd
    ones dark ink on light paper, as a photo of paper shows them), with each one's kind."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths, kinds = [], []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        kind = KINDS[int(rng.integers(len(KINDS)))]
        pixels = np.clip(picture(kind, rng, HELDOUT, digits), 0, 1) * 255
        if i % 2 and kind != "scenes":  # scenes are photo crops already
            pixels = 255 - pixels
        paths.append(folder / f"nondigit-{i:05d}.png")
        Image.fromarray(pixels.astype(np.uint8)).save(paths[-1])
        kinds.append(kind)
    return paths, kinds


def sample(kind: str, rng: np.random.Generator, settings: Settings = TRAIN,
           digits: np.ndarray | None = None) -> np.ndarray:
    """One normalised non-digit of ``kind``: uint8 [28,28]."""
    for _ in range(MAX_TRIES):
        try:
            if kind == "scenes":
                return preprocess_image(_scene(rng, settings))
            z = picture(kind, rng, settings, digits)
            return to_field(z, z > INK_LEVEL * float(z.max()))
        except BlankImageError:
            continue
    raise RuntimeError(f"could not draw a {kind} picture in {MAX_TRIES} tries")


def picture(kind: str, rng: np.random.Generator, settings: Settings = TRAIN,
            digits: np.ndarray | None = None) -> np.ndarray:
    """One drawn picture of ``kind``, light ink on black, float [S,S] in [0, 1] (scenes: a
    grayscale photo crop, dark or light, as a camera gives it)."""
    if kind == "scenes":
        return _scene(rng, settings).astype(np.float32) / 255.0
    if kind == "pairs":
        if digits is None:
            raise ValueError("pairs need MNIST digits")
        return _pair(rng, digits)
    side = int(rng.integers(settings.size[0], settings.size[1] + 1))
    canvas = _Canvas(side, rng, settings)
    draw = {"strokes": canvas.strokes, "shapes": canvas.shapes, "letters": canvas.letters,
            "symbols": canvas.symbols, "textures": canvas.texture}.get(kind)
    if draw is None:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    draw()
    return canvas.result()


class _Canvas:
    """A square of black on which white ink is drawn with Pillow, rotated at the end."""

    def __init__(self, side: int, rng: np.random.Generator, settings: Settings):
        from PIL import Image, ImageDraw

        self.side, self.rng, self.settings = side, rng, settings
        self.image = Image.new("L", (side, side), 0)
        self.draw = ImageDraw.Draw(self.image)
        self.texture_array: np.ndarray | None = None

    def width(self) -> int:
        lo, hi = self.settings.width
        return max(1, round(self.side * float(self.rng.uniform(lo, hi))))

    def points(self, k: int, margin: float = 0.1) -> list[tuple[float, float]]:
        lo, hi = self.side * margin, self.side * (1 - margin)
        return [(float(x), float(y)) for x, y in self.rng.uniform(lo, hi, size=(k, 2))]

    def ink(self) -> int:
        return int(self.rng.integers(160, 256))

    def strokes(self) -> None:
        style = int(self.rng.integers(4))
        w, s, c = self.width(), self.side, self.side / 2
        if style == 0:    # a scribble through 5-9 points
            self.draw.line(self.points(int(self.rng.integers(5, 10))), fill=self.ink(), width=w,
                           joint="curve")
        elif style == 1:  # a zigzag or a wave across
            k = int(self.rng.integers(4, 9))
            amp = s * float(self.rng.uniform(0.1, 0.35))
            xs = np.linspace(s * 0.1, s * 0.9, 2 * k)
            wave = self.rng.random() < 0.5
            ys = [c + amp * (math.sin(j * math.pi / 2) if wave else (-1) ** j)
                  for j in range(2 * k)]
            self.draw.line(list(zip(xs.tolist(), ys, strict=True)), fill=self.ink(), width=w,
                           joint="curve")
        elif style == 2:  # a spiral of 1.5-3 turns
            turns = float(self.rng.uniform(1.5, 3.0))
            t = np.linspace(0, turns * 2 * math.pi, 80)
            r = s * 0.42 * t / t[-1]
            pts = list(zip((c + r * np.cos(t)).tolist(), (c + r * np.sin(t)).tolist(),
                           strict=True))
            self.draw.line(pts, fill=self.ink(), width=max(1, w // 2 + 1), joint="curve")
        else:             # hatching: 3-7 parallel or crossed lines
            k = int(self.rng.integers(3, 8))
            crossed = self.rng.random() < 0.5
            for j in range(k):
                p = s * (0.1 + 0.8 * j / (k - 1))
                self.draw.line([(p, s * 0.1), (p, s * 0.9)], fill=self.ink(), width=max(1, w // 2))
                if crossed:
                    self.draw.line([(s * 0.1, p), (s * 0.9, p)], fill=self.ink(),
                                   width=max(1, w // 2))

    def shapes(self) -> None:
        s, c = self.side, self.side / 2
        r = s * float(self.rng.uniform(0.25, 0.45))
        filled = self.rng.random() < 0.4
        w = self.width()
        style = int(self.rng.integers(6))
        if style <= 2:      # a polygon of 3-6 sides, or a star
            k = int(self.rng.integers(3, 7))
            star = style == 2
            n = 2 * k if star else k
            a0 = float(self.rng.uniform(0, 2 * math.pi))
            radii = [r if not star or j % 2 == 0 else r * 0.45 for j in range(n)]
            pts = [(c + radii[j] * math.cos(a0 + 2 * math.pi * j / n),
                    c + radii[j] * math.sin(a0 + 2 * math.pi * j / n)) for j in range(n)]
            if filled:
                self.draw.polygon(pts, fill=self.ink())
            else:
                self.draw.line([*pts, pts[0], pts[1]], fill=self.ink(), width=w, joint="curve")
        elif style == 3:    # a rectangle, maybe with its diagonals
            h = r * float(self.rng.uniform(0.4, 1.0))
            box = (c - r, c - h, c + r, c + h)
            if filled:
                self.draw.rectangle(box, fill=self.ink())
            else:
                self.draw.rectangle(box, outline=self.ink(), width=w)
                if self.rng.random() < 0.5:
                    self.draw.line([box[:2], box[2:]], fill=self.ink(), width=w)
                    self.draw.line([(box[0], box[3]), (box[2], box[1])], fill=self.ink(), width=w)
        elif style == 4:    # a disc, or a ring crossed by lines (never a plain ring: a zero)
            box = (c - r, c - r, c + r, c + r)
            if filled:
                self.draw.ellipse(box, fill=self.ink())
            else:
                self.draw.ellipse(box, outline=self.ink(), width=w)
                self.draw.line([(c - r, c), (c + r, c)], fill=self.ink(), width=w)
                if self.rng.random() < 0.7:
                    self.draw.line([(c, c - r), (c, c + r)], fill=self.ink(), width=w)
                self.draw.ellipse((c - r / 3, c - r / 3, c + r / 3, c + r / 3), fill=self.ink())
        else:               # an arrow with its head
            a = float(self.rng.uniform(0, 2 * math.pi))
            tip = (c + r * math.cos(a), c + r * math.sin(a))
            tail = (c - r * math.cos(a), c - r * math.sin(a))
            self.draw.line([tail, tip], fill=self.ink(), width=w)
            for da in (2.6, -2.6):
                barb = (tip[0] + r * 0.5 * math.cos(a + da), tip[1] + r * 0.5 * math.sin(a + da))
                self.draw.line([tip, barb], fill=self.ink(), width=w)

    def _text(self, text: str, fonts: tuple[str, ...]) -> None:
        from PIL import ImageFont

        name = fonts[int(self.rng.integers(len(fonts)))]
        share = float(self.rng.uniform(0.5, 0.9)) / max(1, len(text)) ** 0.5
        size = max(8, int(self.side * share))
        font = ImageFont.truetype(str(_font_path(name)), size)
        left, top, right, bottom = self.draw.textbbox((0, 0), text, font=font)
        x = (self.side - (right - left)) / 2 - left
        y = (self.side - (bottom - top)) / 2 - top
        stroke = int(self.rng.integers(0, 2)) if size > 24 else 0
        self.draw.text((x, y), text, fill=self.ink(), font=font, stroke_width=stroke,
                       stroke_fill=self.ink())

    def letters(self) -> None:
        k = int(self.rng.choice([1, 1, 2, 3, 4]))
        alphabet = UPPER if self.rng.random() < 0.5 else LOWER
        text = "".join(alphabet[int(j)] for j in self.rng.integers(len(alphabet), size=k))
        self._text(text, self.settings.fonts)

    def symbols(self) -> None:
        self._text(SYMBOLS[int(self.rng.integers(len(SYMBOLS)))],
                   self.settings.fonts[:self.settings.symbol_fonts])

    def texture(self) -> None:
        s = self.side
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
        style = int(self.rng.integers(4))
        if style == 0:    # a grating at any angle
            a = float(self.rng.uniform(0, math.pi))
            period = s * float(self.rng.uniform(0.08, 0.3))
            t = (np.sin((xx * math.cos(a) + yy * math.sin(a)) * 2 * math.pi / period) > 0)
        elif style == 1:  # a checkerboard
            cell = max(2, int(s * float(self.rng.uniform(0.08, 0.25))))
            t = ((xx // cell + yy // cell) % 2) == 0
        elif style == 2:  # a grid of dots
            step = max(4, int(s * float(self.rng.uniform(0.12, 0.3))))
            rad = step * float(self.rng.uniform(0.2, 0.4))
            t = ((xx % step - step / 2) ** 2 + (yy % step - step / 2) ** 2) < rad ** 2
        else:             # blotches: coarse noise, enlarged and thresholded
            from mnist_edge import imageops as ops

            g = int(self.rng.integers(4, 9))
            noise = ops.resize(self.rng.random((g, g)).astype(np.float32), s, s)
            t = noise > float(np.quantile(noise, self.rng.uniform(0.4, 0.7)))
        self.texture_array = t.astype(np.float32) * (self.ink() / 255.0)

    def result(self) -> np.ndarray:
        if self.texture_array is not None:
            return self.texture_array
        angle = float(self.rng.uniform(-self.settings.rotation, self.settings.rotation))
        from PIL import Image

        rotated = self.image.rotate(angle, resample=Image.Resampling.BILINEAR)
        return np.asarray(rotated, dtype=np.float32) / 255.0


def _pair(rng: np.random.Generator, digits: np.ndarray) -> np.ndarray:
    """Two MNIST digits side by side, touching or overlapping by a few pixels."""
    a, b = (digits[int(j)].astype(np.float32) / 255.0 for j in rng.integers(len(digits), size=2))
    cols_a, cols_b = np.nonzero(a.max(axis=0) > 0)[0], np.nonzero(b.max(axis=0) > 0)[0]
    if cols_a.size == 0 or cols_b.size == 0:
        raise BlankImageError("an empty digit")
    a, b = a[:, cols_a[0]:cols_a[-1] + 1], b[:, cols_b[0]:cols_b[-1] + 1]
    overlap = int(rng.integers(-1, max(2, min(a.shape[1], b.shape[1]) // 3)))
    shift = int(rng.integers(-3, 4))
    width = a.shape[1] + b.shape[1] - overlap
    out = np.zeros((34, width), np.float32)
    out[3:31, :a.shape[1]] = a
    part = out[3 + shift:31 + shift, width - b.shape[1]:]
    np.maximum(part, b, out=part)
    return out


def _scene(rng: np.random.Generator, settings: Settings) -> np.ndarray:
    """A grayscale crop of one of matplotlib's photos, or a drawn composition of lit and shaded
    blocks, discs and gradients: uint8 [S,S]."""
    side = int(rng.integers(settings.size[0], settings.size[1] + 1))
    if rng.random() < 0.5:
        photo = _photo(settings.photos[int(rng.integers(len(settings.photos)))])
        h, w = photo.shape
        crop = int(rng.integers(min(h, w) // 8, min(h, w) // 2))
        y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
        from mnist_edge import imageops as ops

        view = ops.resize(photo[y:y + crop, x:x + crop], side, side)
        return np.clip(view, 0, 255).astype(np.uint8)
    from PIL import Image, ImageDraw

    base = float(rng.uniform(40, 215))
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side
    gradient = base + float(rng.uniform(-60, 60)) * xx + float(rng.uniform(-60, 60)) * yy
    image = Image.fromarray(np.clip(gradient, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 9))):
        x0, y0 = (float(v) for v in rng.uniform(-0.2, 1.0, size=2) * side)
        x1, y1 = x0 + float(rng.uniform(0.1, 0.7)) * side, y0 + float(rng.uniform(0.1, 0.7)) * side
        tone = int(rng.integers(0, 256))
        if rng.random() < 0.5:
            draw.rectangle((x0, y0, x1, y1), fill=tone)
        else:
            draw.ellipse((x0, y0, x1, y1), fill=tone)
    noisy = np.asarray(image, np.float32) + rng.normal(0, float(rng.uniform(1, 8)), (side, side))
    return np.clip(noisy, 0, 255).astype(np.uint8)


@cache
def _font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def _font_path(name: str) -> Path:
    return _font_dir() / name


@cache
def _photo(name: str) -> np.ndarray:
    """One of matplotlib's sample pictures (photos, an MRI slice, elevation maps), grayscale
    float [H,W] in 0..255."""
    import gzip

    import matplotlib
    from PIL import Image

    path = Path(matplotlib.get_data_path()) / "sample_data" / name
    if name.endswith(".ima.gz"):   # 256x256 16-bit MRI slice
        with gzip.open(path) as fh:
            data = np.frombuffer(fh.read(), np.uint16).reshape(256, 256).astype(np.float32)
    elif name.endswith(".npz"):    # an elevation map
        with np.load(path) as npz:
            data = npz["elevation" if "elevation" in npz.files else "topo"].astype(np.float32)
    else:
        with Image.open(path) as im:
            return np.asarray(im.convert("L"), dtype=np.float32)
    lo, hi = float(data.min()), float(data.max())
    return (data - lo) * (255.0 / max(hi - lo, 1e-6))
