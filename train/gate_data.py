"""The "no digit" gate's data: MNIST training digits, as they are and restyled the way photos
arrive, against generated non-digits (``common.nondigits``); and the threshold's calibration.

    from train import gate_data
    fit = gate_data.gate_set(x_train[:54000], seed=42, n_nondigits=30000, workers=2)
    # fit.x uint8 [N,28,28], fit.y 1 = digit / 0 = not a digit, fit.kinds

Restyled digits are enlarged, thickened, thinned, blurred or broken, then normalised again by
the runtime's own ``to_field``: a digit in a photo reaches the gate that way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common import nondigits
from mnist_edge import imageops as ops
from mnist_edge.errors import BlankImageError
from mnist_edge.normalize import to_field

RESTYLED_SHARE = 0.5  # restyled copies, per training digit


@dataclass(frozen=True)
class GateSet:
    """Images uint8 [N,28,28] with labels 1 (digit) / 0 (not a digit), and each one's kind."""

    x: np.ndarray
    y: np.ndarray
    kinds: list[str]

    def kind_rates(self, refused: np.ndarray) -> dict[str, float]:
        """The share of each kind that ``refused`` (bool [N]) marks."""
        kinds = np.array(self.kinds)
        return {k: float(refused[kinds == k].mean()) for k in sorted(set(self.kinds))}


def restyle(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One MNIST digit as a photo's crop might show it: strokes thickened, thinned, blurred or
    broken at twice the size, then normalised by the runtime's ``to_field``."""
    z = ops.resize(digit.astype(np.float32) / 255.0, 56, 56)
    style = rng.integers(4)
    if style == 0:
        z = ops.dilate(z, int(rng.integers(1, 4)))
    elif style == 1:
        thinner = 1.0 - ops.dilate(1.0 - z, int(rng.integers(1, 3)))
        z = thinner if (thinner > 0.5).sum() > 20 else z
    elif style == 2:
        for _ in range(int(rng.integers(1, 3))):
            z = ops.blur3(z)
    else:  # a break: a short band across the stroke, as a pen skipping
        for _ in range(int(rng.integers(1, 3))):
            y, x = rng.integers(8, 48, size=2)
            if rng.random() < 0.5:
                z[y:y + 2, max(0, x - 6):x + 6] = 0.0
            else:
                z[max(0, y - 6):y + 6, x:x + 2] = 0.0
    z = np.clip(z, 0.0, 1.0)
    try:
        return to_field(z, z > 0.5 * float(z.max()))
    except BlankImageError:
        return digit


def digits_set(x: np.ndarray, seed: int) -> np.ndarray:
    """The digits of ``x`` as they are, followed by RESTYLED_SHARE of them restyled."""
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(x), size=int(len(x) * RESTYLED_SHARE), replace=False)
    restyled = np.stack([restyle(x[i], rng) for i in picked]) if len(picked) else x[:0]
    return np.concatenate([x, restyled])


def gate_set(x_digits: np.ndarray, seed: int, n_nondigits: int,
             settings: nondigits.Settings = nondigits.TRAIN, workers: int = 1,
             shuffle: bool = True) -> GateSet:
    """Digits (as they are and restyled) and ``n_nondigits`` generated non-digits."""
    digits = digits_set(x_digits, seed)
    others, kinds = nondigits.generate(n_nondigits, seed, settings, digits=x_digits,
                                       workers=workers)
    x = np.concatenate([digits, others])
    y = np.concatenate([np.ones(len(digits), np.int64), np.zeros(len(others), np.int64)])
    all_kinds = ["digit"] * len(digits) + list(kinds)
    if not shuffle:
        return GateSet(x, y, all_kinds)
    order = np.random.default_rng(seed + 1).permutation(len(x))
    return GateSet(x[order], y[order], [all_kinds[i] for i in order])
