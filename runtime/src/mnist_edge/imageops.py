"""Image primitives of the photo pipeline (ink.py, normalize.py, reader.py), in numpy, each kept
for a reason.

Neither numpy nor Pillow does these jobs as fast (or at all), measured on 256x200 float images:

- percentile / median: np.percentile and np.median import numpy.ma on first use, 10-20 ms of a
  one-image CLI run; np.partition gives the same values.
- dilate: Pillow's MaxFilter (on an 8-bit copy of the mask) gives the same mask 14-28x slower.
- blur3: Pillow's BoxBlur does not take float ("F") images.
- resize: area averaging with exact fractional coverage (MNIST's anti-aliasing); Pillow's BOX
  filter weighs whole pixels by their centre, up to 0.46 off on a 1.5x shrink.
- runs / label_runs / components / fill_holes: connected components; Pillow has none, and
  SciPy is not a dependency of the runtime.
- otsu, mad, median3, fill, reduce, shrink, border: a few lines each, with no library
  equivalent in numpy.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np

LARGE_PRODUCT = 4_000_000  # multiply-adds from which a matrix product goes to BLAS
RESIZE_CACHE_BYTES = 4 << 20  # resize matrices kept for reuse (see _MatrixCache)

if TYPE_CHECKING:  # annotations only: importing numpy.typing costs start-up time
    import numpy.typing as npt


def percentile(a: npt.ArrayLike, q: float | Sequence[float],
               axis: int | None = None) -> np.ndarray:
    """np.percentile (linear interpolation) by np.partition.

    np.percentile and np.median import numpy.ma on first use (10-20 ms of a one-image CLI run).
    """
    a = np.asarray(a)
    if axis is None and isinstance(q, (int, float)) and 0 <= q <= 100 and a.size \
            and a.dtype == np.float32:  # one value of an image: the arithmetic below, on scalars
        flat = a.reshape(-1)
        pos = q / 100.0 * (flat.size - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, flat.size - 1)
        part = np.partition(flat, sorted({lo, hi}))
        value = np.float32(part[lo] + (part[hi] - part[lo]) * np.float64(pos - lo))
        return cast("np.ndarray", value)
    if axis is None:
        a, axis = a.reshape(-1), 0
    qs = np.atleast_1d(np.asarray(q, dtype=np.float64))
    n = a.shape[axis]
    if n == 0:
        shape = list(a.shape)
        shape[axis] = len(qs)
        out = np.full(shape, np.nan)
    else:
        pos = qs / 100.0 * (n - 1)
        lo = np.floor(pos).astype(np.intp)
        hi = np.minimum(lo + 1, n - 1)
        part = np.partition(a, sorted({*lo.tolist(), *hi.tolist()}), axis=axis)
        frac_shape = [1] * a.ndim
        frac_shape[axis] = len(qs)
        vlo, vhi = np.take(part, lo, axis=axis), np.take(part, hi, axis=axis)
        out = vlo + (vhi - vlo) * (pos - lo).reshape(frac_shape)
    if a.dtype.kind == "f":
        out = out.astype(a.dtype, copy=False)
    if np.ndim(q) == 0:
        one: np.ndarray = np.take(out, 0, axis=axis)
        return one
    return np.moveaxis(out, axis, 0)


def median(a: npt.ArrayLike, axis: int | None = None) -> np.ndarray:
    """np.median without importing numpy.ma."""
    return percentile(a, 50.0, axis)


def mad(a: np.ndarray) -> float:
    """Robust standard deviation (median absolute deviation)."""
    if a.size == 0:
        return 0.0
    a = sample(a)
    return 1.4826 * float(median(np.abs(a - median(a))))


def sample(a: np.ndarray, limit: int = 16384) -> np.ndarray:
    """At most about ``limit`` evenly strided values: plenty for a median, and 4-16x faster."""
    a = a.ravel()
    return a[::-(-a.size // limit)]


def border(a: np.ndarray) -> np.ndarray:
    """The outer ring (1/16 of each side, at least one pixel): mostly background."""
    h, w = a.shape
    r = max(1, min(h, w) // 16)
    if 2 * r >= h or 2 * r >= w:
        return a.ravel()
    return np.concatenate([a[:r].ravel(), a[-r:].ravel(), a[r:-r, :r].ravel(),
                           a[r:-r, -r:].ravel()])


def fill(grid: np.ndarray) -> np.ndarray:
    """Fill NaN cells (all ink) with the mean of their known neighbours, growing inwards."""
    if np.isnan(grid).all():
        return np.zeros_like(grid)
    while np.isnan(grid).any():
        known = ~np.isnan(grid)
        p = pad(np.where(known, grid, 0.0), 1)
        k = pad(known.astype(np.float32), 1)
        h, w = grid.shape
        total = sum(p[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3))
        count = sum(k[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3))
        grow = ~known & (count > 0)
        grid = np.where(grow, total / np.maximum(count, 1), grid)
    return grid


def pad(a: np.ndarray, width: int | tuple[tuple[int, int], tuple[int, int]],
        edge: bool = False) -> np.ndarray:
    """np.pad of a 2-D array with zeros, or with its border repeated (``edge``: mode="edge", of
    a non-empty array), without np.pad's overhead on small arrays."""
    (top, bottom), (left, right) = ((width, width),) * 2 if isinstance(width, int) else width
    h, w = a.shape
    shape = (h + top + bottom, w + left + right)
    out = np.empty(shape, dtype=a.dtype) if edge else np.zeros(shape, dtype=a.dtype)
    out[top:top + h, left:left + w] = a
    if edge:
        out[:top, left:left + w] = a[:1]
        out[top + h:, left:left + w] = a[h - 1:]
        out[:, :left] = out[:, left:left + 1]
        out[:, left + w:] = out[:, left + w - 1:left + w]
    return out


