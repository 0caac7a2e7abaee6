"""Lines for the line reader (training, calibration, verification): photographed lines of
MNIST digits (``common.photos``) found and cut into strips by the runtime's own line finder
(``mnist_edge.lines``), so the reader learns from exactly what ``read`` gives it."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from common import photos
from common.data import load_mnist
from mnist_edge.errors import BlankImageError
from mnist_edge.lines import find_lines, line_strip

HEIGHT = 32          # a strip's rows: the line reader's input height
STRIDE = 4           # strip columns per column of the reader's output
CLASSES = 11         # the reader's scores per column: digits 0-9, then the blank
BLANK = 10


@dataclass
class Lines:
    """Strips (uint8 [HEIGHT, width], light ink on dark) and their digit strings."""

    strips: list[np.ndarray]
    labels: list[str]
    skipped: int = 0   # photos whose ink was not found as one line


_digits: photos.Digits | None = None


def _init(data: str | None, split: str) -> None:
    global _digits
    _digits = photos.split_digits(load_mnist(data), split)


def _strip(job: tuple[int, int]) -> tuple[np.ndarray, str] | None:
    seed, index = job
    assert _digits is not None
    sample = photos.line_sample(_digits, seed, index)
    try:
        ink, lines = find_lines(sample.image)
    except BlankImageError:
        return None
    if len(lines) != 1:
        return None
    strip = line_strip(ink, lines[0], HEIGHT, STRIDE * 2)
    return np.rint(strip.pixels * 255).astype(np.uint8), sample.truth


def make_lines(data: str | None, split: str, seed: int, start: int, n: int,
               workers: int = 2) -> Lines:
    """Lines ``start`` .. ``start + n`` of the set for ``seed``, made by ``workers`` processes."""
    jobs = [(seed, i) for i in range(start, start + n)]
    out = Lines([], [])
    ctx = mp.get_context("fork")
    with ctx.Pool(workers, initializer=_init, initargs=(data, split)) as pool:
        for made in pool.imap(_strip, jobs, chunksize=64):
            if made is None:
                out.skipped += 1
            else:
                out.strips.append(made[0])
                out.labels.append(made[1])
    return out


def batches(lines: Lines, batch: int, rng: np.random.Generator | None
            ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(images float32 [b, HEIGHT, W, 1], labels int32 [b, L] padded with BLANK, label lengths,
    output lengths) of similar widths; shuffled when ``rng`` is given."""
    widths = np.array([s.shape[1] for s in lines.strips])
    order = np.argsort(widths + (rng.uniform(0, 24, len(widths)) if rng is not None else 0),
                       kind="stable")
    groups = [order[i:i + batch] for i in range(0, len(order), batch)]
    if rng is not None:
        rng.shuffle(groups)
    for g in groups:
        w = int(widths[g].max())
        x = np.zeros((len(g), HEIGHT, w, 1), dtype=np.float32)
        longest = max(1, max(len(lines.labels[i]) for i in g))
        y = np.full((len(g), longest), BLANK, dtype=np.int32)
        for k, i in enumerate(g):
            s = lines.strips[i]
            x[k, :, :s.shape[1], 0] = s / np.float32(255)
            y[k, :len(lines.labels[i])] = [int(c) for c in lines.labels[i]]
        label_len = np.array([len(lines.labels[i]) for i in g], dtype=np.int32)
        out_len = np.full(len(g), w // STRIDE, dtype=np.int32)
        yield x, y, label_len, out_len


def greedy(scores: np.ndarray) -> str:
    """Best path: the top class per column, repeats merged, blanks dropped."""
    best = scores.argmax(axis=-1)
    keep = (best != BLANK) & np.concatenate([[True], best[1:] != best[:-1]])
    return "".join(str(int(c)) for c in best[keep])
