"""Lines for the line reader (training, calibration, verification): photographed lines of
MNIST digits (``common.photos``) found and cut into strips by the runtime's own line finder
(``mnist_edge.lines``), so the reader learns from exactly what ``read`` gives it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common import photos, pools
from common.data import load_mnist
from mnist_edge import reader
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
    _one_blas_thread()
    _digits = photos.split_digits(load_mnist(data), split)


def _one_blas_thread() -> None:
    """Run numpy's OpenBLAS on one thread in this worker. The workers already share the cores:
    BLAS's own threads (the runtime's larger resizes, imageops._matmul) only wait on each other,
    a quarter of a line's time. The products are the same, as OpenBLAS splits a product's rows
    and columns among its threads, never a sum. Without numpy's bundled OpenBLAS, nothing."""
    import ctypes
    from pathlib import Path

    for path in sorted((Path(np.__file__).parent.parent / "numpy.libs").glob("*openblas*")):
        lib = ctypes.CDLL(str(path))
        for name in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                     "openblas_set_num_threads64_", "openblas_set_num_threads"):
            setter = getattr(lib, name, None)
            if setter is not None:
                setter(1)
                return


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
    strip = line_strip(ink, lines[0], HEIGHT, multiple=STRIDE * 2)
    return np.rint(strip.pixels * 255).astype(np.uint8), sample.truth


def make_lines(data: str | None, split: str, seed: int, start: int, n: int, workers: int = 2,
               progress: Callable[[int, int], None] | None = None) -> Lines:
    """Lines ``start`` .. ``start + n`` of the set for ``seed``, made by ``workers`` processes
    (``progress(done, n)`` after each); the same lines for any number of workers."""
    jobs = [(seed, i) for i in range(start, start + n)]
    if workers <= 1:
        global _digits
        _digits = photos.split_digits(load_mnist(data), split)
        return _collect(map(_strip, jobs), n, progress)
    with pools.workers(workers, _init, (data, split)) as pool:
        return _collect(pool.map(_strip, jobs, chunksize=64), n, progress)


def _collect(made: Iterator[tuple[np.ndarray, str] | None], n: int,
             progress: Callable[[int, int], None] | None) -> Lines:
    out = Lines([], [])
    for done, line in enumerate(made, 1):
        if progress is not None:
            progress(done, n)
        if line is None:
            out.skipped += 1
        else:
            out.strips.append(line[0])
            out.labels.append(line[1])
    return out


def save_lines(lines: Lines, path: str | Path) -> None:
    """Write ``lines`` to one .npz file (strips side by side, their widths, labels)."""
    widths = np.array([s.shape[1] for s in lines.strips], dtype=np.int64)
    joined = (np.concatenate(lines.strips, axis=1) if lines.strips
              else np.zeros((HEIGHT, 0), dtype=np.uint8))
    with open(path, "wb") as f:
        np.savez(f, strips=joined, widths=widths, labels=np.array(lines.labels, dtype=str),
                 skipped=np.array(lines.skipped))


def load_lines(path: str | Path) -> Lines:
    """Lines written by ``save_lines``."""
    with np.load(path) as z:
        edges = np.concatenate([[0], np.cumsum(z["widths"])])
        joined = z["strips"]
        return Lines([joined[:, a:b] for a, b in zip(edges[:-1], edges[1:], strict=True)],
                     [str(v) for v in z["labels"]], int(z["skipped"]))


def trim(strip: np.ndarray) -> np.ndarray:
    """A strip without the dark columns padded at its right."""
    cols = np.flatnonzero(strip.max(axis=0) > 0)
    return strip[:, :cols[-1] + 1] if cols.size else strip[:, :STRIDE]


def pad(strip: np.ndarray, extra: int = 0, multiple: int = 2 * STRIDE) -> np.ndarray:
    """A float strip in [0, 1] or 0..255 as uint8 0..255, padded with dark to a multiple of
    ``multiple`` columns (after ``extra`` more)."""
    scaled = strip if strip.dtype == np.uint8 else np.clip(np.rint(strip), 0, 255)
    width = int(np.ceil((strip.shape[1] + extra) / multiple)) * multiple
    out = np.zeros((strip.shape[0], max(multiple, width)), dtype=np.uint8)
    out[:, :strip.shape[1]] = scaled
    return out


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: insertions, deletions and substitutions turning ``a`` into ``b``."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


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
    """The digits ``read`` decodes from one line's scores (``mnist_edge.reader.greedy``)."""
    return "".join(str(label) for label, _, _ in reader.greedy(scores, BLANK))
