"""The export stage: four verified formats, an honest manifest, clear errors, nothing half-written.

Most tests share the small trained+exported folder from checks/testmodels.py (built once, cached).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from common.formats import FORMATS, GATE_KEYS, KEYS, READER_KEYS, get_format, parse_formats

ROOT = Path(__file__).resolve().parents[1]
BATCH = 1000


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _snapshot(folder: Path) -> dict[str, str]:
    return {p.name: _sha256(p) for p in sorted(folder.iterdir()) if p.is_file()}


def copy_artifacts(src: Path, dst: Path) -> Path:
    """A copy of an artifacts folder's files (the shared one is read-only)."""
    dst.mkdir()
    for item in src.iterdir():
        if item.is_file() and not item.name.startswith("."):
            shutil.copy2(item, dst / item.name)
    return dst


def _run_from_manifest(folder: Path, entry: dict, x: np.ndarray) -> np.ndarray:
    """Run one file using only what the manifest says (input name, dtype, quantization)."""
    path, inp, out = folder / entry["path"], entry["input"], entry["output"]
    if inp["quantization"]:
        q = inp["quantization"]
        x = np.clip(np.round(x / q["scale"]) + q["zero_point"], -128, 127).astype(inp["dtype"])
    if entry["format"] == "tflite":
        from ai_edge_litert.interpreter import Interpreter

        it = Interpreter(model_path=str(path))
        index = it.get_input_details()[0]["index"]
        batches = []
        for i in range(0, len(x), BATCH):
            it.resize_tensor_input(index, x[i: i + BATCH].shape)
            it.allocate_tensors()
            it.set_tensor(index, x[i: i + BATCH])
            it.invoke()
            batches.append(it.get_tensor(it.get_output_details()[0]["index"]))
    else:
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        batches = [session.run([out["name"]], {inp["name"]: x[i: i + BATCH]})[0]
                   for i in range(0, len(x), BATCH)]
    y = np.concatenate(batches)
    if out["quantization"]:
        q = out["quantization"]
        y = (y.astype(np.float32) - q["zero_point"]) * q["scale"]
    return y


@pytest.fixture(scope="module")
def reference(test_artifacts):
    """(manifest, x_test, y_test, Keras probabilities) for the shared artifacts."""
    from common.data import load_mnist, to_model_input
    from common.tf import import_tensorflow

    import_tensorflow()
    import keras

    mnist = load_mnist()
    x_test = to_model_input(mnist.x_test)
    model = keras.saving.load_model(test_artifacts / "model.keras", compile=False)
    probs = model.predict(x_test, batch_size=BATCH, verbose=0)
    manifest = json.loads((test_artifacts / "manifest.json").read_text())
    return manifest, x_test, mnist.y_test, probs


# --- the format table --------------------------------------------------------------------------

def test_format_table_order_names_and_tolerances():
    assert KEYS == ("tflite_int8", "tflite_float32", "onnx_float32", "onnx_int8",
                    "tflite_float16", "tflite_dynamic")
    assert [f.filename for f in FORMATS] == [
        "model_int8.tflite", "model_float32.tflite", "model.onnx", "model_int8.onnx",
        "model_float16.tflite", "model_dynamic.tflite"]
    assert all(callable(f.load_converter()) for f in FORMATS)
    float_rule = get_format("onnx_float32").tolerance
    assert float_rule.against_keras("onnx_float32", 0.0, 0.9996, 0.0) == []
    assert "top-1 agreement" in float_rule.against_keras("onnx_float32", 0.0, 0.9994, 0.0)[0]
    assert "accuracy differs" in get_format("tflite_int8").tolerance.against_keras(
        "tflite_int8", -0.006, 0.996, 0.1)[0]
    assert [f.key for f in parse_formats("onnx_int8, tflite_int8")] == ["tflite_int8", "onnx_int8"]
    with pytest.raises(ValueError, match="choose from"):
        parse_formats("tflite,onnx")