def median3(grid: np.ndarray) -> np.ndarray:
    """3x3 median over the mesh: a cell spoilt by ink takes its neighbours' value."""
    h, w = grid.shape
    p = pad(grid, 1, edge=True)
    return median(np.stack([p[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)]),
                  axis=0)


def dilate(a: np.ndarray, steps: int) -> np.ndarray:
    """Grow a boolean mask, or the light parts of a grey image, by ``steps`` pixels (3x3 maximum
    each step)."""
    h, w = a.shape
    for _ in range(steps):
        p = pad(a, 1)
        out = p[1:-1, 1:-1].copy()
        for dy in range(3):
            for dx in range(3):
                np.maximum(out, p[dy:dy + h, dx:dx + w], out=out)
        a = out
    return a


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Horizontal runs of True: row, first column, end column (exclusive), in row-major order."""
    h, w = mask.shape
    p = np.zeros((h, w + 2), dtype=bool)
    p[:, 1:-1] = mask
    # one pass over the edges (where a pixel differs from its left neighbour), starts and ends
    # together: 4x faster than a nonzero per kind on a 640x480 frame (measured)
    edge = np.flatnonzero(p[:, 1:] != p[:, :-1])
    row, col = np.divmod(edge, w + 1)
    start = p[:, 1:].reshape(-1)[edge]  # ink after the edge: a run starts there
    return row[start], col[start], col[~start]


def label_runs(row: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Component id of every run (8-connected), numbered in order of each component's first run.

    Runs of adjacent rows that overlap or touch diagonally are linked (found by binary search,
    as runs are in row-major order); each run then takes the smallest run index it is linked
    to, hooking and pointer jumping until every link joins equal labels.
    """
    n = len(row)
    if n == 0:
        return np.zeros(0, dtype=np.intp)
    stride = int(end.max()) + 2             # row * stride + column orders runs row-major
    first, last = row * stride + start, row * stride + end
    above = (row - 1) * stride
    lo = np.searchsorted(last, above + start, side="left")    # the previous row's runs that
    hi = np.searchsorted(first, above + end, side="right")    # end at or after this one's start
    count = np.maximum(hi - lo, 0)                             # ...and start by its end
    b, a = _repeat(np.arange(n), count), _spans(lo, count)
    label = np.arange(n)
    while True:
        la, lb = label[a], label[b]
        if (la == lb).all():
            break
        low = np.minimum(la, lb)
        np.minimum.at(label, la, low)     # hook each root onto the smaller one it links to
        np.minimum.at(label, lb, low)
        while True:                       # ...and point every run at its root
            up = label[label]
            if (up == label).all():
                break
            label = up
    return np.unique(label, return_inverse=True)[1]


def paint_runs(out: np.ndarray, row: np.ndarray, start: np.ndarray, end: np.ndarray,
               value: np.ndarray | bool = True) -> None:
    """Set the pixels of runs (inside ``out``, not overlapping) to ``value``, one for all or
    one per run."""
    length = np.maximum(end - start, 0)
    out[_repeat(row, length), _spans(start, length)] = (
        _repeat(value, length) if isinstance(value, np.ndarray) else value)


