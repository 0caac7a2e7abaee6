"""Generated videos of handwritten numbers: the live reader's tests, bench and fuzzer.

    from common import photos, videos
    digits = photos.split_digits(load_mnist(), "test")
    clip = videos.clip(digits, [videos.Scene("", 15), videos.Scene("4096", 40, dx=3),
                                videos.Scene("4097", 40), videos.Scene("", 20)], seed=7)
    clip.changes                        # [(0, ""), (15, "4096"), (55, "4097"), (95, "")]
    videos.write_video(clip, "clip.mp4")
    for frame in clip.frames(): ...     # the same frames without a file (uint8 [H,W])

A scene is a number written as ``photos.plain_number`` writes it (its digits drawn from the
split by label, dark ink on a grey page shaded left to right), or the empty page ("" = no
digit), held for some frames, moving ``dx``/``dy`` pixels a frame (it stays whole in the frame);
every frame has its own sensor noise. A scene whose number equals the previous one's shows the
same written number (moved, or moving differently): not a change.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common import photos

SIZE = (640, 480)  # frame width, height
FPS = 30
CODEC = "mp4v"     # MPEG-4 part 2 in .mp4: written and read by every OpenCV wheel's FFmpeg
NOISE = 0.02       # sensor noise, a share of the full range
HEIGHT = 70        # digit height in pixels


@dataclass(frozen=True)
class Scene:
    """``number`` ("" for the empty page) held for ``frames`` frames, moving ``dx``, ``dy``
    pixels a frame."""

    number: str
    frames: int
    dx: int = 0
    dy: int = 0


@dataclass(frozen=True)
class Clip:
    """Scenes ready to render: each number's ink on the frame, and the truth."""

    scenes: tuple[Scene, ...]
    inks: tuple[np.ndarray | None, ...]  # float32 [H,W] in [0,1] per scene (None: empty page)
    seed: int
    size: tuple[int, int] = SIZE

    @property
    def length(self) -> int:
        """Frames in the clip."""
        return sum(s.frames for s in self.scenes)

    @property
    def changes(self) -> list[tuple[int, str]]:
        """(first frame, number) each time the number shown changes, "" for the empty page."""
        out: list[tuple[int, str]] = []
        start = 0
        for scene in self.scenes:
            if not out or out[-1][1] != scene.number:
                out.append((start, scene.number))
            start += scene.frames
        return out

    def frames(self, repeat: int = 1) -> Iterator[np.ndarray]:
        """Every frame, uint8 [H,W] (the clip ``repeat`` times, new noise each time)."""
        w, h = self.size
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        light = 0.92 * (1.0 - 0.3 * xx / w - 0.1 * yy / h)
        rng = np.random.default_rng(self.seed)
        for _ in range(repeat):
            for scene, ink in zip(self.scenes, self.inks, strict=True):
                for t in range(scene.frames):
                    page = light.copy()
                    if ink is not None:
                        page *= 1 - 0.85 * _shifted(ink, scene.dx * t, scene.dy * t)
                    page += rng.normal(0, NOISE, size=page.shape).astype(np.float32)
                    yield np.clip(np.rint(page * 255), 0, 255).astype(np.uint8)


def clip(digits: photos.Digits, scenes: Sequence[Scene], seed: int,
         size: tuple[int, int] = SIZE, pool: np.ndarray | None = None) -> Clip:
    """The clip of ``scenes``: each number's digits drawn from ``digits`` by label (from the
    indices ``pool`` when given), placed so that its moves keep it inside the frame."""
    rng = np.random.default_rng(seed)
    candidates = np.arange(len(digits.y)) if pool is None else np.asarray(pool)
    inks: list[np.ndarray | None] = []
    centred: np.ndarray | None = None
    for i, scene in enumerate(scenes):
        if not scene.number:
            inks.append(None)
            continue
        if not scene.number.isdigit():
            raise ValueError(f"a scene's number is digits or '', got {scene.number!r}")
        if i == 0 or scenes[i - 1].number != scene.number or centred is None:
            sources = [int(rng.choice(candidates[digits.y[candidates] == int(c)]))
                       for c in scene.number]
            centred = photos.plain_number(digits, sources, rng, height=HEIGHT, frame=size).ink()
        inks.append(_start(centred, scene, size))
    return Clip(tuple(scenes), tuple(inks), seed, size)


def _start(ink: np.ndarray, scene: Scene, size: tuple[int, int]) -> np.ndarray:
    """The centred ink moved back by half the scene's travel: the moves stay in the frame."""
    rows, cols = np.nonzero(ink > 0)
    travel = (scene.dx * (scene.frames - 1), scene.dy * (scene.frames - 1))
    room = (size[0] - (cols.max() - cols.min() + 1), size[1] - (rows.max() - rows.min() + 1))
    if abs(travel[0]) >= room[0] or abs(travel[1]) >= room[1]:
        raise ValueError(f"scene {scene.number!r} travels {travel} pixels; the frame leaves "
                         f"{room}")
    return _shifted(ink, -travel[0] // 2, -travel[1] // 2)


def _shifted(ink: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``ink`` moved by (dx, dy) pixels, paper coming in behind it."""
    out = np.zeros_like(ink)
    h, w = ink.shape
    src = ink[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
    out[max(0, dy):max(0, dy) + src.shape[0], max(0, dx):max(0, dx) + src.shape[1]] = src
    return out


def write_video(clip: Clip, path: str | os.PathLike[str], fps: int = FPS,
                codec: str = CODEC) -> Path:
    """Write the clip as a video file (atomically: a temporary file renamed into place)."""
    import cv2

    target = Path(path)
    fd, tmp = tempfile.mkstemp(suffix=target.suffix, dir=target.parent, prefix=".video-")
    os.close(fd)
    try:
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter.fourcc(*codec), fps, clip.size,
                                 isColor=False)
        if not writer.isOpened():
            raise OSError(f"OpenCV cannot write {codec} video to {target}")
        for frame in clip.frames():
            writer.write(frame)
        writer.release()
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
