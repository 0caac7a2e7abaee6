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
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_edge.images import not_a_file

ENV_VAR = "MNIST_DATA"
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
MAX_IMAGES = 1_000_000  # per array, checked from the headers before reading (MNIST has 70,000)
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
    try:
        mode = os.stat(src).st_mode  # stat, not open: a FIFO would block, /dev/zero never ends
    except FileNotFoundError:
        raise DataError(f"{src}: no such file or folder; point {ENV_VAR} or --data at mnist.npz "
                        "or a folder with the four IDX files") from None
    except OSError as exc:
        raise DataError(f"{src}: cannot read ({exc.strerror or exc}); point {ENV_VAR} or --data "
                        "at a readable mnist.npz or IDX folder") from None
    if stat.S_ISDIR(mode):
        arrays = _read_idx_folder(src)
    elif stat.S_ISREG(mode):
        arrays = _read_npz(src)
    else:
        raise DataError(f"{src}: is {not_a_file(mode)}, not a file or folder; point {ENV_VAR} or "
                        "--data at mnist.npz or a folder with the four IDX files")
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
        with zipfile.ZipFile(path) as zf:
            # np.load's naming: member "x_train.npy" (or "x_train") is the array "x_train"
            members = {name.removesuffix(".npy"): name for name in zf.namelist()}
            missing = [k for k in IDX_STEMS if k not in members]
            if missing:
                raise DataError(f"{path}: npz lacks {', '.join(missing)}; expected x_train, "
                                "y_train, x_test, y_test as in Keras's mnist.npz")
            for key in IDX_STEMS:
                with zf.open(members[key]) as fh:
                    _check_declared(path, key, *_npy_header(fh, path, key))
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in IDX_STEMS}
    except DataError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
            SyntaxError) as exc:
        raise DataError(f"{path}: not a readable npz file ({exc}); it may be truncated or corrupt, "
                        "download it again") from None


def _npy_header(fh, path: Path, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) that an npz member's .npy header declares, read before any data."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
    except ValueError:
        raise DataError(f"{path}: {key} is not a .npy array; expected x_train, y_train, x_test, "
                        "y_test saved with np.savez as in Keras's mnist.npz") from None
    if version not in ((1, 0), (2, 0)):
        raise DataError(f"{path}: {key} is a .npy array of format version {version}; the arrays "
                        "must be plain uint8/integer arrays (np.savez writes version 1.0)")
    read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    shape, _, dtype = read(fh)
    if dtype.hasobject:
        raise DataError(f"{path}: {key} holds pickled Python objects ({dtype}); the arrays must be "
                        "plain uint8/integer arrays, not pickled objects: save them with "
                        "np.savez(path, x_train=x.astype(np.uint8), ...)")
    return tuple(shape), dtype


def _check_declared(src: Path, key: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """Refuse an array that is not shaped like MNIST, from its shape and dtype alone."""
    if key.startswith("x_"):
        if len(shape) != 3 or shape[1:] != IMAGE_SHAPE:
            raise DataError(f"{src}: {key} has shape {shape}, expected (N, 28, 28)")
        if dtype != np.uint8:
            raise DataError(f"{src}: {key} has dtype {dtype}, expected uint8 pixels 0..255")
    elif len(shape) != 1 or not np.issubdtype(dtype, np.integer):
        raise DataError(f"{src}: {key} has shape {shape} and dtype {dtype}, "
                        "expected a 1-D array of integer labels")
    if shape[0] > MAX_IMAGES:
        raise DataError(f"{src}: {key} declares {shape[0]:,} {_noun(key)}, more than the "
                        f"{MAX_IMAGES:,} an MNIST-sized set may hold; refused before reading it")


def _noun(key: str) -> str:
    return "images" if key.startswith("x_") else "labels"


def _find_idx(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"),
                 stem.replace("-idx", ".idx") + ".gz"):
        if os.path.lexists(folder / name):  # read_idx refuses a FIFO or device by name
            return folder / name
    raise DataError(f"{folder}: missing {stem} (or {stem}.gz); an IDX folder needs all four "
                    "MNIST files")


def _read_idx_folder(folder: Path) -> dict[str, np.ndarray]:
    return {key: read_idx(_find_idx(folder, stem), key) for key, stem in IDX_STEMS.items()}


def read_idx(path: Path, key: str) -> np.ndarray:
    """The array ``key`` (x_train, y_train, ...) from one IDX file (raw or gzipped): magic and
    declared shape are checked before any data is read or gunzipped, then the length."""
    from mnist_edge.arrays import open_idx, read_idx_header
    from mnist_edge.errors import InputError

    try:
        what = not_a_file(os.stat(path).st_mode)  # stat, not open: a FIFO would block
        if what is not None:
            raise DataError(f"{path}: is {what}, not a file; pass an IDX file")
        with open_idx(path) as fh:
            shape = read_idx_header(fh, path)
            _check_declared(path, key, shape, np.dtype(np.uint8))
            expected = int(np.prod(shape, dtype=np.int64))
            data = fh.read(expected + 1)
    except InputError as exc:
        raise DataError(str(exc)) from None
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: cannot read IDX file ({exc}); "
                        "it may be truncated or corrupt") from None
    if len(data) != expected:
        more = " or more" if len(data) > expected else ""
        raise DataError(f"{path}: wrong length, the header declares shape {shape} ({expected} "
                        f"bytes of data) but the file holds {len(data)}{more}; "
                        "it is truncated or corrupt")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


def _validate(a: dict[str, np.ndarray], src: Path) -> None:
    for key in IDX_STEMS:
        _check_declared(src, key, a[key].shape, a[key].dtype)
    for split in ("train", "test"):
        x, y = a[f"x_{split}"], a[f"y_{split}"]
        if len(x) != len(y):
            raise DataError(f"{src}: {len(x)} {split} images but {len(y)} {split} labels")
        if len(x) == 0:
            raise DataError(f"{src}: the {split} split is empty")
        if y.min() < 0 or y.max() >= NUM_CLASSES:
            raise DataError(f"{src}: y_{split} has labels in {y.min()}..{y.max()}, expected 0..9")
    for key in ("y_train", "y_test"):
        a[key] = a[key].astype(np.uint8)
