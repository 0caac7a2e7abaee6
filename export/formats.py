"""The one table of export formats, read by the exporter, verification, manifest, parity and bench.

    >>> from export.formats import FORMATS, get_format
    >>> [f.key for f in FORMATS]
    ['tflite_int8', 'tflite_float32', 'onnx_float32', 'onnx_int8']
    >>> get_format("onnx_int8").filename
    'model_int8.onnx'

The table's order is the runtime's order of preference, and the order of ``manifest.json``'s
``files`` list.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

# Verification tolerances on the 10,000-image MNIST test set (see the README's Export section).
FLOAT_MAX_DISAGREEMENT = 0.0005  # float formats: top-1 differs from Keras on at most 0.05% of images
INT8_MAX_ACCURACY_DROP = 0.005   # int8 formats: lose at most 0.5 point of accuracy against Keras


@dataclass(frozen=True)
class ExportFormat:
    """One exported file: what it is, how it is made and how closely it must match Keras."""

    key: str         # stable id used by --formats, manifest.json and the runtime
    filename: str    # file name inside the artifacts folder
    kind: str        # "tflite" (ai-edge-litert) or "onnx" (onnxruntime)
    precision: str   # "int8" or "float32"
    converter: str   # "module:function"; the function takes (ExportContext, Path) and writes the file
    scheme: str      # how it was made, one line for humans and the manifest

    @property
    def max_disagreement(self) -> float | None:
        """Largest fraction of test images whose top-1 may differ from Keras (float formats)."""
        return FLOAT_MAX_DISAGREEMENT if self.precision == "float32" else None

    @property
    def max_accuracy_drop(self) -> float | None:
        """Largest accuracy loss against Keras, as a fraction (int8 formats)."""
        return INT8_MAX_ACCURACY_DROP if self.precision == "int8" else None

    @property
    def tolerance(self) -> str:
        """The pass rule in words, for the table and error messages."""
        if self.precision == "int8":
            return f"accuracy drop <= {INT8_MAX_ACCURACY_DROP * 100:.1f} pt"
        return f"disagreement <= {FLOAT_MAX_DISAGREEMENT:.2%}"

    def failure(self, accuracy_delta: float, agreement: float) -> str | None:
        """Why a verified file is rejected, or None when it is within tolerance."""
        if self.max_disagreement is not None and 1.0 - agreement > self.max_disagreement + 1e-12:
            return (f"{self.key} disagrees with Keras on {1.0 - agreement:.2%} of test images "
                    f"(allowed {self.max_disagreement:.2%})")
        if self.max_accuracy_drop is not None and -accuracy_delta > self.max_accuracy_drop + 1e-12:
            return (f"{self.key} loses {-accuracy_delta * 100:.2f} pt of accuracy against Keras "
                    f"(allowed {self.max_accuracy_drop * 100:.1f} pt)")
        return None

    def load_converter(self) -> Callable:
        """Import and return the converter function (imported lazily: TensorFlow is heavy)."""
        module, _, name = self.converter.partition(":")
        return getattr(importlib.import_module(module), name)


FORMATS: tuple[ExportFormat, ...] = (
    ExportFormat("tflite_int8", "model_int8.tflite", "tflite", "int8", "export.to_tflite:convert_int8",
                 "full-integer post-training quantization (TFLITE_BUILTINS_INT8), per-channel weights, "
                 "int8 input and output"),
    ExportFormat("tflite_float32", "model_float32.tflite", "tflite", "float32",
                 "export.to_tflite:convert_float32", "float32 TFLite, no optimizations"),
    ExportFormat("onnx_float32", "model.onnx", "onnx", "float32", "export.to_onnx:convert_float32",
                 "float32 ONNX via tf2onnx, dynamic batch, NHWC input"),
    ExportFormat("onnx_int8", "model_int8.onnx", "onnx", "int8", "export.to_onnx:convert_int8",
                 "static int8 QDQ quantization (onnxruntime), per-channel weights, float32 input "
                 "and output"),
)

KEYS: tuple[str, ...] = tuple(f.key for f in FORMATS)


def export_formats() -> tuple[ExportFormat, ...]:
    """All formats, in the runtime's order of preference."""
    return FORMATS


def get_format(key: str) -> ExportFormat:
    """The format with this key; a ValueError lists the valid keys."""
    for fmt in FORMATS:
        if fmt.key == key:
            return fmt
    raise ValueError(f"unknown format {key!r}; choose from {', '.join(KEYS)}")


def parse_formats(text: str) -> tuple[ExportFormat, ...]:
    """'all' or comma-separated keys -> formats in table order (duplicates dropped)."""
    keys = [k.strip() for k in text.split(",") if k.strip()]
    if not keys or keys == ["all"]:
        return FORMATS
    wanted = {get_format(k).key for k in keys}
    return tuple(f for f in FORMATS if f.key in wanted)
