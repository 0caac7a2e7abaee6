"""The format table: the runtime's rows and the build side's extension agree, and a new format is
one row that export, the manifest, the runtime, freshness, publishing and parity all pick up."""

from __future__ import annotations

import json
import shutil
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from common import formats as build
from common.formats import PROBABILITY, ExportFormat, Tolerance, parse_formats
from mnist_edge import formats as device


def convert_float16(ctx, path: Path) -> None:
    """The added row's converter: float16 weights, float32 input and output."""
    from common.tf import import_tensorflow, quiet
    from export.contract import embedded_metadata
    from export.to_tflite import with_metadata

    tf = import_tensorflow()
    with quiet(ctx.verbose):
        converter = tf.lite.TFLiteConverter.from_keras_model(ctx.model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
        model = converter.convert()
    Path(path).write_bytes(with_metadata(model, embedded_metadata(FLOAT16.key, ctx.weights_sha256)))


# float16 weights round each weight to 11 significant bits: a looser bound on probabilities
FLOAT16_RULE = Tolerance(min_agreement=0.999, max_accuracy_diff=None, max_prob_diff=1e-2,
                         cross_min_agreement=0.999, device_max_diff=1e-2, device_unit=PROBABILITY)
FLOAT16 = ExportFormat.of(
    device.Format("tflite_float16", "model_float16.tflite", "tflite", "float16", "float32"),
    f"{__name__}:convert_float16", "float16 weights, float32 input and output", FLOAT16_RULE)


@pytest.fixture
def with_float16(monkeypatch):
    """The table with one more row: the runtime's half and its build extension."""
    monkeypatch.setattr(device, "FORMATS", (*device.FORMATS, FLOAT16))
    monkeypatch.setattr(build, "FORMATS", (*build.FORMATS, FLOAT16))
    return FLOAT16


def test_build_rows_extend_the_runtime_rows_in_its_order():
    assert [f.key for f in build.FORMATS] == [f.key for f in device.FORMATS]
    for made, row in zip(build.FORMATS, device.FORMATS, strict=True):
        assert {f.name: getattr(made, f.name) for f in fields(device.Format)} == vars(row)
        assert device.kind_of_suffix(Path(row.filename).suffix) == row.kind


def test_each_kind_lists_every_backend_that_runs_it():
    from mnist_edge.backends import BACKENDS

    for kind in device.KINDS:
        assert set(kind.backends) == {n for n, b in BACKENDS.items() if b.format == kind.name}
    assert device.backend_order("tflite")[0] == "litert"  # the maintained interpreter first
    with pytest.raises(ValueError, match="unknown model format 'coreml'; choose from tflite, onnx"):
        device.backend_order("coreml")


def test_a_new_row_is_a_format_the_flags_and_publishing_know(with_float16):
    from common.publish import allowed_names

    assert parse_formats("tflite_float16, tflite_int8") == (build.FORMATS[0], FLOAT16)
    assert parse_formats("all")[-1] is FLOAT16
    with pytest.raises(ValueError, match=r"choose from .*onnx_int8, tflite_float16$"):
        parse_formats("coreml")
    assert "model_float16.tflite" in allowed_names()


def test_a_new_row_is_exported_verified_listed_and_run(with_float16, test_artifacts, tmp_path):
    from checks.parity.pairs import locate, plan
    from common.artifacts import is_fresh, problems, read_export
    from common.data import load_mnist
    from export.export import ExportConfig, run
    from mnist_edge import Classifier
    from mnist_edge.backends import BACKENDS
    from mnist_edge.manifest import read_manifest

    folder = tmp_path / "artifacts"
    shutil.copytree(test_artifacts, folder, ignore=shutil.ignore_patterns(".*"))
    before = [e["key"] for e in json.loads((folder / "manifest.json").read_text())["files"]]
    assert not is_fresh(folder)  # the table now asks for a file the export lacks

    result = run(ExportConfig(artifacts=str(folder), formats="tflite_float16"),
                 log=lambda line: None)
    assert result.failures == []
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [e["key"] for e in manifest["files"]] == [*before, "tflite_float16"]
    entry = manifest["files"][-1]
    assert (entry["path"], entry["format"], entry["precision"], entry["input"]["dtype"]) == (
        "model_float16.tflite", "tflite", "float16", "float32")
    assert is_fresh(folder) and problems(read_export(folder)) == []

    mnist = load_mnist()
    clf = Classifier.load(folder, key="tflite_float16")
    accuracy = float(np.mean(clf.predict(mnist.x_test).labels == mnist.y_test))
    assert clf.backend == "litert" and clf.entry.precision == "float16"
    assert abs(accuracy - manifest["keras_reference"]["test_accuracy"]) < 0.005

    wheres = [locate(b, Path("/nonexistent/python")) for b in BACKENDS]
    pairs = {(p.key, p.backend) for p in plan(read_manifest(folder).files, wheres)}
    assert ("tflite_float16", "litert") in pairs
