"""The Keras model's probabilities on the test images: computed once, cached by sha256."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from train.publish import atomic_path


def cache_file(cache: Path, model_sha256: str, images: np.ndarray) -> Path:
    """Where the probabilities of this model on these exact images are kept."""
    images_sha = hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()
    return cache / f"keras-{model_sha256[:16]}-{images_sha[:16]}-{len(images)}.npy"


def keras_probabilities(model_path: Path, model_sha256: str, images: np.ndarray,
                        cache: Path | None) -> np.ndarray:
    """float32 [N,10] from model.keras on uint8 ``images``; TensorFlow is imported only on a miss."""
    path = cache_file(cache, model_sha256, images) if cache is not None else None
    if path is not None and path.is_file():
        try:
            probs = np.load(path, allow_pickle=False)
            if probs.shape == (len(images), 10):
                return probs
        except (OSError, ValueError):
            pass  # unreadable cache: recompute and overwrite
    from export.export import load_keras_model
    from train.data import to_model_input
    from train.train import import_tensorflow

    import_tensorflow()
    model = load_keras_model(model_path)
    probs = np.asarray(model.predict(to_model_input(images), batch_size=1000, verbose=0),
                       dtype=np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            np.save(tmp, probs)
    return probs
