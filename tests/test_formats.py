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


def convert_half(ctx, path: Path) -> None:
    """The added row's converter: float16 weights, float32 input and output (any new row would
    do; this one converts as the table's float16 row does, under its own key and file name)."""
    from common.tf import import_tensorflow, quiet
    from export.contract import embedded_metadata
    from export.to_tflite import with_metadata

    tf = import_tensorflow()
    with quiet(ctx.verbose):
        converter = tf.lite.TFLiteConverter.from_keras_model(ctx.model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
        model = converter.convert()
    Path(path).write_bytes(with_metadata(model, embedded_metadata(HALF.key, ctx.weights_sha256)))


# float16 weights round each weight to 11 significant bits: a looser bound on probabilities
HALF_RULE = Tolerance(min_agreement=0.999, max_accuracy_diff=None, max_prob_diff=1e-2,
                         cross_min_agreement=0.999, device_max_diff=1e-2, device_unit=PROBABILITY)
HALF = ExportFormat.of(
    device.Format("tflite_half", "model_half.tflite", "tflite", "float16", "float32"),
    f"{__name__}:convert_half", "float16 weights, float32 input and output", HALF_RULE)


@pytest.fixture
def with_half(monkeypatch):
    """The table with one more row: the runtime's half and its build extension."""
    monkeypatch.setattr(device, "FORMATS", (*device.FORMATS, HALF))
    monkeypatch.setattr(build, "FORMATS", (*build.FORMATS, HALF))
    return HALF


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


def test_a_new_row_is_a_format_the_flags_and_publishing_know(with_half):
    from common.publish import allowed_names

    assert parse_formats("tflite_half, tflite_int8") == (build.FORMATS[0], HALF)
    assert parse_formats("all")[-1] is HALF
    with pytest.raises(ValueError, match=r"choose from .*tflite_dynamic, tflite_half$"):
        parse_formats("coreml")
    assert "model_half.tflite" in allowed_names()


def test_a_new_row_is_exported_verified_listed_and_run(with_half, test_artifacts, tmp_path):
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

    result = run(ExportConfig(artifacts=str(folder), formats="tflite_half"),
                 log=lambda line: None)
    assert result.failures == []
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [e["key"] for e in manifest["files"]] == [*before, "tflite_half"]
    entry = manifest["files"][-1]
    assert (entry["path"], entry["format"], entry["precision"], entry["input"]["dtype"]) == (
        "model_half.tflite", "tflite", "float16", "float32")
    assert is_fresh(folder) and problems(read_export(folder)) == []

    mnist = load_mnist()
    clf = Classifier.load(folder, key="tflite_half")
    accuracy = float(np.mean(clf.predict(mnist.x_test).labels == mnist.y_test))
    assert clf.backend == "litert" and clf.entry.precision == "float16"
    assert abs(accuracy - manifest["keras_reference"]["test_accuracy"]) < 0.005

    wheres = [locate(b, Path("/nonexistent/python")) for b in BACKENDS]
    pairs = {(p.key, p.backend) for p in plan(read_manifest(folder).files, wheres)}
    assert ("tflite_half", "litert") in pairs
