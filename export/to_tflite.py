"""Keras -> TFLite: the float32 baseline and full-integer int8 post-training quantization.

The converter goes through ``TFLiteConverter.from_keras_model`` (Keras 3 exports a SavedModel
behind the scenes); the input keeps the model's dynamic dimensions (the classifier's shape_signature
is [-1, 28, 28, 1], the line reader's [-1, 32, -1, 1]).
"""

from __future__ import annotations

import json
from pathlib import Path

from common.tf import import_tensorflow, quiet
from export.context import ExportContext
from export.contract import embedded_metadata
from mnist_edge.formats import TFLITE_DYNAMIC, TFLITE_FLOAT16, TFLITE_FLOAT32, TFLITE_INT8

METADATA_NAME = "mnist_edge"  # name of the TFLite metadata entry holding embedded_metadata()
                              # as JSON


def convert_float32(ctx: ExportContext, path: Path) -> None:
    """Write the float32 TFLite model to ``path``."""
    write(ctx, path, TFLITE_FLOAT32.key, float32_model(ctx))


def convert_int8(ctx: ExportContext, path: Path) -> None:
    """Write the full-integer int8 TFLite model (int8 input and output) to ``path``."""
    write(ctx, path, TFLITE_INT8.key, int8_model(ctx))


def convert_float16(ctx: ExportContext, path: Path) -> None:
    """Write the TFLite model with float16 weights (float32 input and output) to ``path``."""
    tf = import_tensorflow()
    converter = _converter(ctx)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    write(ctx, path, TFLITE_FLOAT16.key, _convert(ctx, converter))


def convert_dynamic(ctx: ExportContext, path: Path) -> None:
    """Write the dynamic-range TFLite model (int8 weights, float activations) to ``path``."""
    tf = import_tensorflow()
    converter = _converter(ctx)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    # per-channel dense weights need FULLY_CONNECTED version 12, which tflite-runtime 2.14
    # (32-bit Pi OS) does not have
    converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    write(ctx, path, TFLITE_DYNAMIC.key, _convert(ctx, converter))


def float32_model(ctx: ExportContext) -> bytes:
    """``ctx.model`` as a float32 TFLite flatbuffer, no optimizations."""
    return _convert(ctx, _converter(ctx))


def int8_model(ctx: ExportContext) -> bytes:
    """``ctx.model`` as a full-integer int8 TFLite flatbuffer (int8 input and output), calibrated
    on ``ctx.samples()`` one at a time (each at its own size where the input is dynamic)."""
    tf = import_tensorflow()
    converter = _converter(ctx)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]  # per-channel weights are the default
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    converter.representative_dataset = lambda: ([x] for x in ctx.samples())
    return _convert(ctx, converter)


def _converter(ctx: ExportContext):
    tf = import_tensorflow()
    with quiet(ctx.verbose):
        return tf.lite.TFLiteConverter.from_keras_model(ctx.model)


def _convert(ctx: ExportContext, converter) -> bytes:
    with quiet(ctx.verbose):
        return converter.convert()


def write(ctx: ExportContext, path: Path, key: str, model: bytes) -> None:
    """Write ``model`` to ``path`` with the metadata of format ``key`` embedded."""
    Path(path).write_bytes(with_metadata(model, embedded_metadata(key, ctx.weights_sha256,
                                                                       ctx.labels, ctx.dataset)))


def with_metadata(model: bytes, entries: dict[str, str]) -> bytes:
    """Append a metadata entry named METADATA_NAME (a JSON object) to a TFLite flatbuffer."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    obj = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    buffer = schema.BufferT()
    buffer.data = list(json.dumps(entries, sort_keys=True).encode())
    obj.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(obj.buffers) - 1
    obj.metadata = [m for m in (obj.metadata or []) if m.name != METADATA_NAME.encode()] + [entry]
    builder = flatbuffers.Builder(len(model) + 4096)
    builder.Finish(obj.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def read_metadata(model: bytes) -> dict[str, str]:
    """The METADATA_NAME entry of a TFLite flatbuffer as a dict ({} when absent)."""
    from tensorflow.lite.python import schema_py_generated as schema

    root = schema.Model.GetRootAsModel(model, 0)
    for i in range(root.MetadataLength()):
        meta = root.Metadata(i)
        if meta.Name() == METADATA_NAME.encode():
            data = root.Buffers(meta.Buffer()).DataAsNumpy()
            return json.loads(bytes(data).decode())
    return {}
