"""The int8 classifier as C++ for TensorFlow Lite Micro: a source file holding model_int8.tflite
as a byte array, and a header with its operators, tensors and arena size.

    from export import micro_files
    ops = micro_files.operators(data)              # ['CONV_2D', 'FULLY_CONNECTED', ...]
    micro_files.write(stage, data, ops, tensors, arena)

The header includes no TensorFlow Lite Micro header: ``mnist_micro::AddOps`` is a template
over the resolver, so the sketch includes TFLM's headers and this one in any order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common import publish
from common.artifacts import MICRO_HEADER, MICRO_SOURCE
from mnist_edge.digest import sha256_hex
from mnist_edge.formats import TFLITE_INT8

NAMESPACE = "mnist_micro"
BYTES_PER_LINE = 12
# builtin operator -> the tflite::MicroMutableOpResolver method that registers it
# (tensorflow/lite/micro/micro_mutable_op_resolver.h of tflite-micro)
RESOLVER_METHODS = {
    "ADD": "AddAdd", "AVERAGE_POOL_2D": "AddAveragePool2D", "CONCATENATION": "AddConcatenation",
    "CONV_2D": "AddConv2D", "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "DEQUANTIZE": "AddDequantize", "EXPAND_DIMS": "AddExpandDims",
    "FULLY_CONNECTED": "AddFullyConnected", "HARD_SWISH": "AddHardSwish",
    "LEAKY_RELU": "AddLeakyRelu", "LOGISTIC": "AddLogistic", "MAX_POOL_2D": "AddMaxPool2D",
    "MEAN": "AddMean", "MUL": "AddMul", "PACK": "AddPack", "PAD": "AddPad",
    "QUANTIZE": "AddQuantize", "RELU": "AddRelu", "RELU6": "AddRelu6", "RESHAPE": "AddReshape",
    "SHAPE": "AddShape", "SOFTMAX": "AddSoftmax", "SPACE_TO_DEPTH": "AddSpaceToDepth",
    "SQUEEZE": "AddSqueeze", "STRIDED_SLICE": "AddStridedSlice", "SUB": "AddSub",
    "TANH": "AddTanh", "TRANSPOSE": "AddTranspose", "UNPACK": "AddUnpack",
}


class MicroError(ValueError):
    """The int8 file cannot be packaged for TensorFlow Lite Micro (the message says why)."""


@dataclass(frozen=True)
class Tensor:
    """The input or output tensor as TFLM sees it (batch of one)."""

    shape: tuple[int, ...]
    dtype: str
    scale: float
    zero_point: int

    def as_dict(self) -> dict:
        """The manifest's form: shape, dtype, quantization."""
        return {"shape": list(self.shape), "dtype": self.dtype,
                "quantization": {"scale": self.scale, "zero_point": self.zero_point}}


@dataclass(frozen=True)
class Arena:
    """The tensor arena: measured, and the header's constant with its margin."""

    measured: int      # smallest arena TFLM allocated and invoked with (16-byte steps)
    recorded: int      # TFLM's RecordingMicroAllocator total at that arena
    header: int        # the header's kArenaSize: measured plus MARGIN, rounded up to ROUND
    margin: str        # the margin in words


def operators(model: bytes) -> list[str]:
    """The builtin operators ``model``'s graphs use (sorted names); MicroError for a custom one."""
    from tensorflow.lite.python import schema_py_generated as schema

    names = {value: name for name, value in vars(schema.BuiltinOperator).items()
             if not name.startswith("_")}
    root = schema.Model.GetRootAsModel(model, 0)
    used = set()
    for g in range(root.SubgraphsLength()):
        graph = root.Subgraphs(g)
        for i in range(graph.OperatorsLength()):
            code = root.OperatorCodes(graph.Operators(i).OpcodeIndex())
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            if builtin == schema.BuiltinOperator.CUSTOM:
                raise MicroError(f"{TFLITE_INT8.filename}: custom operator "
                                 f"{code.CustomCode().decode()!r}; TFLM needs it registered by "
                                 "hand, so no microcontroller package is made")
            used.add(names.get(builtin, f"builtin {builtin}"))
    return sorted(used)


def resolver_methods(ops: list[str]) -> list[str]:
    """The MicroMutableOpResolver method of each op; MicroError for one not in RESOLVER_METHODS."""
    missing = [op for op in ops if op not in RESOLVER_METHODS]
    if missing:
        raise MicroError(f"{TFLITE_INT8.filename}: operator {', '.join(missing)} has no "
                         "MicroMutableOpResolver method in export/micro_files.py's "
                         "RESOLVER_METHODS; add it there if TFLM supports it")
    return [RESOLVER_METHODS[op] for op in ops]


def write(folder: Path, model: bytes, ops: list[str], inp: Tensor, out: Tensor, arena: Arena,
          tflm_version: str) -> list[dict]:
    """Write MICRO_SOURCE and MICRO_HEADER into ``folder`` (atomically); their manifest entries."""
    publish.write_bytes(folder / MICRO_HEADER,
                        header(model, ops, inp, out, arena, tflm_version).encode())
    publish.write_bytes(folder / MICRO_SOURCE, source(model).encode())
    return [{"path": name, "size": (folder / name).stat().st_size,
             "sha256": sha256_hex((folder / name).read_bytes())}
            for name in (MICRO_SOURCE, MICRO_HEADER)]


