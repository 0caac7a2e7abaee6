"""The Keras model's probabilities on a set of images: computed once, cached by sha256 (parity and
the Pi check's x86 models read them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.publish import atomic_path
from mnist_edge.digest import sha256_hex


def cache_file(cache: Path, model_sha256: str, images: np.ndarray) -> Path:
    """Where the probabilities of this model on these exact images are kept."""
    images_sha = sha256_hex(np.ascontiguousarray(images).tobytes())
    return cache / f"keras-{model_sha256[:16]}-{images_sha[:16]}-{len(images)}.npy"


def keras_probabilities(model_path: Path, model_sha256: str, images: np.ndarray,
                        cache: Path | None) -> np.ndarray:
    """float32 [N,10] from model.keras on uint8 ``images``; TensorFlow is imported only on a
    miss."""
    path = cache_file(cache, model_sha256, images) if cache is not None else None
    if path is not None and path.is_file():
        try:
            probs = np.load(path, allow_pickle=False)
            if probs.shape == (len(images), 10):
                return probs
        except (OSError, ValueError):
            pass  # unreadable cache: recompute and overwrite
    from common.data import keras_probabilities as predict
    from common.tf import load_keras_model

    probs = predict(load_keras_model(model_path), images)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            np.save(tmp, probs)
    return probs
