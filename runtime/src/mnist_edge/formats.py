"""The one table of model files: one row per exported file, and the facts of each model kind.

    >>> from mnist_edge.formats import FORMATS, backend_order, kind_of_suffix
    >>> [f.key for f in FORMATS]  # doctest: +NORMALIZE_WHITESPACE
    ['tflite_int8', 'tflite_float32', 'onnx_float32', 'onnx_int8', 'tflite_float16',
     'tflite_dynamic']
    >>> kind_of_suffix(".ONNX"), backend_order("tflite")
    ('onnx', ('litert', 'tflite-runtime', 'tensorflow'))

The rows' order is the runtime's order of preference, and the order of ``manifest.json``'s
``files`` list (``READER_FORMATS``: of its ``line_reader.files``; ``GATE_FORMATS``: of
``gate.files``). The build side (``common/formats.py``) extends each row with how it is made and
how closely it must match Keras; the runtime reads the kinds (file suffix, backends). Lookups
read the tables when called, never a copy made at import.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """A model format an interpreter reads: its file suffix and backends, preferred first."""

    name: str                  # manifest "format" and Classifier.format: "tflite" or "onnx"
    suffix: str                # lower-case file suffix, with the dot
    backends: tuple[str, ...]  # backends.BACKENDS names in auto-selection order


@dataclass(frozen=True)
class Format:
    """One exported file."""

    key: str          # stable id used by --formats, manifest.json and the runtime
    filename: str     # file name inside the artifacts folder
    kind: str         # a Kind's name: the interpreters that run it
    precision: str    # "int8", "float32", "float16" (weights) or "dynamic-int8"
    input_dtype: str  # numpy dtype name of the model's input tensor


KINDS: tuple[Kind, ...] = (
    Kind("tflite", ".tflite", ("litert", "tflite-runtime", "tensorflow")),
    Kind("onnx", ".onnx", ("onnxruntime",)),
)

TFLITE_INT8 = Format("tflite_int8", "model_int8.tflite", "tflite", "int8", "int8")
TFLITE_FLOAT32 = Format("tflite_float32", "model_float32.tflite", "tflite", "float32", "float32")
ONNX_FLOAT32 = Format("onnx_float32", "model.onnx", "onnx", "float32", "float32")
# int8 inside (QDQ), float32 input and output: one preprocessing for every ONNX file
ONNX_INT8 = Format("onnx_int8", "model_int8.onnx", "onnx", "int8", "float32")
# float16 weights (dequantized at load) and dynamic-range (int8 weights, float activations): the
# converter's two most used options; float32 input and output, last in the order of preference
TFLITE_FLOAT16 = Format("tflite_float16", "model_float16.tflite", "tflite", "float16", "float32")
TFLITE_DYNAMIC = Format("tflite_dynamic", "model_dynamic.tflite", "tflite", "dynamic-int8",
                        "float32")
FORMATS: tuple[Format, ...] = (TFLITE_INT8, TFLITE_FLOAT32, ONNX_FLOAT32, ONNX_INT8,
                               TFLITE_FLOAT16, TFLITE_DYNAMIC)

# The line reader's files (manifest.json's "line_reader" section): strips [N, 32, W, 1] in,
# per-column scores [N, W/4, 11] out; every ONNX file takes float32, as for the classifier. A
# table of its own, so the classifier's loaders, parity and bench never pick a reader file.
READER_TFLITE_INT8 = Format("reader_tflite_int8", "line_reader_int8.tflite", "tflite", "int8",
                            "int8")
READER_TFLITE_FLOAT32 = Format("reader_tflite_float32", "line_reader_float32.tflite", "tflite",
                               "float32", "float32")
READER_ONNX_FLOAT32 = Format("reader_onnx_float32", "line_reader.onnx", "onnx", "float32",
                             "float32")
READER_ONNX_INT8 = Format("reader_onnx_int8", "line_reader_int8.onnx", "onnx", "int8", "float32")
READER_FORMATS: tuple[Format, ...] = (READER_TFLITE_INT8, READER_TFLITE_FLOAT32,
                                      READER_ONNX_FLOAT32, READER_ONNX_INT8)

# The "no digit" gate's files (manifest.json's "gate" section): the classifier's input, two
# probabilities out ("not a digit", "digit"). A table of its own, like the reader's.
GATE_TFLITE_INT8 = Format("gate_tflite_int8", "gate_int8.tflite", "tflite", "int8", "int8")
GATE_TFLITE_FLOAT32 = Format("gate_tflite_float32", "gate_float32.tflite", "tflite", "float32",
                             "float32")
GATE_ONNX_FLOAT32 = Format("gate_onnx_float32", "gate.onnx", "onnx", "float32", "float32")
GATE_ONNX_INT8 = Format("gate_onnx_int8", "gate_int8.onnx", "onnx", "int8", "float32")
GATE_FORMATS: tuple[Format, ...] = (GATE_TFLITE_INT8, GATE_TFLITE_FLOAT32, GATE_ONNX_FLOAT32,
                                    GATE_ONNX_INT8)


def kind_names() -> tuple[str, ...]:
    """The model kinds this runtime reads, e.g. ('tflite', 'onnx')."""
    return tuple(k.name for k in KINDS)


def backend_order(kind: str) -> tuple[str, ...]:
    """The backends that run ``kind``, in auto-selection order; a ValueError lists the kinds."""
    for row in KINDS:
        if row.name == kind:
            return row.backends
    raise ValueError(f"unknown model format {kind!r}; choose from {', '.join(kind_names())}")


def kind_of_suffix(suffix: str) -> str | None:
    """The kind whose files end in ``suffix`` (any case), or None."""
    return next((k.name for k in KINDS if k.suffix == suffix.lower()), None)
