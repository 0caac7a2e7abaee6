"""The format table's build side: each row of the runtime's table (``mnist_edge/formats.py``: key,
file name, kind, precision, input dtype) with its converter, scheme and tolerances, read by
export, parity, bench and the checks.

    >>> from common.formats import FORMATS, get_format
    >>> [f.key for f in FORMATS]  # doctest: +NORMALIZE_WHITESPACE
    ['tflite_int8', 'tflite_float32', 'onnx_float32', 'onnx_int8', 'tflite_float16',
     'tflite_dynamic']
    >>> get_format("onnx_int8").filename
    'model_int8.onnx'

``READER_FORMATS`` are the line reader's rows and ``GATE_FORMATS`` the "no digit" gate's, in the
order of the runtime's own; ``all_formats()`` gives every row.
The rows follow the runtime table's order: the runtime's order of preference, and the order of
``manifest.json``'s ``files`` list. Each row carries its tolerance: export verification and
parity hold a file to the same rule against Keras, so a file that passes ``make export`` passes
``make parity`` on the same backend; parity across backends and the Pi check hold it to its rule
against itself elsewhere. Figures are fractions: an agreement of 0.995 is 99.5%, an accuracy
difference of 0.01 is one point.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, replace

from mnist_edge import formats as device

INT8_STEPS, PROBABILITY = "int8 steps", "probability"  # units of an output difference


@dataclass(frozen=True)
class Tolerance:
    """How closely a file must answer like the Keras model, and like itself on other backends."""

    # against Keras, on the same test images (export verification, parity)
    min_agreement: float             # share of images with Keras's top-1 digit
    max_accuracy_diff: float | None  # |accuracy - Keras accuracy| (int8 files; None: not bounded)
    max_prob_diff: float | None      # max |p - p_keras| over all images and classes (float files)
    # against the same file elsewhere
    cross_min_agreement: float       # on two backends of one machine (parity)
    device_max_diff: float           # on a device against the same backend on the host (pi-check),
    device_unit: str                 # in quantization steps of the output, or in probability
    device_min_agreement: float = 1.0  # ... and the predicted digit must not change
    # the self-test on a device (mnist_edge.selftest): outputs on the golden set against the
    # export's, in device_unit, on any backend and CPU the runtime supports. Measured on the
    # golden sets of the reference export against litert/onnxruntime on the export host:
    # tflite-runtime 2.14 (x86 and 32-bit ARM) up to 14 int8 steps for the classifier and 21 for
    # the line reader, 3.5e-6 for float files; litert and onnxruntime on Pi 4/5 cores and on x86
    # Haswell/Nehalem 0 steps and at most 2.7e-6. docs/self-test.md has the table.
    golden_max_diff: float = 0.0
    # an int8 file against the float file of its format on the same CPU (pi-check's x86 models)
    float_min_agreement: float | None = None

    def rule(self) -> str:
        """The rule against Keras in words, for tables, reports and the manifest."""
        figures = [f"agreement >= {self.min_agreement:.2%}"]
        if self.max_accuracy_diff is not None:
            figures.insert(0, f"|Δ accuracy| <= {self.max_accuracy_diff * 100:g} pt")
        if self.max_prob_diff is not None:
            figures.append(f"max |Δp| <= {self.max_prob_diff:.0e}")
        return ", ".join(figures)

    def against_keras(self, name: str, accuracy_delta: float, agreement: float,
                      max_prob_diff: float) -> list[str]:
        """Why ``name`` (e.g. 'tflite_int8 on litert') breaks the rule against Keras; [] if it
        holds."""
        found = []
        if agreement < self.min_agreement:
            found.append(f"{name}: top-1 agreement with Keras {agreement:.2%} is below "
                         f"{self.min_agreement:.2%}")
        if self.max_prob_diff is not None and max_prob_diff > self.max_prob_diff:
            found.append(f"{name}: max |Δprob| vs Keras {max_prob_diff:.2e} is above "
                         f"{self.max_prob_diff:.0e}")
        if self.max_accuracy_diff is not None \
                and abs(accuracy_delta) > self.max_accuracy_diff + 1e-12:
            found.append(f"{name}: accuracy differs from Keras by {accuracy_delta * 100:+.2f} pt, "
                         f"beyond ±{self.max_accuracy_diff * 100:g} pt")
        return found

    def across_backends(self, name: str, agreement: float) -> list[str]:
        """Why one file on two backends (``name``) disagrees too much; [] when it passes."""
        if agreement < self.cross_min_agreement:
            return [f"{name}: top-1 agreement {agreement:.2%} is below "
                    f"{self.cross_min_agreement:.2%}"]
        return []


INT8 = Tolerance(min_agreement=0.995, max_accuracy_diff=0.003, max_prob_diff=None,
                 cross_min_agreement=0.999, device_max_diff=3.0, device_unit=INT8_STEPS,
                 golden_max_diff=24.0, float_min_agreement=0.999)
FLOAT_TFLITE = Tolerance(min_agreement=0.9995, max_accuracy_diff=None, max_prob_diff=1e-4,
                         cross_min_agreement=0.999, device_max_diff=1e-4, device_unit=PROBABILITY,
                         golden_max_diff=1e-4)
# float ONNX: no XNNPACK reassociation, so a tighter bound on probabilities against Keras
FLOAT_ONNX = replace(FLOAT_TFLITE, max_prob_diff=1e-5)
# float16 weights against Keras: accuracy within 0.05 point, the same digit on 99.9% of images
# (measured: 100.00% and 99.99%, max |Δp| 1.1e-3 and 1.9e-3 for the reference and the edge
# model). Dynamic-range files are held to the int8 files' rule: they round activations to 8 bits
# too, and a model trained briefly has many close calls (one of 89% accuracy agreed on 99.87%).
# The reference and the edge model do better (99.95% and 99.99%, within 0.02 point): the parity
# floors (common/floors.py) hold the reference's there.
# Once loaded, a float16 file computes in float32: on other backends and CPUs it moves like the
# float32 file (measured 3.5e-6 between litert and tflite-runtime). A dynamic-range file quantizes
# activations at run time, so a rounding step can move an output further (measured 7e-5).
FLOAT16 = Tolerance(min_agreement=0.999, max_accuracy_diff=0.0005, max_prob_diff=1e-2,
                    cross_min_agreement=0.999, device_max_diff=1e-4, device_unit=PROBABILITY,
                    golden_max_diff=1e-4)
DYNAMIC = Tolerance(min_agreement=0.995, max_accuracy_diff=0.003, max_prob_diff=None,
                    cross_min_agreement=0.999, device_max_diff=1e-2, device_unit=PROBABILITY,
                    golden_max_diff=1e-2)


@dataclass(frozen=True)
class ExportFormat(device.Format):
    """One exported file (a row of the runtime's table), how it is made and how closely it must
    match."""

    converter: str   # "module:function" of the export stage; takes (ExportContext, Path)
    scheme: str      # how it was made, one line for humans and the manifest
    tolerance: Tolerance

    @classmethod
    def of(cls, row: device.Format, converter: str, scheme: str,
           tolerance: Tolerance) -> ExportFormat:
        """The runtime's ``row`` with its build facts."""
        return cls(**vars(row), converter=converter, scheme=scheme, tolerance=tolerance)

    def load_converter(self) -> Callable:
        """Import and return the converter function (imported lazily: TensorFlow is heavy)."""
        module, _, name = self.converter.partition(":")
        return getattr(importlib.import_module(module), name)


FORMATS: tuple[ExportFormat, ...] = (
    ExportFormat.of(device.TFLITE_INT8, "export.to_tflite:convert_int8",
                    "full-integer post-training quantization (TFLITE_BUILTINS_INT8), per-channel "
                    "weights, int8 input and output", INT8),
    ExportFormat.of(device.TFLITE_FLOAT32, "export.to_tflite:convert_float32",
                    "float32 TFLite, no optimizations", FLOAT_TFLITE),
    ExportFormat.of(device.ONNX_FLOAT32, "export.to_onnx:convert_float32",
                    "float32 ONNX via tf2onnx, dynamic batch, NHWC input", FLOAT_ONNX),
    ExportFormat.of(device.ONNX_INT8, "export.to_onnx:convert_int8",
                    "static 8-bit QDQ quantization (onnxruntime), uint8 activations and "
                    "per-channel uint8 weights (U8U8: no saturation on x86 CPUs without VNNI), "
                    "float32 input and output", INT8),
    ExportFormat.of(device.TFLITE_FLOAT16, "export.to_tflite:convert_float16",
                    "float16 weights (post-training float16 quantization), float32 computation, "
                    "input and output", FLOAT16),
    ExportFormat.of(device.TFLITE_DYNAMIC, "export.to_tflite:convert_dynamic",
                    "dynamic-range quantization: int8 weights (per-tensor in dense layers, so "
                    "tflite-runtime 2.14 loads it), float32 activations, input and output",
                    DYNAMIC),
)

KEYS: tuple[str, ...] = tuple(f.key for f in FORMATS)

# The line reader's rows. Its "accuracy" is the share of lines read exactly (greedy decoding
# against the label) and its "agreement" the share of lines read as Keras reads them.
# int8 kernels differ between interpreters (tflite-runtime 2.14 against ai-edge-litert: 3 of 297
# lines read differently by a briefly trained reader), and a line holds several digits
READER_INT8 = Tolerance(min_agreement=0.95, max_accuracy_diff=0.005, max_prob_diff=None,
                        cross_min_agreement=0.97, device_max_diff=3.0, device_unit=INT8_STEPS,
                        golden_max_diff=32.0)
READER_FLOAT = Tolerance(min_agreement=0.99, max_accuracy_diff=None, max_prob_diff=1e-4,
                         cross_min_agreement=0.99, device_max_diff=1e-4, device_unit=PROBABILITY,
                         golden_max_diff=1e-4)
READER_FORMATS: tuple[ExportFormat, ...] = (
    ExportFormat.of(device.READER_TFLITE_INT8, "export.line_reader:convert_tflite_int8",
                    "full-integer post-training quantization (TFLITE_BUILTINS_INT8), per-channel "
                    "weights, int8 input and output, dynamic width; calibrated on strips of "
                    "training-digit lines", READER_INT8),
    ExportFormat.of(device.READER_TFLITE_FLOAT32, "export.line_reader:convert_tflite_float32",
                    "float32 TFLite, no optimizations, dynamic width", READER_FLOAT),
    ExportFormat.of(device.READER_ONNX_FLOAT32, "export.line_reader:convert_onnx_float32",
                    "float32 ONNX via tf2onnx, dynamic batch and width, NHWC input",
                    READER_FLOAT),
    ExportFormat.of(device.READER_ONNX_INT8, "export.line_reader:convert_onnx_int8",
                    "static 8-bit QDQ quantization (onnxruntime), uint8 activations and "
                    "per-channel uint8 weights (U8U8: no saturation on x86 CPUs without VNNI), "
                    "float32 input and output, dynamic width; calibrated on strips of "
                    "training-digit lines", READER_INT8),
)

READER_KEYS: tuple[str, ...] = tuple(f.key for f in READER_FORMATS)

# The "no digit" gate's rows. Its "accuracy" is the share of images answered right (digit or
# not, at the calibrated threshold) on MNIST's test digits and held-out non-digits, and its
# "agreement" the share answered as the Keras gate answers them.
GATE_INT8 = Tolerance(min_agreement=0.995, max_accuracy_diff=0.003, max_prob_diff=None,
                      cross_min_agreement=0.999, device_max_diff=3.0, device_unit=INT8_STEPS,
                      golden_max_diff=24.0)
GATE_FORMATS: tuple[ExportFormat, ...] = (
    ExportFormat.of(device.GATE_TFLITE_INT8, "export.gate_files:convert_tflite_int8",
                    "full-integer post-training quantization (TFLITE_BUILTINS_INT8), per-channel "
                    "weights, int8 input and output; calibrated on training digits and "
                    "non-digits", GATE_INT8),
    ExportFormat.of(device.GATE_TFLITE_FLOAT32, "export.gate_files:convert_tflite_float32",
                    "float32 TFLite, no optimizations", FLOAT_TFLITE),
    ExportFormat.of(device.GATE_ONNX_FLOAT32, "export.gate_files:convert_onnx_float32",
                    "float32 ONNX via tf2onnx, dynamic batch, NHWC input", FLOAT_ONNX),
    ExportFormat.of(device.GATE_ONNX_INT8, "export.gate_files:convert_onnx_int8",
                    "static 8-bit QDQ quantization (onnxruntime), uint8 activations and "
                    "per-channel uint8 weights (U8U8: no saturation on x86 CPUs without VNNI), "
                    "float32 input and output; calibrated on training digits and non-digits",
                    GATE_INT8),
)

GATE_KEYS: tuple[str, ...] = tuple(f.key for f in GATE_FORMATS)


def all_formats() -> tuple[ExportFormat, ...]:
    """Every row: the classifier's, the line reader's and the gate's (read when called)."""
    return FORMATS + READER_FORMATS + GATE_FORMATS


def get_format(key: str, table: tuple[ExportFormat, ...] | None = None) -> ExportFormat:
    """The format with this key in ``table`` (default: FORMATS); a ValueError lists the keys."""
    table = FORMATS if table is None else table
    for fmt in table:
        if fmt.key == key:
            return fmt
    raise ValueError(f"unknown format {key!r}; choose from {', '.join(f.key for f in table)}")


def parse_formats(text: str, table: tuple[ExportFormat, ...] | None = None
                  ) -> tuple[ExportFormat, ...]:
    """'all' or comma-separated keys of ``table`` (default: FORMATS) -> its rows in table order
    (duplicates dropped)."""
    table = FORMATS if table is None else table
    if text.strip() == "all":
        return table
    keys = [k.strip() for k in text.split(",") if k.strip()]
    if not keys:
        raise ValueError(f"no format given in {text!r}; choose 'all' or comma-separated keys "
                         f"from {', '.join(f.key for f in table)}")
    wanted = {get_format(k, table).key for k in keys}
    return tuple(f for f in table if f.key in wanted)
