"""The generic photo path (mnist_edge.items) for models of other pictures than digits: the item is
found, cropped, made square and scaled to 28x28, light on dark, in either polarity."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_edge.errors import BlankImageError, InputError
from mnist_edge.items import preprocess_item


def _item(h: int = 28, w: int = 28) -> np.ndarray:
    """A Fashion-MNIST-like item: a light trouser shape filling the field's height, on black."""
    x = np.zeros((h, w), np.uint8)
    x[1:27, 9:13] = 180
    x[1:27, 15:19] = 200
    x[1:6, 9:19] = 220
    return x


def test_an_item_already_in_the_field_is_kept_as_it_is():
    x = _item()
    out = preprocess_item(x)
    assert out.shape == (28, 28) and out.dtype == np.uint8 and out.max() == 255
    # the same shape, stretched to 255: bright where the item is, black elsewhere
    np.testing.assert_array_equal(out > 60, x > 0)


def test_a_photo_of_a_dark_item_on_paper_comes_out_light_on_black():
    rng = np.random.default_rng(1)
    item = np.kron(_item(), np.ones((6, 6), np.uint8))          # 168x168
    page = np.full((300, 400), 240, np.float32)
    page[50:218, 170:338] -= item.astype(np.float32)            # dark item on light paper
    page += rng.normal(0, 2, page.shape)
    out = preprocess_item(np.clip(page, 0, 255).astype(np.uint8))
    ref = preprocess_item(_item())
    assert np.abs(out.astype(int) - ref.astype(int)).mean() < 12
    assert out[:, :5].max() < 40 and out[:, -5:].max() < 40     # the paper is black


def test_the_item_is_centred_and_keeps_its_aspect():
    x = np.zeros((100, 300), np.uint8)
    x[40:60, 20:120] = 255                                      # a 100x20 bar, off-centre
    out = preprocess_item(x)
    rows, cols = np.nonzero(out > 127)
    assert cols.min() <= 1 and cols.max() >= 26                 # the longest side fills 28
    assert rows.min() >= 10 and rows.max() <= 17                # 20/100 of it, centred
    assert abs((rows.min() + rows.max()) / 2 - 13.5) <= 1


@pytest.mark.parametrize("image", [np.zeros((40, 40), np.uint8),
                                   np.full((40, 60, 3), 200, np.uint8),
                                   np.random.default_rng(0).normal(128, 2, (64, 64)).clip(0, 255)
                                   .astype(np.uint8)])
def test_a_picture_with_nothing_on_it_is_blank(image):
    with pytest.raises(BlankImageError, match="nothing found"):
        preprocess_item(image)


def test_a_bad_array_is_refused():
    with pytest.raises(InputError):
        preprocess_item(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(InputError):
        preprocess_item(np.full((8, 8), np.nan, np.float32))
