"""The line reader's files: int8 and float32 TFLite, float32 and int8 (QDQ) ONNX, with a dynamic
width.

The files end at the softmax scores, [N, W/4, 11]; decoding (greedy, in numpy) is the
runtime's, never a decoder op (TFLite would need a custom op, tf2onnx refuses it). The input is
float32 [N, 32, W, 1] (int8 for the int8 TFLite file) with N and W dynamic: the interpreter is
resized to each strip's width. The int8 file is calibrated on strips of lines made from MNIST
*training* digits, each at its own width (``ExportContext.calibration`` holds [32, W, 1] strips).
"""

from __future__ import annotations

from pathlib import Path

from common.strips import HEIGHT
from export import to_onnx, to_tflite
from export.context import ExportContext
from export.contract import embedded_metadata
from mnist_edge.formats import (
    READER_ONNX_FLOAT32,
    READER_ONNX_INT8,
    READER_TFLITE_FLOAT32,
    READER_TFLITE_INT8,
)

INPUT_NAME = "line"
OUTPUT_NAME = "scores"


def convert_tflite_int8(ctx: ExportContext, path: Path) -> None:
    """Write the full-integer int8 TFLite reader (int8 input and output) to ``path``."""
    to_tflite.write(ctx, path, READER_TFLITE_INT8.key, to_tflite.int8_model(ctx))


def convert_tflite_float32(ctx: ExportContext, path: Path) -> None:
    """Write the float32 TFLite reader to ``path``."""
    to_tflite.write(ctx, path, READER_TFLITE_FLOAT32.key, to_tflite.float32_model(ctx))


def convert_onnx_float32(ctx: ExportContext, path: Path) -> None:
    """Write the float32 ONNX reader (dynamic batch and width) to ``path``."""
    to_onnx.save(_float_onnx(ctx), path,
                 embedded_metadata(READER_ONNX_FLOAT32.key, ctx.weights_sha256))


def convert_onnx_int8(ctx: ExportContext, path: Path) -> None:
    """Write the static int8 QDQ ONNX reader (float32 input and output) to ``path``, calibrated
    on the strips one at a time (their widths differ)."""
    to_onnx.save(to_onnx.int8_model(ctx, _float_onnx(ctx), INPUT_NAME, ctx.samples()), path,
                 embedded_metadata(READER_ONNX_INT8.key, ctx.weights_sha256))


def _float_onnx(ctx: ExportContext):
    """The float32 ONNX reader (converted once per run, then cached)."""
    if READER_ONNX_FLOAT32.key not in ctx.cache:
        ctx.cache[READER_ONNX_FLOAT32.key] = to_onnx.keras_to_onnx(
            ctx, (None, HEIGHT, None, 1), INPUT_NAME, OUTPUT_NAME,
            (("batch", "width"), ("batch", "columns")),
            "mnist-edge line reader: float32 NHWC [batch,32,width,1] in [0,1] -> "
            "[batch,width/4,11] per-column softmax scores (digits 0-9, blank last)")
    return ctx.cache[READER_ONNX_FLOAT32.key]

