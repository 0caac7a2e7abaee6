"""The line reader: per-column digit scores for a strip of one line of ink.

    from mnist_edge.linereader import LineReader
    reader = LineReader.load("artifacts")         # int8 TFLite via ai-edge-litert, if installed
    scores = reader.scores(strip)                 # float32 [32, W] -> float32 [W/4, 11]

A strip is what ``mnist_edge.lines.line_strip`` makes: ``height`` rows, light ink on dark in
[0, 1], a width that is a multiple of ``stride``. Each output column scores the ten digits and the
blank (index ``blank``, the last); the manifest's ``line_reader.decoding`` says how to read them.
The file comes from the ``line_reader`` section of an artifacts folder's manifest, its size and
sha256 checked first; the interpreter is resized only when the width changes between calls.

Thread safety: as for a Classifier, calls are serialised by a lock around the one interpreter.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from mnist_edge import backends
from mnist_edge.arrays import FLOAT_TOLERANCE
from mnist_edge.errors import InputError
from mnist_edge.loading import Loaded, input_spec, load_model, load_reader
from mnist_edge.manifest import ReaderSection


class LineReader:
    """An exported line reader on one interpreter; see the module docstring for an example."""

    def __init__(self, loaded: Loaded, section: ReaderSection):
        self._backend = loaded.backend
        self.path: Path = loaded.path
        self.precision: str = loaded.precision
        self._section = section
        self._entry = loaded.entry
        self._in = input_spec(loaded.backend, loaded.entry, ((section.height, None, 1),),
                              f"the line reader takes [N,{section.height},W,1]")
        self._out = loaded.backend.output
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: str | os.PathLike[str] = "artifacts", key: str | None = None,
             backend: str | None = None, threads: int = 1) -> LineReader:
        """Load the line reader of an exported artifacts folder.

        Args:
            path: an artifacts folder, or its ``manifest.json``, whose manifest has a
                ``line_reader`` section; the first listed file (int8 TFLite first) an installed
                backend runs is chosen, its size and sha256 checked before loading.
            key: a reader format key (``reader_tflite_int8``, ``reader_tflite_float32``,
                ``reader_onnx_float32``) to load that file instead.
            backend: None or "auto", "litert", "tflite-runtime", "tensorflow" or "onnxruntime".
            threads: interpreter threads.

        Returns:
            A LineReader.

        Raises:
            ModelError: no line reader in the folder (the message names the missing file), or a
                file that differs from the manifest.
            BackendError: no installed interpreter runs the file.
        """
        loaded, section = load_reader(path, "auto" if backend is None else backend, threads, key)
        return cls(loaded, section)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], section: ReaderSection,
                  backend: str = "auto", threads: int = 1) -> LineReader:
        """A reader file outside an artifacts folder, read by the contract ``section`` gives
        (its ``files`` unused): how the export stage runs a file before its manifest exists."""
        return cls(load_model(path, backend, threads, None, None, None), section)

    @property
    def height(self) -> int:
        """Rows of a strip."""
        return self._section.height

    @property
    def stride(self) -> int:
        """Strip columns per output column; a strip's width must be a multiple of it."""
        return self._section.stride

    @property
    def blank(self) -> int:
        """The index of the blank among the scores of a column."""
        return self._section.blank

    @property
    def key(self) -> str:
        """The format key of the loaded file, e.g. 'reader_tflite_int8'."""
        return self._entry.key if self._entry is not None else self.path.name

    @property
    def backend(self) -> str:
        """The interpreter running the file, e.g. 'litert'."""
        return self._backend.name

    @property
    def verification(self) -> dict[str, Any]:
        """What the export measured of this file (the manifest's ``verification``: test lines
        read exactly, agreement with Keras, ...); empty for a file outside a manifest."""
        return dict(self._entry.verification) if self._entry is not None else {}

    @property
    def input_spec(self) -> backends.TensorSpec:
        """The model's input tensor: [N, height, W, 1], dtype and quantization."""
        return self._in

    @property
    def output_spec(self) -> backends.TensorSpec:
        """The model's output tensor: [N, W/stride, classes], dtype and quantization."""
        return self._out

    def scores(self, strip: np.ndarray) -> np.ndarray:
        """Per-column scores of one strip.

        Args:
            strip: float [height, W] in [0, 1] (or uint8, read as value / 255), light ink on
                dark, W a positive multiple of ``stride``.

        Returns:
            float32 [W / stride, classes]: each column's probabilities (dequantized for an int8
            file), the blank at index ``blank``.
        """
        x = self._checked(strip)
        spec = self._in
        if spec.scale is not None:
            info = np.iinfo(spec.dtype)
            q = np.rint(x / np.float32(spec.scale)) + np.float32(spec.zero_point or 0)
            x = np.clip(q, info.min, info.max)
        with self._lock:
            raw = self._backend.forward(x.astype(spec.dtype)[np.newaxis, :, :, np.newaxis])[0]
        out = raw.astype(np.float32)
        if self._out.scale is not None:
            out = (out - np.float32(self._out.zero_point or 0)) * np.float32(self._out.scale)
        result: np.ndarray = np.clip(out, 0.0, None)
        return result

    def _checked(self, strip: object) -> np.ndarray:
        """The strip as float32 [height, W] in [0, 1]; InputError for anything else."""
        if not isinstance(strip, np.ndarray):
            raise InputError(f"strip must be a numpy array, got {type(strip).__name__}")
        if strip.ndim != 2 or strip.shape[0] != self.height or strip.shape[1] < self.stride \
                or strip.shape[1] % self.stride:
            raise InputError(f"strip has shape {list(strip.shape)}; the line reader takes "
                             f"[{self.height}, W] with W a positive multiple of {self.stride} "
                             "(mnist_edge.lines.line_strip makes such strips)")
        if strip.dtype == np.uint8:
            scaled: np.ndarray = strip.astype(np.float32) / np.float32(255)
            return scaled
        if strip.dtype.kind != "f":
            raise InputError(f"strip has dtype {strip.dtype}; pass float values in [0, 1] or "
                             "uint8")
        x = strip.astype(np.float32)
        if not np.isfinite(x).all() or x.min() < -FLOAT_TOLERANCE or x.max() > 1 + FLOAT_TOLERANCE:
            raise InputError("strip values must be finite and within [0, 1]")
        clipped: np.ndarray = np.clip(x, 0.0, 1.0)
        return clipped

