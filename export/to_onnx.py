"""Keras -> ONNX: float32 via tf2onnx, and static int8 QDQ via onnxruntime.quantization.

Float: a ``tf.function`` with the model's input signature (float32 [None, 28, 28, 1] named
``input`` for the classifier) is converted by tf2onnx (``tf2onnx.convert.from_keras`` fails on
Keras 3 models). Keras's own ``model.export(format="onnx")`` gives the same graph but names the
output ``Identity:0`` and does not take an opset; here the output is ``probabilities`` and
``--opset`` applies.

Int8: ``quant_pre_process`` (shape inference + graph optimisation), then ``quantize_static``
in QDQ format with per-channel weights and activations calibrated (MinMax) on the same training
images as the int8 TFLite file. Input and output stay float32: the QDQ nodes at both ends
quantize inside the graph, so one preprocessing serves every ONNX file.

Both weights and activations are unsigned 8-bit (onnxruntime's U8U8). With signed weights
(S8S8, U8S8) onnxruntime's x86 kernels multiply uint8 by int8 with ``vpmaddubsw``, whose 16-bit
sums saturate on CPUs without AVX-512 VNNI / AVX-VNNI: under ``qemu-x86_64 -cpu Haswell`` the
classifier's S8S8 file answered 0.16 pt below its float file on 5,000 test images and agreed
with it on 99.52% of them, where the U8U8 file was 0.02 pt below and agreed on 99.98% (VNNI
hosts: the same answers for all three). ``reduce_range`` (7-bit weights) avoids the saturation
too, at a coarser weight grid. docs/export.md has the table.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from common.tf import import_tensorflow, quiet
from export.context import ExportContext
from export.contract import embedded_metadata
from mnist_edge.formats import ONNX_FLOAT32, ONNX_INT8

INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"
BATCH_DIM = "batch"
CALIBRATION_BATCH = 50  # images per calibration batch fed to onnxruntime


def float_model(ctx: ExportContext):
    """The float32 ONNX ModelProto of ``ctx.model`` (converted once per run, then cached)."""
    if ONNX_FLOAT32.key not in ctx.cache:
        ctx.cache[ONNX_FLOAT32.key] = keras_to_onnx(
            ctx, (None, 28, 28, 1), INPUT_NAME, OUTPUT_NAME, ((BATCH_DIM,), (BATCH_DIM,)),
            "mnist-edge digit classifier: float32 NHWC [batch,28,28,1] in [0,1] -> 10 "
            "probabilities")
    return ctx.cache[ONNX_FLOAT32.key]


def keras_to_onnx(ctx: ExportContext, shape: tuple[int | None, ...], input_name: str,
                  output_name: str, dims: tuple[tuple[str, ...], tuple[str, ...]], doc: str):
    """``ctx.model`` as a float32 ONNX ModelProto taking ``shape`` (None: dynamic); the dynamic
    dimensions of its input and its output are named by ``dims`` (input's, output's), in order."""
    tf = import_tensorflow(ctx.verbose)
    model = ctx.model
    spec = [tf.TensorSpec(shape, tf.float32, name=input_name)]

    @tf.function(input_signature=spec)
    def serve(x):
        return {output_name: model(x, training=False)}

    with quiet(ctx.verbose):
        import tf2onnx

        proto, _ = tf2onnx.convert.from_function(serve, input_signature=spec, opset=ctx.opset)
    for value, names in ((proto.graph.input[0], dims[0]), (proto.graph.output[0], dims[1])):
        dynamic = [d for d in value.type.tensor_type.shape.dim if not d.HasField("dim_value")]
        for dim, name in zip(dynamic, names, strict=True):
            dim.dim_param = name
    proto.doc_string = doc
    return proto


def convert_float32(ctx: ExportContext, path: Path) -> None:
    """Write the float32 ONNX model to ``path``."""
    save(float_model(ctx), path, embedded_metadata(ONNX_FLOAT32.key, ctx.weights_sha256,
                                                      ctx.labels, ctx.dataset))


def convert_int8(ctx: ExportContext, path: Path) -> None:
    """Write the static int8 QDQ ONNX model (float32 input and output) to ``path``."""
    images = ctx.calibration
    batches = (images[i: i + CALIBRATION_BATCH] for i in range(0, len(images), CALIBRATION_BATCH))
    save(int8_model(ctx, float_model(ctx), INPUT_NAME, batches), path,
         embedded_metadata(ONNX_INT8.key, ctx.weights_sha256, ctx.labels, ctx.dataset))


def int8_model(ctx: ExportContext, source, input_name: str, batches: Iterator[np.ndarray]):
    """The float32 ONNX ``source`` statically quantized to 8-bit U8U8 QDQ (float32 input and
    output), calibrated (MinMax) on ``batches`` fed to its input ``input_name``."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def get_next(self):
            batch = next(batches, None)
            return None if batch is None else {input_name: batch}

    with tempfile.TemporaryDirectory(prefix="mnist-edge-onnx-") as tmp:
        float_path, pre_path, q_path = (Path(tmp) / n
                                        for n in ("float.onnx", "pre.onnx", "int8.onnx"))
        onnx.save(source, float_path)
        with quiet(ctx.verbose):
            quant_pre_process(str(float_path), str(pre_path))
            quantize_static(str(pre_path), str(q_path), Reader(), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QUInt8, calibrate_method=CalibrationMethod.MinMax)
        quantized = onnx.load(q_path)
    quantized.doc_string = source.doc_string + " (static 8-bit U8U8 QDQ inside, float32 I/O)"
    return quantized


def save(proto, path: Path, metadata: dict[str, str]) -> None:
    """Check ``proto`` and write it to ``path`` with ``metadata`` as its metadata_props."""
    import onnx

    proto = type(proto).FromString(proto.SerializeToString())  # never alter the cached float model
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, path)