def _spans(first: np.ndarray, count: np.ndarray) -> np.ndarray:
    """The ranges first[k] .. first[k] + count[k] (exclusive), one after another."""
    ends = np.cumsum(count)
    spans: np.ndarray = np.arange(int(ends[-1]) if ends.size else 0) - _repeat(
        ends - count - first, count)
    return spans


def _repeat(a: np.ndarray, count: np.ndarray) -> np.ndarray:
    """np.repeat with the counts as np.intp: a 32-bit numpy refuses int64 counts."""
    out: np.ndarray = np.repeat(a, count.astype(np.intp, copy=False))
    return out


@dataclass
class Components:
    """The 8-connected components of a mask: each run's component, and per component its ink
    mass (the sum of ``weights`` over it), pixel count and box (inclusive)."""

    row: np.ndarray
    start: np.ndarray
    end: np.ndarray
    comp: np.ndarray
    mass: np.ndarray
    area: np.ndarray
    top: np.ndarray
    bottom: np.ndarray
    left: np.ndarray
    right: np.ndarray

    def pixels(self, chosen: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """A mask of the components where ``chosen`` (bool per component) is True."""
        out = np.zeros(shape, dtype=bool)
        keep = chosen[self.comp]
        paint_runs(out, self.row[keep], self.start[keep], self.end[keep])
        return out


def components(mask: np.ndarray, weights: np.ndarray) -> Components | None:
    """The components of ``mask`` with their statistics; None when the mask is empty."""
    row, start, end = runs(mask)
    if row.size == 0:
        return None
    comp = label_runs(row, start, end)
    n = int(comp.max()) + 1
    h, w = mask.shape
    # running sums of the rows that hold a run only (runs are in row-major order)
    rows, at = np.unique(row, return_inverse=True)
    csum = np.zeros((len(rows), w + 1), dtype=np.float64)
    np.cumsum(weights[rows], axis=1, out=csum[:, 1:])
    mass = np.bincount(comp, csum[at, end] - csum[at, start], minlength=n)
    area = np.bincount(comp, end - start, minlength=n).astype(np.float64)
    top, bottom = np.full(n, h), np.full(n, -1)
    left, right = np.full(n, w), np.full(n, -1)
    np.minimum.at(top, comp, row)
    np.maximum.at(bottom, comp, row)
    np.minimum.at(left, comp, start)
    np.maximum.at(right, comp, end - 1)
    return Components(row, start, end, comp, mass, area, top, bottom, left, right)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """The mask with every region it encloses (not reaching the image's border) filled."""
    row, start, end = runs(~mask)
    if row.size == 0:
        return mask
    comp = label_runs(row, start, end)
    h, w = mask.shape
    outer = np.zeros(int(comp.max()) + 1, dtype=bool)
    outer[comp[(row == 0) | (row == h - 1) | (start == 0) | (end == w)]] = True
    out = mask.copy()
    inner = ~outer[comp]
    paint_runs(out, row[inner], start[inner], end[inner])
    return out


def blur3(a: np.ndarray) -> np.ndarray:
    p = pad(a, 1, edge=True)
    h, w = a.shape
    out = np.zeros_like(a)
    for dy in range(3):
        for dx in range(3):
            out += p[dy:dy + h, dx:dx + w]
    return out / np.float32(9.0)


def otsu(a: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold: the level that best separates the values into two classes."""
    top = float(a.max())
    if top <= 0:
        return 0.0
    hist, edges = np.histogram(a, bins=bins, range=(0.0, top))
    hist = hist.astype(np.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mean0 = m0 / np.maximum(w0, 1)
    mean1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mean0 - mean1) ** 2
    return float(edges[int(np.argmax(between[:-1])) + 1])


def reduction(shape: tuple[int, ...], limit: int) -> int:
    """The block side ``reduce`` uses for an image of ``shape``: 1 when it fits ``limit``."""
    return max(1, int(np.ceil(np.sqrt(shape[0] * shape[1] / limit))))


def reduce(a: np.ndarray, limit: int, k: int | None = None) -> np.ndarray:
    """Average k x k blocks so that at most ``limit`` pixels remain (an anti-aliased shrink), or
    blocks of the ``k`` given.

    Budgeting pixels rather than the longer side keeps a narrow strip (and the digit in it) sharp.
    """
    k = reduction(a.shape, limit) if k is None else k
    if k <= 1:
        return a
    h, w = a.shape
    hh, ww = max(k, h - h % k), max(k, w - w % k)
    if hh > h or ww > w:  # a side shorter than one block: pad by repeating the edge
        a = np.pad(a, ((0, max(0, hh - h)), (0, max(0, ww - w))), mode="edge")
    a = a[:hh, :ww]
    blocks: np.ndarray = a.reshape(hh // k, k, ww // k, k).mean(axis=(1, 3), dtype=np.float32)
    return blocks


def shrink(a: np.ndarray, k: int) -> np.ndarray:
    """Average k x k blocks of a 2-D image, the last ones partial (as Pillow's reduce): an image
    of any shape, however long and thin, without padding it to whole blocks."""
    if k <= 1:
        return a
    for axis in (0, 1):
        n = a.shape[axis]
        starts = np.arange(0, n, k)
        counts = np.diff(np.append(starts, n)).astype(np.float32)
        a = np.add.reduceat(a, starts, axis=axis, dtype=np.float32)
        a /= counts[:, None] if axis == 0 else counts[None, :]
    return a


class _MatrixCache:
    """The most recently used resize matrices, up to ``budget`` bytes in all (thread-safe).

    Bounded by bytes, not entries: a line's strip needs a matrix as large as the line is wide, and
    a video of a moving number asks for new sizes for minutes (512 entries of those grew a 10-minute
    stream's memory by a fifth); crops' matrices are small and stay.
    """

    def __init__(self, budget: int):
        self._budget, self._bytes = budget, 0
        self._items: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, src: int, dst: int) -> np.ndarray:
        key = (src, dst)
        with self._lock:
            m = self._items.get(key)
            if m is not None:
                self._items.move_to_end(key)
                return m
        m = _build_resize_matrix(src, dst)
        m.flags.writeable = False
        with self._lock:
            if key not in self._items and m.nbytes <= self._budget:
                self._items[key] = m
                self._bytes += m.nbytes
                while self._bytes > self._budget:
                    _, old = self._items.popitem(last=False)
                    self._bytes -= old.nbytes
        return m


_MATRICES = _MatrixCache(RESIZE_CACHE_BYTES)


def _resize_matrix(src: int, dst: int) -> np.ndarray:
    """[dst, src] weights: area averaging when shrinking, linear interpolation when growing.

    Cached (the reader resizes hundreds of crops of a few sizes); read-only.
    """
    return _MATRICES.get(src, dst)


def _build_resize_matrix(src: int, dst: int) -> np.ndarray:
    m = np.zeros((dst, src), dtype=np.float32)
    if dst <= src:
        step = src / dst
        rows = np.arange(dst)
        lo, hi = rows * step, (rows + 1) * step     # row i covers source [lo, hi)
        first = lo.astype(np.intp)
        count = np.maximum(np.minimum(src, np.ceil(hi).astype(np.intp)) - first, 0)
        i, j = _repeat(rows, count), _spans(first, count)
        m[i, j] = np.minimum(hi[i], j + 1) - np.maximum(lo[i], j)
        weights: np.ndarray = m / m.sum(axis=1, keepdims=True)
        return weights
    pos = np.clip((np.arange(dst) + 0.5) * src / dst - 0.5, 0, src - 1)
    j0 = np.floor(pos).astype(int)
    j1 = np.minimum(j0 + 1, src - 1)
    frac = (pos - j0).astype(np.float32)
    m[np.arange(dst), j0] += 1 - frac
    m[np.arange(dst), j1] += frac
    return m


def resize(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """``a`` resized to [h, w]: area averaging when shrinking, linear interpolation when growing."""
    return _matmul(_matmul(_resize_matrix(a.shape[0], h), a), _resize_matrix(a.shape[1], w).T)


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # einsum for the small products of crops: BLAS's thread pool makes them erratic (10x slower)
    # on a busy CPU; BLAS for large ones (a background scaled up to 640x480: 8x faster)
    if a.shape[0] * a.shape[1] * b.shape[1] > LARGE_PRODUCT:
        large: np.ndarray = a @ b
        return large
    product: np.ndarray = np.einsum("ij,jk->ik", a, b)
    return product
