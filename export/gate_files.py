"""The "no digit" gate's files: int8 and float32 TFLite, float32 and int8 (QDQ) ONNX.

The gate takes the classifier's input, float32 [N, 28, 28, 1] in [0, 1] (int8 for the int8
TFLite file), and answers two probabilities, ``train.gate_model.CLASSES`` in order. The int8
files are calibrated on MNIST training digits and generated training non-digits
(``calibration_images``); the runtime refuses an image whose digit probability is below the
manifest's threshold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common import nondigits
from export import to_onnx, to_tflite
from export.context import ExportContext, calibration_sample
from export.contract import embedded_metadata
from mnist_edge.formats import (
    GATE_ONNX_FLOAT32,
    GATE_ONNX_INT8,
    GATE_TFLITE_FLOAT32,
    GATE_TFLITE_INT8,
)


def convert_tflite_int8(ctx: ExportContext, path: Path) -> None:
    """Write the full-integer int8 TFLite gate (int8 input and output) to ``path``."""
    to_tflite.write(ctx, path, GATE_TFLITE_INT8.key, to_tflite.int8_model(ctx))


def convert_tflite_float32(ctx: ExportContext, path: Path) -> None:
    """Write the float32 TFLite gate to ``path``."""
    to_tflite.write(ctx, path, GATE_TFLITE_FLOAT32.key, to_tflite.float32_model(ctx))


def convert_onnx_float32(ctx: ExportContext, path: Path) -> None:
    """Write the float32 ONNX gate (dynamic batch) to ``path``."""
    to_onnx.save(_float_onnx(ctx), path,
                 embedded_metadata(GATE_ONNX_FLOAT32.key, ctx.weights_sha256, ctx.labels))


def convert_onnx_int8(ctx: ExportContext, path: Path) -> None:
    """Write the static int8 QDQ ONNX gate (float32 input and output) to ``path``."""
    images = ctx.calibration
    batches = (images[i: i + to_onnx.CALIBRATION_BATCH]
               for i in range(0, len(images), to_onnx.CALIBRATION_BATCH))
    to_onnx.save(to_onnx.int8_model(ctx, _float_onnx(ctx), to_onnx.INPUT_NAME, batches), path,
                 embedded_metadata(GATE_ONNX_INT8.key, ctx.weights_sha256, ctx.labels))


def calibration_images(x_train: np.ndarray, count: int, seed: int) -> np.ndarray:
    """float32 [2 * count, 28, 28, 1]: ``count`` MNIST training digits and ``count`` generated
    training non-digits, from ``seed``, for int8 calibration."""
    digits = calibration_sample(x_train, count, seed)
    others, _ = nondigits.generate(count, seed, nondigits.TRAIN, digits=x_train)
    both = np.concatenate([digits, others])
    return (both / np.float32(255)).astype(np.float32)[..., np.newaxis]


def _float_onnx(ctx: ExportContext):
    """The float32 ONNX gate (converted once per run, then cached)."""
    if GATE_ONNX_FLOAT32.key not in ctx.cache:
        ctx.cache[GATE_ONNX_FLOAT32.key] = to_onnx.keras_to_onnx(
            ctx, (None, 28, 28, 1), to_onnx.INPUT_NAME, to_onnx.OUTPUT_NAME,
            ((to_onnx.BATCH_DIM,), (to_onnx.BATCH_DIM,)),
            "mnist-edge \"no digit\" gate: float32 NHWC [batch,28,28,1] in [0,1] -> 2 "
            "probabilities (not a digit, digit)")
    return ctx.cache[GATE_ONNX_FLOAT32.key]
