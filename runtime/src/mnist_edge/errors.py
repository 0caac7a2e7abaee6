"""The package's exception types: every error mnist_edge raises on purpose is a MnistEdgeError.

Messages are one line that names the file or value at fault and what to do about it;
the CLI prints them as they are, without a traceback.
"""

from __future__ import annotations


class MnistEdgeError(Exception):
    """Base of every error the runtime raises for an expected problem."""


class ModelError(MnistEdgeError):
    """A model file, folder or manifest is missing, unreadable, malformed or unsupported."""


class IntegrityError(ModelError):
    """A model file does not match the size or sha256 its manifest declares."""


class SelfTestError(ModelError):
    """A model file answers its golden set on this device unlike at export: the interpreter's
    kernels, or the file, are not what the export verified."""


class BackendError(MnistEdgeError):
    """No installed interpreter can run the model (the message says what to pip install)."""


class InputError(MnistEdgeError, ValueError):
    """Images or arrays given to predict have a wrong shape, dtype or values, or are unreadable."""


class BlankImageError(InputError):
    """An image holds no ink: nothing to classify."""


class ImageTooLargeError(InputError):
    """An image file declares more pixels, or decoded bytes, than the reader decodes safely."""


class UnsupportedImageError(InputError):
    """Data that is not an image in one of the formats the reader decodes."""
