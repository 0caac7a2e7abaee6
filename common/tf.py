"""TensorFlow and Keras for the build stages: a quiet import, quiet converters, a checked model
load."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

from mnist_edge.quiet import silenced


class KerasModelError(ValueError):
    """model.keras is missing, unreadable or not an MNIST classifier (the message says what to
    do)."""


def import_tensorflow(verbose: bool = False):
    """Import TensorFlow (and Keras), hiding its C++ log noise unless ``verbose``.

    Some lines (oneDNN, absl) are printed while the library loads, before any log level
    applies, so stderr is pointed at /dev/null for the import itself.
    """
    if verbose or "tensorflow" in sys.modules:
        import tensorflow as tf

        return tf
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with silenced((2,)):
        import keras  # noqa: F401  (its backend initialises TensorFlow too)
        import tensorflow as tf
    return tf


@contextlib.contextmanager
def quiet(verbose: bool = False) -> Iterator[None]:
    """Hide everything converters print (Python prints, warnings, logging, C++ on fd 1 and 2)."""
    if verbose:
        yield
        return
    previous_disable = logging.root.manager.disable
    try:
        with silenced((1, 2)), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
            logging.disable(logging.CRITICAL)
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous_disable)


def load_keras_model(path: Path, maps: tuple[tuple, tuple] = ((28, 28, 1), (10,)),
                     what: str = "the mnist-edge CNN"):
    """Load a .keras model, checking it maps inputs of shape ``maps[0]`` to outputs of shape
    ``maps[1]`` (after the batch dimension; default: 28x28x1 images to 10 classes), else
    KerasModelError naming ``what`` was expected."""
    import zipfile

    import_tensorflow()
    import keras

    if not Path(path).is_file():
        raise KerasModelError(f"{path}: not found; train first with `make train`")
    if not zipfile.is_zipfile(path):
        raise KerasModelError(f"{path}: not a .keras zip archive (truncated or corrupt); "
                              "retrain it with `make train`")
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a bad file: zip, h5, JSON, config
        reason = (str(exc).strip().splitlines() or [""])[0][:200]
        raise KerasModelError(f"{path}: not a readable Keras model ({type(exc).__name__}: "
                              f"{reason}); retrain it with `make train`") from None
    in_shape, out_shape = tuple(model.input_shape), tuple(model.output_shape)
    if in_shape[1:] != maps[0] or out_shape[1:] != maps[1]:
        raise KerasModelError(f"{path}: model maps {in_shape} to {out_shape}, expected "
                              f"{(None, *maps[0])} to {(None, *maps[1])}; export needs {what}")
    return model
