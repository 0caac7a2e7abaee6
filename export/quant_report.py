"""The quantization report: layer by layer, how far each int8 file is from its float counterpart.

    python -m export.quant_report                        # artifacts/ -> quantization.md + .json
    python -m export.quant_report --artifacts DIR --images 500
    python -m export.quant_report --artifacts DIR --int8 mine_int8.onnx  # your own int8 file

Each int8 file of an export (the classifier's, the line reader's, the "no digit" gate's) and the
float file of the same kind and model run on a sample of the images the int8 file was calibrated
on. Every tensor the int8 file quantizes (its input and each op's output) is dequantized with its
own scale and zero point and compared with the same tensor of the float file, matched by name
(by op position where the names differ): the error there (SQNR, in the definition of
onnxruntime's ``qdq_loss_debug``), the part of it the layer adds to its inputs' error, the error
in quantization steps and the share of values clipped at the int8 limits. The layer that adds
the most error is flagged: that is where a file that fails verification went wrong.

TFLite files run in ai-edge-litert with ``experimental_preserve_all_tensors`` on the builtin
kernels (XNNPACK keeps a delegated graph's intermediate tensors to itself). ONNX files run in
onnxruntime with the runtime's graph optimizations, the outputs of their QuantizeLinear nodes
added as graph outputs: the ops onnxruntime still fuses run on its int8 kernels, as for users;
an op whose output is read that way may stay unfused (DequantizeLinear, the float op,
QuantizeLinear: the file's own QDQ arithmetic). onnxruntime's ``qdq_loss_debug`` tools run the
whole graph unoptimized instead, and match tensors the same way (a QuantizeLinear's input is the
float file's tensor of that name). ``python -m export`` writes the report beside the exported
files and prints its short form after the verification table.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from common import entry, formats, publish
from common.artifacts import MANIFEST_FILE, MODEL_FILE, QUANT_JSON_FILE, QUANT_MD_FILE, read_export
from common.data import DataError
from common.flags import option, parse, positive_int
from common.formats import ExportFormat

PROG = "python -m export.quant_report"
REJECTED = "rejected int8 files"  # ExportContext.cache key: format key -> a rejected file's bytes
IMAGES = 200   # calibration images the report runs on: a few seconds for every file
BATCH = 100    # images per interpreter call (bounds the memory of the preserved tensors)
# the printed table leaves out layers adding less error than this: the exported models' layers
# add theirs at 37-52 dB, the input's rounding and reordered float sums at 140 dB and more
SHOWN_DB = 60.0


@dataclass(frozen=True)
class Layer:
    """One quantized tensor of an int8 file against the float file's."""

    name: str                 # the tensor, without the model's name
    op: str                   # the op that makes it (or "input")
    sqnr_db: float            # 10 log10(sum f^2 / sum (q - f)^2); inf when equal
    added_db: float           # the same for the error this layer adds to its inputs'; inf: none
    rms_error_steps: float    # RMS of q - f in quantization steps (rounding alone: 0.29)
    max_abs_error: float      # max |q - f|, in the tensor's units
    max_error_steps: float    # the same in quantization steps
    clipped: float            # share of float values beyond the int8 range (plus half a step)
    upstream: list[str] = field(default_factory=list)  # the reported tensors feeding it

    def as_dict(self) -> dict:
        """The JSON form (inf as null)."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v)
                    else round(v, 6) if isinstance(v, float) else v)
                for k, v in asdict(self).items()}


@dataclass(frozen=True)
class FileReport:
    """The layers of one int8 file, in the order the file computes them."""

    key: str
    path: str
    float_path: str
    images: int
    layers: list[Layer]
    seconds: float
    rejected: bool = False  # verification rejected the file: the export did not publish it

    @property
    def worst(self) -> Layer | None:
        """The layer that adds the most error (the lowest added SQNR)."""
        return min(self.layers, key=lambda layer: layer.added_db, default=None)

    def as_dict(self) -> dict:
        """The JSON form."""
        worst = self.worst
        return {"key": self.key, "file": self.path, "float_file": self.float_path,
                "rejected": self.rejected, "images": self.images,
                "worst_layer": worst.name if worst else None,
                "seconds": round(self.seconds, 2), "layers": [x.as_dict() for x in self.layers]}


@dataclass(frozen=True)
class QuantReport:
    """The reports of every int8 file of a folder."""

    files: list[FileReport]

    def table(self, every: bool = False) -> str:
        """The short form printed after the export's verification table: per file, the layers
        that add error (below SHOWN_DB) and the output; ``every``: all layers."""
        if not self.files:
            return "quantization report: no int8 file with its float counterpart"
        rows: list[tuple[str, ...]] = [
            (f.key + (" (rejected)" if f.rejected else ""), layer.name, layer.op,
             _db(layer.sqnr_db), _db(layer.added_db),
             f"{layer.clipped:.2%}", "<- worst" if layer is f.worst else "")
            for f in self.files for i, layer in enumerate(f.layers)
            if every or layer.added_db < SHOWN_DB or i == len(f.layers) - 1]
        title = ("every layer" if every else
                 f"the layers that add error, and the output; every layer in {QUANT_MD_FILE}")
        return f"quantization report (int8 against float; {title}):\n" + _table(
            ("file", "layer", "op", "SQNR dB", "added dB", "clipped", ""), rows)

    def markdown(self) -> str:
        """The full report, one table per file."""
        out = ["# Quantization report", "",
               "Each int8 file against the float file of the same model, tensor by tensor, on "
               "a sample of its calibration images (`python -m export.quant_report`; "
               "docs/export.md explains the columns). The layer that adds the most error is "
               "marked.", ""]
        for f in self.files:
            worst = f.worst
            blame = (f"`{worst.name}` ({worst.op}), adds error at {_db(worst.added_db)} dB"
                     if worst else "none")
            out += [f"## {f.key}: `{f.path}` against `{f.float_path}`", "",
                    *([f"Verification rejected `{f.path}`; the export did not publish it.", ""]
                      if f.rejected else []),
                    f"{f.images} images; worst layer: {blame}.",
                    "", "| # | layer | op | SQNR dB | added dB | RMS error (steps) | "
                        "max error | max error (steps) | clipped | |",
                    "|---|---|---|---|---|---|---|---|---|---|"]
            out += [f"| {i} | `{x.name}` | {x.op} | {_db(x.sqnr_db)} | {_db(x.added_db)} | "
                    f"{x.rms_error_steps:.2f} | {x.max_abs_error:.3g} | {x.max_error_steps:.1f} "
                    f"| {x.clipped:.2%} | {'**worst**' if x is worst else ''} |"
                    for i, x in enumerate(f.layers)]
            out.append("")
        return "\n".join(out)

    def as_dict(self) -> dict:
        """quantization.json."""
        return {"files": [f.as_dict() for f in self.files]}


def _db(value: float) -> str:
    return "exact" if not math.isfinite(value) else f"{value:.1f}"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in (header, *rows)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --- measuring ----------------------------------------------------------------------------------

class _Stats:
    """Running sums of one tensor's comparison over the images."""

    def __init__(self) -> None:
        self.signal = self.noise = self.noise_steps = 0.0
        self.max_abs = self.max_steps = 0.0
        self.clipped = self.count = 0

    def add(self, q: np.ndarray, f: np.ndarray, scale: np.ndarray, lo: np.ndarray,
            hi: np.ndarray) -> None:
        """``q``: dequantized int8 values, ``f``: float values, ``scale``/``lo``/``hi``: the
        step and the representable range (broadcast to ``q``)."""
        f64, err = f.astype(np.float64), q.astype(np.float64) - f
        steps = np.abs(err) / scale
        self.signal += float(np.sum(f64 ** 2))
        self.noise += float(np.sum(err ** 2))
        self.noise_steps += float(np.sum(steps ** 2))
        self.max_abs = max(self.max_abs, float(np.max(np.abs(err), initial=0.0)))
        self.max_steps = max(self.max_steps, float(np.max(steps, initial=0.0)))
        self.clipped += int(np.sum((f64 < lo - scale / 2) | (f64 > hi + scale / 2)))
        self.count += int(err.size)

    @property
    def relative_noise(self) -> float:
        """Error power over signal power (0 when equal)."""
        if self.noise == 0.0:
            return 0.0
        return self.noise / max(self.signal, np.finfo(np.float64).tiny)


