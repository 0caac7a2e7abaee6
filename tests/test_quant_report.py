"""The quantization report: it lists each quantized layer of an int8 file, and it blames the layer
whose int8 weights were damaged, not the layers before it.

A small CNN is built and trained briefly here, converted by the export's own converters; the
damage is put into one convolution's int8 weights of each int8 file, so the truth of where it
is comes from the test, not from the report.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import local_mnist

DAMAGED = "conv_b"   # the layer whose int8 weights the test alters
LAYERS = ("conv_a", "conv_b", "dense", "out")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(folder with model_int8.tflite, model_float32.tflite, model.onnx, model_int8.onnx of a
    small trained CNN and its model.keras, 100 calibration images)."""
    if local_mnist() is None:
        pytest.skip("no local MNIST ($MNIST_DATA) to train the small model on")
    from common.data import load_mnist, to_model_input
    from common.tf import import_tensorflow
    from export import to_onnx, to_tflite
    from export.context import ExportContext

    import_tensorflow()
    import keras

    keras.utils.set_random_seed(0)
    mnist = load_mnist(local_mnist())
    x, y = to_model_input(mnist.x_train[:6000]), mnist.y_train[:6000]
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(8, 3, activation="relu", name="conv_a"),
        keras.layers.Conv2D(16, 3, strides=2, activation="relu", name="conv_b"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(32, activation="relu", name="dense"),
        keras.layers.Dense(10, activation="softmax", name="out"),
    ], name="tiny")
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=128, epochs=1, verbose=0)
    ctx = ExportContext(model=model, calibration=x[:100], opset=17, source_sha256="-",
                        weights_sha256="-")
    folder = tmp_path_factory.mktemp("tiny")
    model.save(folder / "model.keras")
    to_tflite.convert_int8(ctx, folder / "model_int8.tflite")
    to_tflite.convert_float32(ctx, folder / "model_float32.tflite")
    to_onnx.convert_float32(ctx, folder / "model.onnx")
    to_onnx.convert_int8(ctx, folder / "model_int8.onnx")
    return folder, x[100:200]


def _damage_tflite(src: Path, dst: Path, layer: str) -> None:
    """``src`` with the int8 weights of the convolution making ``layer``'s output halved."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(src.read_bytes(), 0))
    graph = model.subgraphs[0]
    op = next(op for op in graph.operators
              if _is(graph.tensors[op.outputs[0]].name.decode(), layer))
    buffer = model.buffers[graph.tensors[op.inputs[1]].buffer]
    weights = np.frombuffer(bytes(bytearray(buffer.data)), np.int8)
    buffer.data = list((weights // 2).astype(np.int8).tobytes())
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    dst.write_bytes(bytes(builder.Output()))


def _damage_onnx(src: Path, dst: Path, index: int) -> None:
    """``src`` with the int8 weights of its ``index``-th Conv halved."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(src)
    producers = {o: n for n in model.graph.node for o in n.output}
    conv = [n for n in model.graph.node if n.op_type == "Conv"][index]
    weight_name = producers[conv.input[1]].input[0]  # the DequantizeLinear's int8 input
    init = next(i for i in model.graph.initializer if i.name == weight_name)
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) // 2, weight_name))
    onnx.save(model, dst)


def _is(name: str, layer: str) -> bool:
    """Whether a reported tensor is the output of Keras layer ``layer`` (Keras 3 names it
    ``layer_1`` inside the converted graph)."""
    return re.match(rf"([^;]*/)?{layer}(_\d+)?/", name) is not None


def _row(report, layer: str):
    return next(x for x in report.layers if _is(x.name, layer))


@pytest.mark.parametrize("suffix", [".tflite", ".onnx"])
def test_report_lists_each_quantized_layer(tiny, suffix):
    from export.quant_report import compare

    folder, images = tiny
    int8, flt = ((folder / "model_int8.tflite", folder / "model_float32.tflite")
                 if suffix == ".tflite" else (folder / "model_int8.onnx", folder / "model.onnx"))
    report = compare(int8, flt, images)
    names = [x.name for x in report.layers]
    for layer in LAYERS:
        assert any(_is(name, layer) for name in names), (layer, names)
    assert report.images == len(images)
    # an undamaged int8 file: the output is close to the float file's (error power below 1%)
    assert all(x.sqnr_db > 20 for x in report.layers), [(x.name, x.sqnr_db) for x in report.layers]


