"""The generated non-digits (common/nondigits.py) are what the gate is trained and measured on.

They must be reproducible from a seed, normalised like a photo's crop (so the gate sees what the
runtime gives it), cover every kind, and the held-out settings must really differ from training.
"""

from __future__ import annotations

import numpy as np
import pytest

from common import nondigits as nd


@pytest.fixture(scope="module")
def digits():
    """A few MNIST-like digits for the pairs: strokes drawn on a 28x28 field."""
    rng = np.random.default_rng(0)
    out = np.zeros((20, 28, 28), np.uint8)
    for i in range(20):
        top, left = rng.integers(4, 8, size=2)
        out[i, top:top + 18, left + 6:left + 10] = 255     # a bar, as a "1"
    return out


def test_same_seed_same_images_whatever_the_count(digits):
    a, kinds_a = nd.generate(12, seed=5, digits=digits)
    b, kinds_b = nd.generate(40, seed=5, digits=digits)
    assert np.array_equal(a, b[:12]) and kinds_a == kinds_b[:12]
    c, _ = nd.generate(12, seed=6, digits=digits)
    assert not np.array_equal(a, c)


def test_images_are_normalised_like_mnist(digits):
    images, kinds = nd.generate(140, seed=1, digits=digits)
    assert images.shape == (140, 28, 28) and images.dtype == np.uint8
    assert set(kinds) == set(nd.KINDS)
    for image, kind in zip(images, kinds, strict=True):
        ink = image > 127
        rows, cols = np.nonzero(ink.any(axis=1))[0], np.nonzero(ink.any(axis=0))[0]
        assert image.max() == 255, kind                   # the peak is full scale, as MNIST
        assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 <= 22, kind   # fits the 20x20 box
        w = image.astype(np.float64)
        cy = (w.sum(axis=1) * np.arange(28)).sum() / w.sum()
        cx = (w.sum(axis=0) * np.arange(28)).sum() / w.sum()
        assert abs(cy - 14) < 2.5 and abs(cx - 14) < 2.5, kind


def test_pairs_need_digits_and_unknown_kinds_are_refused(digits):
    _, kinds = nd.generate(30, seed=2)
    assert "pairs" not in kinds and len(set(kinds)) == len(nd.KINDS) - 1
    _, kinds = nd.generate(10, seed=2, digits=digits, kinds=("pairs",))
    assert kinds == ["pairs"] * 10
    with pytest.raises(ValueError, match="unknown kinds"):
        nd.generate(3, seed=2, kinds=("letters", "faces"))


def test_heldout_draws_differently_from_training(digits):
    assert not set(nd.TRAIN.fonts) & set(nd.HELDOUT.fonts)
    assert not set(nd.TRAIN.photos) & set(nd.HELDOUT.photos)
    assert nd.TRAIN.size != nd.HELDOUT.size and nd.TRAIN.width != nd.HELDOUT.width
    kinds = ("letters", "symbols", "strokes", "shapes")
    a, _ = nd.generate(40, seed=3, settings=nd.TRAIN, kinds=kinds)
    b, _ = nd.generate(40, seed=3, settings=nd.HELDOUT, kinds=kinds)
    assert sum(not np.array_equal(x, y) for x, y in zip(a, b, strict=True)) >= 36


def test_no_character_a_hand_would_make_look_like_a_digit():
    drawn = set(nd.UPPER) | set(nd.LOWER) | set("".join(nd.SYMBOLS))
    assert not drawn & set("0123456789OoQDIlijJ|ZzSsBbGgqyTt()/\\!?")


def test_any_number_of_processes_draws_the_same_set(digits):
    one, kinds_one = nd.generate(1100, seed=8, digits=digits, workers=1)
    two, kinds_two = nd.generate(1100, seed=8, digits=digits, workers=2)
    assert np.array_equal(one, two) and kinds_one == kinds_two
