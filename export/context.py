"""What every converter receives: the loaded Keras model, calibration images and options."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class ExportContext:
    """Inputs shared by the converters of one export run."""

    model: Any                 # the loaded keras.Model (float32 NHWC in, probabilities out)
    # float32 model inputs without their batch dimension, in [0,1], from the training set:
    # [N,28,28,1] images for the classifier, a list of [32,W,1] strips for the line reader
    calibration: np.ndarray | list[np.ndarray]
    opset: int                 # ONNX opset for tf2onnx
    source_sha256: str         # sha256 of model.keras (freshness checks)
    weights_sha256: str        # sha256 of its weights, embedded in each file (reproducible)
    verbose: bool = False      # let converters print their own logs
    labels: tuple[str, ...] | None = None  # the outputs' names, when training recorded them
    dataset: dict | None = None  # the classifier's dataset (name, kind), when training recorded it
    cache: dict = field(default_factory=dict)  # intermediate results shared between converters

    def samples(self) -> Iterator[np.ndarray]:
        """Each calibration sample as a batch of one, at its own size."""
        return (x[np.newaxis] for x in self.calibration)


def calibration_sample(x_train: np.ndarray, count: int, seed: int) -> np.ndarray:
    """A reproducible random sample of ``count`` training images (uint8, in sampled order)."""
    if count < 1:
        raise ValueError(f"--calibration-samples must be at least 1, got {count}")
    count = min(count, len(x_train))
    idx = np.random.default_rng(seed).choice(len(x_train), size=count, replace=False)
    return x_train[np.sort(idx)]