@pytest.mark.parametrize("suffix", [".tflite", ".onnx"])
def test_damaged_layer_is_the_worst(tiny, tmp_path, suffix):
    from export.quant_report import compare

    folder, images = tiny
    if suffix == ".tflite":
        src, flt = folder / "model_int8.tflite", folder / "model_float32.tflite"
        _damage_tflite(src, tmp_path / src.name, DAMAGED)
    else:
        src, flt = folder / "model_int8.onnx", folder / "model.onnx"
        _damage_onnx(src, tmp_path / src.name, LAYERS.index(DAMAGED))
    clean, damaged = compare(src, flt, images), compare(tmp_path / src.name, flt, images)
    assert damaged.worst is _row(damaged, DAMAGED), [(x.name, x.added_db)
                                                    for x in damaged.layers]
    assert _row(damaged, DAMAGED).sqnr_db < _row(clean, DAMAGED).sqnr_db - 3
    # the layers before it compute the same values as in the undamaged file
    before = damaged.layers.index(_row(damaged, DAMAGED))
    assert before >= 2  # the input and conv_a
    for ok, same in zip(clean.layers[:before], damaged.layers[:before], strict=True):
        assert (ok.name, ok.sqnr_db, ok.max_abs_error) == (same.name, same.sqnr_db,
                                                           same.max_abs_error)


def test_report_is_written_beside_the_files(tiny):
    from export import quant_report

    folder, images = tiny
    report = quant_report.build(folder, {"classifier": images}, log=lambda line: None)
    assert [f.key for f in report.files] == ["tflite_int8", "onnx_int8"]
    quant_report.write(report, folder)
    data = json.loads((folder / "quantization.json").read_text())
    assert [f["key"] for f in data["files"]] == ["tflite_int8", "onnx_int8"]
    for entry in data["files"]:
        assert entry["worst_layer"] in {x["name"] for x in entry["layers"]}
    text = (folder / "quantization.md").read_text()
    assert "model_int8.tflite" in text and "**worst**" in text
    assert "<- worst" in report.table()


def _cli(*args: str):
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "runtime" / "src"),
                                                         str(root)])}
    return subprocess.run([sys.executable, "-m", "export.quant_report", *args], cwd=root,
                          env=env, capture_output=True, text=True, timeout=120)


def test_command_line_errors_are_one_line(tmp_path):
    shown = _cli("--help")
    assert shown.returncode == 0 and "--int8" in shown.stdout and "--artifacts" in shown.stdout
    missing = _cli("--artifacts", str(tmp_path))
    assert missing.returncode == 1
    assert missing.stderr.strip().count("\n") == 0 and "export first" in missing.stderr


def test_export_reports_the_int8_file_it_rejects(tiny, tmp_path, monkeypatch, capsys):
    """An int8 file that fails verification is not published, and the report still covers it."""
    import shutil
    from dataclasses import replace

    from common import formats
    from export.__main__ import main

    folder = tmp_path / "artifacts"
    folder.mkdir()
    shutil.copy(tiny[0] / "model.keras", folder)
    impossible = replace(formats.INT8, min_agreement=1.01)
    monkeypatch.setattr(formats, "FORMATS", tuple(
        replace(f, tolerance=impossible) if f.key == "tflite_int8" else f
        for f in formats.FORMATS))
    code = main(["--artifacts", str(folder), "--formats", "tflite_int8,tflite_float32",
                 "--calibration-samples", "100", "--data", str(local_mnist())])
    assert code == 1 and not (folder / "model_int8.tflite").exists()
    shown = capsys.readouterr()
    assert "tflite_int8 (rejected)" in shown.out
    assert len(shown.err.strip().splitlines()) == 1  # the rejection's line, no warnings
    data = json.loads((folder / "quantization.json").read_text())
    assert [(f["key"], f["rejected"]) for f in data["files"]] == [("tflite_int8", True)]
    assert "Verification rejected `model_int8.tflite`" in (folder / "quantization.md").read_text()