def test_int8_export_rule_is_the_parity_rule(test_artifacts):
    """int8 files: within 0.3 pt of Keras's accuracy either way and >= 99.5% top-1 agreement."""
    rule = get_format("tflite_int8").tolerance
    assert rule.against_keras("tflite_int8", -0.002, 0.996, 0.3) == []
    # the former export rule ("lose at most 0.5 pt") let each of these through
    assert "beyond ±0.3 pt" in rule.against_keras("tflite_int8", -0.004, 0.996, 0.3)[0]
    assert "beyond ±0.3 pt" in rule.against_keras("tflite_int8", +0.004, 0.996, 0.3)[0]
    assert "below 99.50%" in rule.against_keras("tflite_int8", 0.0, 0.994, 0.3)[0]
    # the manifest states the rule each file was held to: the format table's, the one parity applies
    manifest = json.loads((test_artifacts / "manifest.json").read_text())
    for entry in manifest["files"]:
        assert entry["verification"]["tolerance"] == get_format(entry["key"]).tolerance.rule()


def test_calibration_sample_is_seeded_and_drawn_from_the_given_images():
    from export.context import calibration_sample

    images = np.arange(1000 * 4, dtype=np.uint16).reshape(1000, 2, 2)
    a, b = calibration_sample(images, 50, seed=1), calibration_sample(images, 50, seed=1)
    assert np.array_equal(a, b) and len(a) == 50
    assert not np.array_equal(a, calibration_sample(images, 50, seed=2))
    assert len({int(img[0, 0]) for img in a}) == 50  # no image twice
    assert len(calibration_sample(images, 5000, seed=1)) == 1000


# --- the exported files -------------------------------------------------------------------------

def test_all_four_formats_exported_in_preference_order(test_artifacts):
    manifest = json.loads((test_artifacts / "manifest.json").read_text())
    assert [e["key"] for e in manifest["files"]] == list(KEYS)
    for entry in manifest["files"]:
        fmt = get_format(entry["key"])
        assert (entry["path"], entry["format"], entry["precision"]) == (fmt.filename, fmt.kind,
                                                                       fmt.precision)
        assert (test_artifacts / entry["path"]).is_file()
        assert entry["input"]["shape"] == [None, 28, 28, 1]
        assert entry["output"]["shape"] == [None, 10] and entry["output"]["activation"] == "softmax"
    onnx_inputs = {e["input"]["name"] for e in manifest["files"] if e["format"] == "onnx"}
    assert onnx_inputs == {"input"}


@pytest.mark.parametrize("key", KEYS)
def test_file_agrees_with_keras_within_tolerance(test_artifacts, reference, key):
    manifest, x_test, y_test, keras_probs = reference
    entry = next(e for e in manifest["files"] if e["key"] == key)
    probs = _run_from_manifest(test_artifacts, entry, x_test)
    predicted, expected = probs.argmax(axis=1), keras_probs.argmax(axis=1)
    accuracy = float(np.mean(predicted == y_test))
    agreement = float(np.mean(predicted == expected))
    keras_accuracy = float(np.mean(expected == y_test))
    # the format table's rule, float files' max |Δprobability| included (1e-4 TFLite, 1e-5 ONNX)
    max_prob_diff = float(np.max(np.abs(probs - keras_probs)))
    assert get_format(key).tolerance.against_keras(key, accuracy - keras_accuracy, agreement,
                                                   max_prob_diff) == []
    # the manifest reports what a reader measures
    assert entry["verification"]["accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert entry["verification"]["agreement_with_keras"] == pytest.approx(agreement, abs=1e-6)
    assert manifest["keras_reference"]["test_accuracy"] == pytest.approx(keras_accuracy, abs=1e-6)


def test_int8_tflite_is_full_integer(test_artifacts):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(test_artifacts / "model_int8.tflite"))
    assert it.get_input_details()[0]["dtype"] == np.int8
    assert it.get_output_details()[0]["dtype"] == np.int8
    dtypes = {np.dtype(t["dtype"]).name for t in it.get_tensor_details()}
    assert "float32" not in dtypes, dtypes


def test_int8_files_are_about_four_times_smaller(test_artifacts):
    size = {p: (test_artifacts / p).stat().st_size for p in
            ("model_int8.tflite", "model_float32.tflite", "model.onnx", "model_int8.onnx")}
    assert 3.5 < size["model_float32.tflite"] / size["model_int8.tflite"] < 4.5
    assert 3.5 < size["model.onnx"] / size["model_int8.onnx"] < 4.5