@dataclass
class _Tensor:
    """A quantized tensor of the int8 file and its counterpart in the float file."""

    name: str
    op: str
    upstream: list[str]
    stats: _Stats = field(default_factory=_Stats)


def _layers(tensors: list[_Tensor]) -> list[Layer]:
    """Layers from the measured tensors: each one's error and what it adds to its inputs'."""
    noise = {t.name: t.stats.relative_noise for t in tensors}
    out = []
    for t in tensors:
        s = t.stats
        before = max((noise[u] for u in t.upstream), default=0.0)
        n = max(s.count, 1)
        out.append(Layer(
            name=_short(t.name), op=t.op, sqnr_db=_to_db(noise[t.name]),
            added_db=_to_db(noise[t.name] - before), rms_error_steps=math.sqrt(s.noise_steps / n),
            max_abs_error=s.max_abs, max_error_steps=s.max_steps, clipped=s.clipped / n,
            upstream=[_short(u) for u in t.upstream]))
    return out


def _to_db(relative_noise: float) -> float:
    return math.inf if relative_noise <= 0.0 else -10.0 * math.log10(relative_noise)


def _short(name: str) -> str:
    """A tensor name without the converter's fused aliases, ':0' and the model's name."""
    first = name.split(";")[0].removesuffix(":0")
    return first.split("/", 1)[1] if first.count("/") >= 2 else first


