"""MNIST loading and validation, shared by the build stages and the checks.

Sources, in order of precedence:
  1. an explicit path (``--data PATH``),
  2. the ``MNIST_DATA`` environment variable,
  3. Keras's standard download, cached in ``~/.keras/datasets/mnist.npz``.

A path may be a Keras-style ``mnist.npz`` or a folder holding the four IDX files,
gzipped or raw (for example Debian's ``/usr/share/datasets/fashion-mnist``).

    >>> from common.data import load_mnist, to_model_input
    >>> data = load_mnist("../shared/data/mnist.npz")
    >>> x = to_model_input(data.x_test)   # float32 (10000, 28, 28, 1) in [0, 1]
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ENV_VAR = "MNIST_DATA"
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"

# IDX file stems, as published by LeCun and by Fashion-MNIST.
IDX_STEMS = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


class DataError(ValueError):
    """MNIST data is missing, unreadable or not shaped like MNIST."""


@dataclass(frozen=True)
class Mnist:
    """The four MNIST arrays: uint8 images [N,28,28] and uint8 labels [N] in 0..9."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str


def to_model_input(images: np.ndarray) -> np.ndarray:
    """uint8 [N,28,28] -> float32 [N,28,28,1] in [0, 1]: the model's input contract."""
    return (images.astype(np.float32) / np.float32(255.0))[..., np.newaxis]


def keras_probabilities(model, images: np.ndarray) -> np.ndarray:
    """float32 [N,10] of a loaded Keras model on uint8 images [N,28,28]: the reference answers."""
    return np.asarray(model.predict(to_model_input(images), batch_size=1000, verbose=0),
                      dtype=np.float32)


def resolve_source(path: str | os.PathLike | None = None) -> Path | None:
    """The local path to load from (argument, then MNIST_DATA), or None for the download."""
    if path:
        return Path(path).expanduser()
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else None


def load_mnist(path: str | os.PathLike | None = None) -> Mnist:
    """Load and validate MNIST from ``path``, ``$MNIST_DATA`` or the Keras download."""
    src = resolve_source(path)
    if src is None:
        src = _download()
    if not src.exists():
        raise DataError(f"{src}: no such file or folder; point {ENV_VAR} or --data at mnist.npz "
                        "or a folder with the four IDX files")
    arrays = _read_idx_folder(src) if src.is_dir() else _read_npz(src)
    _validate(arrays, src)
    return Mnist(**arrays, source=str(src))


def _download() -> Path:
    """Keras's own download and cache; a failure says how to work offline."""
    try:
        from common.tf import import_tensorflow

        import_tensorflow()  # hides TensorFlow's start-up log lines
        from keras.utils import get_file

        return Path(get_file("mnist.npz", origin=KERAS_URL,
                             file_hash="731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"))
    except Exception as exc:  # network errors come in many types
        raise DataError(f"could not download MNIST from {KERAS_URL} ({type(exc).__name__}: {exc}); "
                        f"set {ENV_VAR}=/path/to/mnist.npz "
                        "or pass --data to work offline") from None


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in IDX_STEMS if k not in npz.files]
            if missing:
                raise DataError(f"{path}: npz lacks {', '.join(missing)}; expected x_train, "
                                "y_train, x_test, y_test as in Keras's mnist.npz")
            return {k: npz[k] for k in IDX_STEMS}
    except DataError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable npz file ({exc}); it may be truncated or corrupt, "
                        "download it again") from None


def _find_idx(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"),
                 stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"{folder}: missing {stem} (or {stem}.gz); an IDX folder needs all four "
                    "MNIST files")


def _read_idx_folder(folder: Path) -> dict[str, np.ndarray]:
    return {key: read_idx(_find_idx(folder, stem)) for key, stem in IDX_STEMS.items()}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (raw or gzipped), checking magic and length (the runtime's reader)."""
    from mnist_edge.errors import InputError
    from mnist_edge.inputs import read_idx as read

    try:
        return read(path)
    except InputError as exc:
        raise DataError(str(exc)) from None


def _validate(a: dict[str, np.ndarray], src: Path) -> None:
    for split in ("train", "test"):
        x, y = a[f"x_{split}"], a[f"y_{split}"]
        if x.ndim != 3 or x.shape[1:] != IMAGE_SHAPE:
            raise DataError(f"{src}: x_{split} has shape {x.shape}, expected (N, 28, 28)")
        if x.dtype != np.uint8:
            raise DataError(f"{src}: x_{split} has dtype {x.dtype}, expected uint8 pixels 0..255")
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{src}: y_{split} has shape {y.shape} and dtype {y.dtype}, "
                            "expected a 1-D array of integer labels")
        if len(x) != len(y):
            raise DataError(f"{src}: {len(x)} {split} images but {len(y)} {split} labels")
        if len(x) == 0:
            raise DataError(f"{src}: the {split} split is empty")
        if y.min() < 0 or y.max() >= NUM_CLASSES:
            raise DataError(f"{src}: y_{split} has labels in {y.min()}..{y.max()}, expected 0..9")
    for key in ("y_train", "y_test"):
        a[key] = a[key].astype(np.uint8)
