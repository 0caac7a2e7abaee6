"""The image primitives against their definitions: connected pieces against a flood fill, holes
against what the border reaches, area weights against exact overlaps, percentiles against
numpy's."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from mnist_edge import imageops as ops


def _masks() -> list[np.ndarray]:
    """Random masks of many densities, and shapes that chain runs far apart: a snake (one piece
    winding through every row), a comb joined at its foot, two diagonals."""
    rng = np.random.default_rng(0)
    masks = [rng.random(tuple(rng.integers(1, 60, 2))) < rng.uniform(0.05, 0.9)
             for _ in range(150)]
    snake = np.zeros((41, 41), dtype=bool)
    snake[::2] = True
    snake[1::4, -1] = True
    snake[3::4, 0] = True
    comb = np.zeros((30, 61), dtype=bool)
    comb[:, ::2] = True
    comb[-1] = True
    return masks + [snake, snake[::-1], snake.T, comb, comb[::-1], np.eye(40, dtype=bool),
                    np.eye(40, dtype=bool)[::-1]]


def _flood(mask: np.ndarray) -> np.ndarray:
    """Piece id of every pixel (8-neighbour flood fill, numbered in row-major order), -1 off."""
    h, w = mask.shape
    label = np.full(mask.shape, -1)
    n = 0
    for y, x in zip(*np.nonzero(mask), strict=True):
        if label[y, x] >= 0:
            continue
        label[y, x] = n
        stack = [(y, x)]
        while stack:
            a, b = stack.pop()
            for c in range(max(0, a - 1), min(h, a + 2)):
                for d in range(max(0, b - 1), min(w, b + 2)):
                    if mask[c, d] and label[c, d] < 0:
                        label[c, d] = n
                        stack.append((c, d))
        n += 1
    return label


def test_components_are_the_flood_fills_pieces():
    for mask in _masks():
        truth = _flood(mask)
        c = ops.components(mask, mask.astype(np.float32))
        if c is None:
            assert not mask.any()
            continue
        assert np.array_equal(c.comp, truth[c.row, c.start])  # the same pieces, numbered alike
        for k in range(int(truth.max()) + 1):
            ys, xs = np.nonzero(truth == k)
            assert c.area[k] == c.mass[k] == ys.size
            assert (c.top[k], c.bottom[k], c.left[k], c.right[k]) == (
                ys.min(), ys.max(), xs.min(), xs.max())
            assert np.array_equal(c.pixels(np.arange(len(c.area)) == k, mask.shape), truth == k)


def test_fill_holes_fills_what_the_border_does_not_reach():
    for mask in _masks():
        paper = _flood(~mask)
        outside = np.unique(np.concatenate([paper[0], paper[-1], paper[:, 0], paper[:, -1]]))
        assert np.array_equal(ops.fill_holes(mask), mask | ~np.isin(paper, outside))


def test_area_weights_are_the_exact_overlaps():
    for src in (1, 2, 3, 7, 28, 29, 100, 333, 640):
        for dst in sorted({1, 2, 3, 5, 28, 32, max(1, src // 3), src}):
            if dst > src:
                continue
            m = ops._resize_matrix(src, dst)
            step = Fraction(src, dst)
            for i in range(dst):
                lo, hi = i * step, (i + 1) * step
                want = [float(max(0, min(hi, j + 1) - max(lo, j)) / step) for j in range(src)]
                np.testing.assert_allclose(m[i], want, rtol=1e-6, atol=1e-7)


def test_percentile_is_numpys():
    rng = np.random.default_rng(1)
    for n in (1, 2, 3, 10, 101, 4000):
        for a in (rng.normal(size=n).astype(np.float32), rng.random((n, 3)),
                  np.round(rng.random(n) * 4).astype(np.float32)):
            for q in (0, 1, 10, 25, 50, 90, 99, 100, 33.3):
                got = ops.percentile(a, q)
                assert got.dtype == a.dtype
                np.testing.assert_allclose(got, np.percentile(a, q), rtol=1e-6)
            np.testing.assert_allclose(ops.percentile(a, [1, 50, 99]),
                                       np.percentile(a, [1, 50, 99]), rtol=1e-6)