def test_manifest_hashes_sizes_and_provenance_match(test_artifacts):
    from export.manifest import SCHEMA_VERSION

    manifest = json.loads((test_artifacts / "manifest.json").read_text())
    assert manifest["schema_version"] == SCHEMA_VERSION
    for entry in manifest["files"]:
        path = test_artifacts / entry["path"]
        assert entry["size"] == path.stat().st_size
        assert entry["sha256"] == _sha256(path)
    model = test_artifacts / "model.keras"
    from common.artifacts import weights_sha256

    assert manifest["source_model"] == {"path": "model.keras", "sha256": _sha256(model),
                                        "size": model.stat().st_size,
                                        "weights_sha256": weights_sha256(model)}
    metrics = json.loads((test_artifacts / "metrics.json").read_text())
    assert manifest["training"] == metrics
    assert manifest["labels"] == [str(d) for d in range(10)]
    assert manifest["preprocessing"]["scale"].startswith("value / 255")
    for lib in ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "ai_edge_litert", "numpy"):
        assert manifest["versions"][lib], lib
    onnx_int8 = next(e for e in manifest["files"] if e["key"] == "onnx_int8")
    assert onnx_int8["input"]["dtype"] == "float32"  # the I/O choice is recorded


def test_files_carry_labels_and_preprocessing(test_artifacts):
    import onnx

    from export.contract import LABELS, PREPROCESSING
    from export.to_tflite import read_metadata

    manifest = json.loads((test_artifacts / "manifest.json").read_text())
    for entry in manifest["files"]:
        path = test_artifacts / entry["path"]
        if entry["format"] == "onnx":
            meta = {p.key: p.value for p in onnx.load(path).metadata_props}
        else:
            meta = read_metadata(path.read_bytes())
        assert json.loads(meta["mnist_edge.labels"]) == list(LABELS)
        assert json.loads(meta["mnist_edge.preprocessing"]) == PREPROCESSING
        assert meta["mnist_edge.format"] == entry["key"]
        assert (meta["mnist_edge.source_weights_sha256"]
                == manifest["source_model"]["weights_sha256"])


# --- errors -------------------------------------------------------------------------------------