def source(model: bytes) -> str:
    """The C++ source: the model as a 16-byte aligned byte array and its length."""
    data = np.frombuffer(model, dtype=np.uint8)
    rows = [", ".join(f"0x{b:02x}" for b in data[i:i + BYTES_PER_LINE])
            for i in range(0, len(data), BYTES_PER_LINE)]
    body = ",\n".join(f"    {row}" for row in rows)
    return (f"// {MICRO_SOURCE}: {TFLITE_INT8.filename} ({len(model)} bytes) as a byte array "
            "for TensorFlow Lite Micro,\n"
            f"// sha256 {sha256_hex(model)}.\n"
            "// Written by `python -m export`; do not edit.\n\n"
            f"#include \"{MICRO_HEADER}\"\n\n"
            f"namespace {NAMESPACE} {{\n\n"
            "// TFLM reads the flatbuffer in place: 16-byte alignment keeps its tensors aligned.\n"
            f"alignas(16) const unsigned char g_model[] = {{\n{body}\n}};\n"
            f"const unsigned int g_model_len = {len(model)};\n\n"
            f"}}  // namespace {NAMESPACE}\n")


def header(model: bytes, ops: list[str], inp: Tensor, out: Tensor, arena: Arena,
           tflm_version: str) -> str:
    """The .h file: the model's symbols, input and output constants, arena size and operators."""
    methods = resolver_methods(ops)
    first = methods[0]
    adds = "\n".join(f"  if (auto status = resolver.{m}()) return status;" for m in methods)
    guard = MICRO_HEADER.upper().replace(".", "_")
    _, height, width, channels = inp.shape
    return f"""\
// {MICRO_HEADER}: the mnist-edge digit classifier for TensorFlow Lite Micro (TFLM).
// {TFLITE_INT8.filename}: {len(model)} bytes,
// sha256 {sha256_hex(model)}.
// Written by `python -m export`; do not edit.
//
//   const tflite::Model* model = tflite::GetModel({NAMESPACE}::g_model);
//   tflite::MicroMutableOpResolver<{NAMESPACE}::kOpCount> resolver;
//   {NAMESPACE}::AddOps(resolver);
//   alignas(16) static uint8_t arena[{NAMESPACE}::kArenaSize];
//   tflite::MicroInterpreter interpreter(model, resolver, arena, {NAMESPACE}::kArenaSize);
//
// This header includes nothing from TFLM; include TFLM's headers for the lines above.

#ifndef MNIST_EDGE_{guard}_
#define MNIST_EDGE_{guard}_

#include <stdint.h>

namespace {NAMESPACE} {{

// The model flatbuffer (16-byte aligned, in {MICRO_SOURCE}) and its length in bytes.
extern const unsigned char g_model[];
extern const unsigned int g_model_len;

// Input: one {height}x{width} grey image, NHWC [1, {height}, {width}, {channels}], {inp.dtype}, \
a light digit on a
// dark background (as MNIST). q = round(pixel / 255 / kInputScale) + kInputZeroPoint.
constexpr int kInputHeight = {height};
constexpr int kInputWidth = {width};
constexpr int kInputChannels = {channels};
constexpr float kInputScale = {_float(inp.scale)}f;
constexpr int kInputZeroPoint = {inp.zero_point};

// Output: [1, {out.shape[-1]}] {out.dtype} scores of the digits 0..9 (softmax);
// probability = kOutputScale * (q - kOutputZeroPoint). The digit is the largest score.
constexpr int kNumClasses = {out.shape[-1]};
constexpr float kOutputScale = {_float(out.scale)}f;
constexpr int kOutputZeroPoint = {out.zero_point};

// Tensor arena. kArenaMeasured is the smallest arena with which TFLM's reference kernels
// allocate and invoke this model on a 64-bit host, in 16-byte steps (tflite-micro
// {tflm_version}). kArenaSize adds {arena.margin}:
// optimized kernels (CMSIS-NN, ESP-NN) may ask for scratch buffers.
// interpreter.arena_used_bytes() after AllocateTensors() tells what your board uses.
constexpr int kArenaMeasured = {arena.measured};
constexpr int kArenaSize = {arena.header};

// The {len(ops)} operators the model uses:
{_wrapped(ops)}
constexpr int kOpCount = {len(ops)};

// Registers them in a tflite::MicroMutableOpResolver<kOpCount> (or larger); returns kTfLiteOk,
// or the first failure.
template <typename Resolver>
inline auto AddOps(Resolver& resolver) -> decltype(resolver.{first}()) {{
{adds}
  return {{}};  // kTfLiteOk
}}

// The input value of one pixel (0..255), as mnist-edge's runtime feeds {TFLITE_INT8.filename}.
inline int8_t QuantizePixel(uint8_t pixel) {{
  const float q = static_cast<float>(pixel) / 255.0f / kInputScale;
  const int v = static_cast<int>(q < 0.0f ? q - 0.5f : q + 0.5f) + kInputZeroPoint;
  return static_cast<int8_t>(v < -128 ? -128 : (v > 127 ? 127 : v));
}}

}}  // namespace {NAMESPACE}

#endif  // MNIST_EDGE_{guard}_
"""


def _wrapped(ops: list[str]) -> str:
    """``ops`` as comment lines of at most 100 characters."""
    lines, line = [], "//"
    for op in ops:
        if len(line) + len(op) + 2 > 100:
            lines.append(line.rstrip(","))
            line = "//"
        line += f" {op},"
    return "\n".join([*lines, line.rstrip(",") + "."])


def _float(value: float) -> str:
    """The shortest decimal that reads back as the same float32."""
    text = np.format_float_positional(np.float32(value), unique=True, trim="0")
    return text if "." in text else text + ".0"