def _batches(images: np.ndarray | list[np.ndarray]) -> Iterator[np.ndarray]:
    """The images in batches of at most BATCH, each of one shape (strips differ in width)."""
    by_shape: dict[tuple[int, ...], list[np.ndarray]] = {}
    for x in images:
        by_shape.setdefault(x.shape, []).append(x)
    for group in by_shape.values():
        for i in range(0, len(group), BATCH):
            yield np.stack(group[i: i + BATCH]).astype(np.float32)


def _quantization(scale: np.ndarray, zero: np.ndarray, axis: int, ndim: int, dtype: np.dtype
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(scale, zero point, lowest, highest value) shaped to broadcast over a tensor of ``ndim``
    dimensions (per-channel along ``axis``)."""
    info = np.iinfo(dtype)
    shape = [1] * ndim
    if scale.size > 1:
        shape[axis] = scale.size
    s = np.maximum(scale.astype(np.float64), np.finfo(np.float64).tiny).reshape(shape)
    z = zero.astype(np.float64).reshape(shape) if zero.size > 1 else \
        np.full(shape, float(zero.reshape(-1)[0]) if zero.size else 0.0)
    return s, z, (info.min - z) * s, (info.max - z) * s


def _compare(t: _Tensor, q: np.ndarray, f: np.ndarray, scale: np.ndarray, zero: np.ndarray,
             axis: int) -> None:
    if q.shape != f.shape:
        raise ValueError(f"{t.name}: shape {q.shape} in the int8 file, {f.shape} in the float "
                         "file; they are not the same model")
    s, z, lo, hi = _quantization(scale, zero, axis, q.ndim, q.dtype)
    t.stats.add((q.astype(np.float64) - z) * s, f, s, lo, hi)


def _tflite(int8_path: Path, float_path: Path, images) -> list[_Tensor]:
    """The quantized tensors of a TFLite int8 file against the float file's, on ``images``."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    def load(path: Path):
        with warnings.catch_warnings():  # its "for debugging only" notice: this is debugging
            warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors")
            # the bytes, not the path: the interpreter takes no path that is not UTF-8
            return Interpreter(model_content=path.read_bytes(),
                               experimental_preserve_all_tensors=True,
                               experimental_op_resolver_type=(
                                   OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))

    qi, fi = load(int8_path), load(float_path)
    # the op graph: the interpreter's own description (what TensorFlow's QuantizationDebugger reads)
    q_ops, f_ops = qi._get_ops_details(), fi._get_ops_details()
    q_tensors = {t["index"]: t for t in qi.get_tensor_details()}
    f_by_name = {t["name"]: t for t in fi.get_tensor_details()}
    f_tensors = {t["index"]: t for t in fi.get_tensor_details()}
    q_in, f_in = qi.get_input_details()[0], fi.get_input_details()[0]

    def quantized(index: int) -> bool:
        t = q_tensors[index]
        return t["dtype"] in (np.int8, np.uint8, np.int16) \
            and t["quantization_parameters"]["scales"].size > 0

    def counterpart(index: int, op: int | None, position: int) -> int | None:
        t = f_by_name.get(q_tensors[index]["name"])
        if t is None and op is not None and op < len(f_ops) \
                and f_ops[op]["op_name"] == q_ops[op]["op_name"] \
                and position < len(f_ops[op]["outputs"]):
            t = f_tensors[f_ops[op]["outputs"][position]]
        if t is None and op is None:
            t = f_in
        return t["index"] if t is not None and t["dtype"] == np.float32 else None

    rows: dict[int, tuple[str, int]] = {}  # int8 tensor index -> (op name, float tensor index)
    if quantized(q_in["index"]) and (c := counterpart(q_in["index"], None, 0)) is not None:
        rows[q_in["index"]] = ("input", c)
    producer = {}
    for op in q_ops:
        for position, index in enumerate(op["outputs"]):
            producer[index] = op
            if quantized(index) and (c := counterpart(index, op["index"], position)) is not None:
                rows[index] = (op["op_name"], c)

    def upstream(index: int, seen: set[int]) -> list[int]:
        found: list[int] = []
        op = producer.get(index)
        for i in (op["inputs"] if op is not None else []):
            if i < 0 or i in seen:
                continue
            seen.add(i)
            found += [i] if i in rows else upstream(i, seen)
        return found

    _check_found(rows, int8_path, float_path)
    tensors = {i: _Tensor(q_tensors[i]["name"], op, [q_tensors[u]["name"]
                                                      for u in upstream(i, set())])
               for i, (op, _) in rows.items()}
    in_q = q_in["quantization_parameters"]
    for x in _batches(images):
        for interp, detail in ((qi, q_in), (fi, f_in)):
            interp.resize_tensor_input(detail["index"], x.shape)
            interp.allocate_tensors()
        if q_in["dtype"] == np.float32:
            qi.set_tensor(q_in["index"], x)
        else:
            info = np.iinfo(q_in["dtype"])
            qi.set_tensor(q_in["index"], np.clip(
                np.round(x / in_q["scales"][0]) + in_q["zero_points"][0], info.min, info.max
            ).astype(q_in["dtype"]))
        fi.set_tensor(f_in["index"], x)
        qi.invoke()
        fi.invoke()
        for index, (_, f_index) in rows.items():
            p = q_tensors[index]["quantization_parameters"]
            _compare(tensors[index], qi.get_tensor(index), fi.get_tensor(f_index), p["scales"],
                     p["zero_points"], p["quantized_dimension"])
    return list(tensors.values())


def _onnx(int8_path: Path, float_path: Path, images) -> list[_Tensor]:
    """The quantized tensors (QuantizeLinear outputs) of a QDQ ONNX file against the float file's
    tensors of the same names, on ``images``."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    q, f = onnx.load(int8_path), onnx.load(float_path)
    consts = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
    producers = {o: n for n in q.graph.node for o in n.output}
    f_ops = {o: n.op_type for n in f.graph.node for o in n.output}
    f_ops.update({i.name: "input" for i in f.graph.input})
    rows: dict[str, tuple[str, str, np.ndarray, np.ndarray, int]] = {}
    for node in q.graph.node:
        if node.op_type != "QuantizeLinear" or node.input[1] not in consts:
            continue
        source = node.input[0]
        name = source if source in f_ops else source.removesuffix("_QuantizeLinear_Input")
        if name not in f_ops:
            continue
        zero = consts.get(node.input[2]) if len(node.input) > 2 else None
        zero = np.zeros((), np.uint8) if zero is None else zero
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        rows[node.output[0]] = (name, f_ops[name], consts[node.input[1]], zero, axis)

    def upstream(tensor: str, seen: set[str]) -> list[str]:
        found: list[str] = []
        node = producers.get(tensor)
        for i in (node.input if node is not None else []):
            if not i or i in seen or i in consts:
                continue
            seen.add(i)
            found += [i] if i in rows else upstream(i, seen)
        return found

    _check_found(rows, int8_path, float_path)
    tensors = {out: _Tensor(name, op, [rows[u][0] for u in upstream(out, set())])
               for out, (name, op, *_) in rows.items()}
    for model, names, types in ((q, list(rows), [onnx.helper.np_dtype_to_tensor_dtype(
            r[3].dtype) for r in rows.values()]),
            (f, [r[0] for r in rows.values()], [onnx.TensorProto.FLOAT] * len(rows))):
        have = {o.name for o in model.graph.output}
        model.graph.output.extend(onnx.helper.make_tensor_value_info(n, t, None)
                                  for n, t in zip(names, types, strict=True) if n not in have)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # as the runtime
    opts.log_severity_level = 3
    qs, fs = (ort.InferenceSession(m.SerializeToString(), sess_options=opts,
                                   providers=["CPUExecutionProvider"]) for m in (q, f))
    q_input, f_input = qs.get_inputs()[0].name, fs.get_inputs()[0].name
    for x in _batches(images):
        q_out = qs.run(list(rows), {q_input: x})
        f_out = dict(zip([r[0] for r in rows.values()],
                         fs.run([r[0] for r in rows.values()], {f_input: x}), strict=True))
        for (out, (name, _, scale, zero, axis)), values in zip(rows.items(), q_out, strict=True):
            _compare(tensors[out], values, f_out[name], scale, zero, axis)
    return list(tensors.values())


def _check_found(rows: dict, int8_path: Path, float_path: Path) -> None:
    if not rows:
        raise ValueError(f"{int8_path}: no quantized tensor with a float counterpart in "
                         f"{float_path.name}; give an int8 file of the same model")


def compare(int8_path: Path, float_path: Path, images, key: str = "") -> FileReport:
    """The report of one int8 file against its float counterpart on ``images`` (float32 model
    inputs without a batch dimension, in [0, 1]); ValueError when they are not one model."""
    start = time.perf_counter()
    suffix = Path(int8_path).suffix.lower()
    if suffix != Path(float_path).suffix.lower() or suffix not in (".tflite", ".onnx"):
        raise ValueError(f"{int8_path}, {float_path}: need two .tflite or two .onnx files")
    measure = _tflite if suffix == ".tflite" else _onnx
    layers = _layers(measure(Path(int8_path), Path(float_path), images))
    return FileReport(key or Path(int8_path).name, Path(int8_path).name, Path(float_path).name,
                      len(images), layers, time.perf_counter() - start)


def sides() -> tuple[tuple[str, str | None, tuple[ExportFormat, ...]], ...]:
    """The models of an export: (name, manifest section or None for the top level, format
    table), read from the tables when called."""
    return (("classifier", None, formats.FORMATS),
            ("line_reader", "line_reader", formats.READER_FORMATS),
            ("gate", "gate", formats.GATE_FORMATS))


def pairs(table: tuple[ExportFormat, ...]) -> list[tuple[ExportFormat, ExportFormat]]:
    """(int8 row, float row of the same kind) of a format table."""
    return [(q, f) for q in table if q.precision == "int8" for f in table
            if f.precision == "float32" and f.kind == q.kind]


def build(folder: Path, images: dict[str, np.ndarray | list[np.ndarray]],
          log: Callable[[str], None] = print, rejected: dict[str, bytes] | None = None
          ) -> QuantReport:
    """The report of every int8 file in ``folder`` whose float counterpart is there too, on
    ``images[side]`` (a side without images is left out); ``rejected``: int8 files verification
    rejected (format key -> content), reported in place of the missing file."""
    import tempfile

    rejected = rejected or {}
    found = []
    for side, _, table in sides():
        for q, f in pairs(table):
            if side in images and (folder / f.filename).is_file() \
                    and ((folder / q.filename).is_file() or q.key in rejected):
                found.append((q, f, images[side]))
    reports = []
    for i, (q, f, sample) in enumerate(found, 1):
        log(f"  quantization report {i}/{len(found)}: {q.filename} against {f.filename} on "
            f"{len(sample)} calibration images")
        if (folder / q.filename).is_file():
            reports.append(compare(folder / q.filename, folder / f.filename, sample, q.key))
            continue
        with tempfile.TemporaryDirectory(prefix="mnist-edge-rejected-") as tmp:
            (Path(tmp) / q.filename).write_bytes(rejected[q.key])
            report = compare(Path(tmp) / q.filename, folder / f.filename, sample, q.key)
        reports.append(replace(report, rejected=True))
    return QuantReport(reports)


def write(report: QuantReport, folder: Path) -> None:
    """quantization.md and quantization.json into ``folder``, each atomically."""
    publish.write_bytes(folder / QUANT_MD_FILE, report.markdown().encode())
    publish.write_json(folder / QUANT_JSON_FILE, report.as_dict())


@dataclass
class Inputs:
    """What an export run hands the report: each model's calibration sample (``images``) and
    its contexts, whose cache holds the int8 files verification rejected (under REJECTED)."""

    images: dict = field(default_factory=dict)
    contexts: list = field(default_factory=list)

    def add(self, side: str, ctx) -> None:
        """Record ``side``'s ExportContext."""
        self.images[side] = sample(side, ctx.calibration)
        self.contexts.append(ctx)

    def rejected(self) -> dict[str, bytes]:
        """The rejected int8 files of every side: format key -> content."""
        return {k: v for ctx in self.contexts for k, v in ctx.cache.get(REJECTED, {}).items()}


# --- the images ---------------------------------------------------------------------------------

def sample(side: str, calibration, count: int = IMAGES):
    """``count`` of ``side``'s calibration images: the first ones, spread evenly for the gate
    (its digits come first, then its non-digits)."""
    if side != "gate" or len(calibration) <= count:
        return calibration[:count]
    picked = np.linspace(0, len(calibration) - 1, count).round().astype(int)
    return calibration[picked]


def calibration_images(side: str, settings: dict, x_train: np.ndarray, count: int = IMAGES):
    """``sample`` of the images ``side``'s int8 files were calibrated on, remade from the
    manifest's ``export`` settings (the seed, the sample sizes, the MNIST source)."""
    from common.data import to_model_input
    from export import gate_files, line_export
    from export.context import calibration_sample

    seed = settings["seed"]
    if side == "classifier":
        return sample(side, to_model_input(calibration_sample(
            x_train, settings["calibration_samples"], seed)), count)
    if side == "line_reader":  # lines are made one by one from the seed: the first are the same
        return line_export.calibration_strips(settings.get("data"), seed,
                                              min(count, settings["reader_calibration"]))
    return sample(side, gate_files.calibration_images(x_train, settings["gate_calibration"],
                                                      seed), count)


def images_for(folder: Path, images: dict, settings: dict, x_train: np.ndarray) -> dict:
    """``images`` (side -> sample) completed for the sides whose int8 files ``folder`` holds
    (files an export carried over), remade with ``calibration_images``."""
    out = dict(images)
    for side, _, table in sides():
        if side not in out and any((folder / q.filename).is_file() for q, _ in pairs(table)):
            out[side] = calibration_images(side, settings, x_train)
    return out


# --- the command line ---------------------------------------------------------------------------

@dataclass
class ReportConfig:
    """Flags of python -m export.quant_report."""

    artifacts: str = option("artifacts", f"an exported artifacts folder (with {MANIFEST_FILE})")
    images: int = option(IMAGES, "calibration images to run each pair of files on",
                         type=positive_int)
    int8: str | None = option(None, "your own int8 file to report on instead, against the "
                                    "folder's float file of the same kind and model (its format "
                                    "is found by its file name, else --format)")
    format: str | None = option(None, "with --int8: the int8 format key it stands for, e.g. "
                                      "onnx_int8 (default: the key whose file name it has)")
    data: str | None = option(None, "mnist.npz or IDX folder (default: the one the manifest "
                                    "records, else $MNIST_DATA, else the Keras download)")


def main(argv: list[str] | None = None) -> int:
    """Entry point: one line on stderr and exit status 1 for expected problems."""
    cfg = parse(ReportConfig, argv, PROG,
                "Compare each int8 file of an exported artifacts folder with the float file of "
                "the same kind and model, tensor by tensor, on a sample of the images the int8 "
                f"file was calibrated on; print the table and write {QUANT_MD_FILE} and "
                f"{QUANT_JSON_FILE} into the folder. With --int8, report on your own int8 file "
                "(printed only, nothing written).")
    return entry.run(PROG, cfg, _run, (ValueError, FileNotFoundError, DataError))


def _run(cfg: ReportConfig) -> int:
    folder = Path(cfg.artifacts)
    manifest = read_export(folder)
    if manifest is None:
        raise FileNotFoundError(f"{folder / MANIFEST_FILE}: missing or unreadable; export first "
                                "with `make export` (python -m export)")
    settings = dict(manifest.data.get("export") or {})
    if cfg.data is not None:
        settings["data"] = cfg.data
    if cfg.int8 is not None:
        return _report_own(cfg, folder, settings, manifest.data.get("dataset"))
    with publish.exclusive(folder):  # the files stay as they are until the report is written
        x_train = _training_images(settings, manifest.data.get("dataset"), folder)
        exported = [s for s, section, _ in sides()
                    if section is None or manifest.data.get(section)]
        report = build(folder, {s: calibration_images(s, settings, x_train, cfg.images)
                                for s in exported},
                       log=lambda line: print(line, file=sys.stderr, flush=True))
        print(report.table(every=True))
        with publish.staging(folder) as stage:
            write(report, stage)
    print(f"\nwritten: {folder / QUANT_MD_FILE}, {folder / QUANT_JSON_FILE}")
    return 0


def _report_own(cfg: ReportConfig, folder: Path, settings: dict, record: dict | None) -> int:
    """--int8: the report of the user's file against the folder's float file, printed."""
    side, q, f = _own(cfg)
    path = Path(str(cfg.int8))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found")
    if not (folder / f.filename).is_file():
        raise FileNotFoundError(f"{folder / f.filename}: not found; the float counterpart of "
                                f"{q.key} comes from the export")
    images = calibration_images(side, settings, _training_images(settings, record, folder),
                                cfg.images)
    print(QuantReport([compare(path, folder / f.filename, images, q.key)]).markdown())
    return 0


def _training_images(settings: dict, record: dict | None, folder: Path) -> np.ndarray:
    """The training images the folder's int8 files were calibrated on: the recorded dataset's."""
    from common.dataset import load_for

    return load_for(record, settings.get("data"), str(folder / MODEL_FILE)).x_train


def _own(cfg: ReportConfig) -> tuple[str, ExportFormat, ExportFormat]:
    """(side, int8 row, float row) that --int8/--format name."""
    name = Path(str(cfg.int8)).name
    for side, _, table in sides():
        for q, f in pairs(table):
            if q.key == cfg.format or (cfg.format is None and q.filename == name):
                return side, q, f
    keys = ", ".join(q.key for _, _, t in sides() for q, _ in pairs(t))
    raise ValueError(f"--int8 {cfg.int8}: say which file it stands for with --format, one of "
                     f"{keys}" if cfg.format is None else f"--format {cfg.format}: not an int8 "
                     f"format; choose one of {keys}")


if __name__ == "__main__":
    entry.exit(main)