def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "runtime" / "src")])}
    return subprocess.run([sys.executable, "-m", "export", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def _truncated(src: Path, dst: Path) -> None:
    dst.write_bytes(src.read_bytes()[: src.stat().st_size // 2])


def _bad_weights(src: Path, dst: Path) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, b"not hdf5" if name.endswith(".h5") else zin.read(name))


@pytest.mark.parametrize("damage, expected", [
    (None, "not found"),
    (_truncated, "not a .keras zip archive"),
    (_bad_weights, "not a readable Keras model"),
])
def test_missing_or_corrupt_model_gives_one_line_error(tmp_path, test_artifacts, damage, expected):
    folder = tmp_path / "artifacts"
    folder.mkdir()
    if damage is not None:
        damage(test_artifacts / "model.keras", folder / "model.keras")
    done = _cli("--artifacts", str(folder))
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0
    assert len(lines) == 1, done.stderr
    assert expected in lines[0] and "model.keras" in lines[0]
    assert "Traceback" not in done.stderr
    assert not (folder / "manifest.json").exists()


def test_unknown_format_is_rejected_before_any_work(tmp_path):
    done = _cli("--artifacts", str(tmp_path), "--formats", "tflite_int8,coreml")
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "python -m export: error: --formats: unknown format 'coreml'; choose from "
        + ", ".join(KEYS + READER_KEYS + GATE_KEYS)]


# --- nothing half-written -----------------------------------------------------------------------

@pytest.mark.parametrize("broken, formats, exc", [
    ("export.to_onnx:convert_int8", "all", RuntimeError),                          # after 3 files
    ("export.to_tflite:convert_float32", "tflite_int8,tflite_float32", KeyboardInterrupt),
])
def test_interrupted_export_leaves_previous_set_untouched(tmp_path, monkeypatch, test_artifacts,
                                                          broken, formats, exc):
    from common.artifacts import problems, read_export
    from export.export import ExportConfig, run

    folder = copy_artifacts(test_artifacts, tmp_path / "artifacts")
    before = _snapshot(folder)

    def crash(ctx, path):
        Path(path).write_bytes(b"half-written")
        raise exc("simulated failure inside a converter")

    module, _, name = broken.partition(":")
    monkeypatch.setattr(f"{module}.{name}", crash)
    with pytest.raises(exc):
        run(ExportConfig(artifacts=str(folder), formats=formats), log=lambda line: None)
    assert _snapshot(folder) == before
    assert problems(read_export(folder)) == []
    assert [p.name for p in tmp_path.iterdir()] == ["artifacts"]  # no staging leftovers


def test_failed_verification_publishes_only_passing_files(tmp_path, monkeypatch, test_artifacts,
                                                          capsys):
    from dataclasses import replace

    from common import formats
    from common.artifacts import problems, read_export
    from export.__main__ import main

    folder = copy_artifacts(test_artifacts, tmp_path / "artifacts")
    impossible = replace(formats.FLOAT_TFLITE, min_agreement=1.01)  # every float file now fails
    monkeypatch.setattr(formats, "FORMATS",
                        tuple(replace(f, tolerance=impossible) if f.precision == "float32"
                              else f for f in formats.FORMATS))
    code = main(["--artifacts", str(folder), "--formats", "tflite_int8,tflite_float32"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and "tflite_float32 on litert: top-1 agreement with Keras" in err[0]
    manifest = json.loads((folder / "manifest.json").read_text())
    # the rejected file is gone; the others (re-exported or carried over from the same model) stay
    assert [e["key"] for e in manifest["files"]] == ["tflite_int8", "onnx_float32", "onnx_int8",
                                                    "tflite_float16", "tflite_dynamic"]
    assert not (folder / "model_float32.tflite").exists()
    assert problems(read_export(folder)) == []


def test_too_little_free_space_is_refused_before_converting(tmp_path, monkeypatch, test_artifacts):
    import shutil

    from export.export import ExportConfig, run

    folder = copy_artifacts(test_artifacts, tmp_path / "artifacts")
    before = _snapshot(folder)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(
        10**9, 10**9 - 2_000_000, 2_000_000))
    with pytest.raises(ValueError, match=r"2\.0 MB free on its disk, exporting tflite_int8, "
                                         r"onnx_int8 needs about [0-9.]+ MB"):
        run(ExportConfig(artifacts=str(folder), formats="tflite_int8,onnx_int8"),
            log=lambda line: None)
    assert _snapshot(folder) == before


def test_golden_set_holds_clear_keras_answers_and_the_table_rules(test_artifacts, reference):
    # the self-test's inputs: MNIST test digits Keras reads right with a clear margin, every
    # listed file's outputs on them, and each file's bound from the format table
    from common.formats import all_formats, get_format
    from export.golden import MIN_MARGIN, PER_DIGIT

    manifest, _, y_test, probs = reference
    section = manifest["golden"]
    path = test_artifacts / section["path"]
    assert section["sha256"] == _sha256(path) and section["size"] == path.stat().st_size
    with np.load(path) as npz:
        idx = npz["test_indices"]
        assert np.array_equal(npz["labels"], y_test[idx])
        assert np.bincount(npz["labels"], minlength=10).tolist() == [PER_DIGIT] * 10
        top2 = np.sort(probs[idx], axis=1)[:, -2:]
        assert (probs[idx].argmax(axis=1) == y_test[idx]).all()
        assert (top2[:, 1] - top2[:, 0] >= MIN_MARGIN - 1e-6).all()
        for entry in manifest["files"]:  # the outputs: the file's answers are the labels
            assert (npz[f"out_{entry['key']}"].argmax(axis=1) == y_test[idx]).all()
        for text, strip in zip(npz["texts"], npz["strips"], strict=True):
            assert text and strip.shape[0] == 32
    for key, rule in section["files"].items():
        tol = get_format(key, all_formats()).tolerance
        assert rule["max_diff"] == tol.golden_max_diff and rule["unit"] == tol.device_unit


def test_int8_onnx_is_unsigned_on_both_sides(test_artifacts):
    # U8U8: signed weights make onnxruntime's u8s8 products saturate on x86 without VNNI
    import onnx

    model = onnx.load(test_artifacts / "model_int8.onnx")
    init = {t.name: t.data_type for t in model.graph.initializer}
    quant = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    zero_points = [init[n.input[2]] for n in quant if len(n.input) > 2 and n.input[2] in init]
    weights = [init[n.input[0]] for n in quant
               if n.op_type == "DequantizeLinear" and n.input[0] in init]
    assert zero_points and set(zero_points) <= {onnx.TensorProto.UINT8, onnx.TensorProto.INT32}
    assert onnx.TensorProto.UINT8 in weights and onnx.TensorProto.INT8 not in weights
