"""The "no digit" gate through export: four verified files listed and hashed in the manifest's
``gate`` section with the threshold training calibrated, each answering like the Keras gate on
MNIST's test digits and held-out generated non-digits when run by its own interpreter, refusals
of broken files, and files carried over by a later export.

One gate is trained briefly (a session fixture), published beside the shared test models and
exported once; the tests read copies of that folder.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from common.formats import GATE_FORMATS, GATE_KEYS
from tests.conftest import local_mnist


@pytest.fixture(scope="session")
def gate_folder(test_artifacts, tmp_path_factory):
    """The shared test models' folder with a briefly trained gate.keras, its gate files exported;
    (folder, the Keras gate, gate_metrics.json, the export's result)."""
    from common.artifacts import GATE_FILE, GATE_METRICS_FILE, GATE_TRAIN_FILES
    from common.tf import load_keras_model
    from export.export import ExportConfig, run
    from train.gate_train import GateConfig
    from train.gate_train import run as train

    data = local_mnist()
    if data is None:
        pytest.skip("no MNIST to train a gate on")
    base = tmp_path_factory.mktemp("gate")
    trained = base / "trained"
    train(GateConfig(data=data, out=str(trained), epochs=1, nondigits=1500,
                     validation_nondigits=300, workers=1))
    folder = base / "artifacts"
    shutil.copytree(test_artifacts, folder, ignore=shutil.ignore_patterns(".*"))
    for name in GATE_TRAIN_FILES:
        shutil.copy(trained / name, folder / name)
    result = run(ExportConfig(artifacts=str(folder), data=data, formats=",".join(GATE_KEYS)),
                 log=lambda _: None)
    model = load_keras_model(folder / GATE_FILE, ((28, 28, 1), (2,)))
    return folder, model, json.loads((folder / GATE_METRICS_FILE).read_text()), result


@pytest.fixture(scope="session")
def truth(gate_folder):
    """The verification set (MNIST's test digits, 2000 held-out non-digits), its labels, and the
    Keras gate's digit probability of each image."""
    from common import nondigits
    from common.data import load_mnist

    _, model, metrics, _ = gate_folder
    images, labels = nondigits.verification_set(load_mnist(local_mnist()).x_test, 42)
    x = images[..., np.newaxis].astype(np.float32) / np.float32(255)
    keras = model.predict(x, batch_size=1000, verbose=0)[:, metrics["classes"].index("digit")]
    return images, labels, keras


def _copy(folder, tmp_path):
    copy = tmp_path / "artifacts"
    shutil.copytree(folder, copy)
    return copy


def _digit_probabilities(path, images: np.ndarray, index: int) -> np.ndarray:
    """The file's digit probability of each image, run by its interpreter directly (not through
    the code under test): litert for .tflite, onnxruntime for .onnx; as the runtime documents its
    probabilities, the outputs dequantized and each row normalised to sum to 1."""
    out = _outputs(path, images)
    out = np.clip(out, 0.0, None)
    return (out / out.sum(axis=1, keepdims=True))[:, index]


def _outputs(path, images: np.ndarray) -> np.ndarray:
    x = images[..., np.newaxis].astype(np.float32) / np.float32(255)
    if path.suffix == ".onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: x})[0]
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(inp["index"], list(x.shape))
    interpreter.allocate_tensors()
    scale, zero = inp["quantization"]
    if inp["dtype"] == np.int8:
        x = np.clip(np.rint(x / scale) + zero, -128, 127).astype(np.int8)
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    raw = interpreter.get_tensor(out["index"]).astype(np.float32)
    scale, zero = out["quantization"]
    return (raw - zero) * scale if out["dtype"] == np.int8 else raw


def test_every_gate_format_is_exported_verified_and_listed(gate_folder):
    from common.artifacts import is_fresh, problems, read_export, weights_sha256

    folder, _, metrics, result = gate_folder
    assert not result.failures, result.failures
    manifest = read_export(folder)
    assert manifest is not None and manifest.gate is not None
    assert [e.key for e in manifest.gate.files] == list(GATE_KEYS)
    assert [e.path.name for e in manifest.gate.files] == [f.filename for f in GATE_FORMATS]
    assert problems(manifest) == [] and is_fresh(folder)  # sizes and sha256 of every file match
    gate = manifest.gate
    assert gate.threshold == metrics["threshold"] and list(gate.classes) == metrics["classes"]
    assert gate.calibration == metrics["calibration"]
    assert gate.data["source_model"]["weights_sha256"] == weights_sha256(folder / "gate.keras")
    # the classifier's and the reader's files are still listed first
    assert [e.key for e in manifest.files] == ["tflite_int8", "tflite_float32", "onnx_float32",
                                               "onnx_int8", "tflite_float16", "tflite_dynamic"]


def test_the_keras_reference_is_the_keras_gate_on_the_verification_set(gate_folder, truth):
    folder, _, metrics, _ = gate_folder
    _, labels, keras = truth
    ref = json.loads((folder / "manifest.json").read_text())["gate"]["keras_reference"]
    refused = keras < metrics["threshold"]
    assert labels.sum() == 10_000 and (labels == 0).sum() == 2000
    assert ref["test_false_refusals"] == pytest.approx(refused[labels == 1].mean(), abs=1e-6)
    assert ref["heldout_refusals"] == pytest.approx(refused[labels == 0].mean(), abs=1e-6)
    assert ref["accuracy"] == pytest.approx(np.mean(refused == (labels == 0)), abs=1e-6)


@pytest.mark.parametrize("key", GATE_KEYS)
def test_each_gate_file_answers_like_the_keras_gate(gate_folder, truth, key):
    from common.formats import get_format

    folder, _, metrics, _ = gate_folder
    images, labels, keras = truth
    fmt = get_format(key, GATE_FORMATS)
    raw = json.loads((folder / "manifest.json").read_text())["gate"]
    entry = next(e for e in raw["files"] if e["key"] == key)
    probs = _digit_probabilities(folder / fmt.filename, images, metrics["classes"].index("digit"))
    refused, keras_refused = probs < raw["threshold"], keras < raw["threshold"]
    rule = fmt.tolerance
    accuracy = float(np.mean(refused == (labels == 0)))
    assert np.mean(refused == keras_refused) >= rule.min_agreement
    if rule.max_prob_diff is not None:
        assert np.abs(probs - keras).max() <= rule.max_prob_diff
    if rule.max_accuracy_diff is not None:
        assert abs(accuracy - raw["keras_reference"]["accuracy"]) <= rule.max_accuracy_diff
    # what the manifest records is what the file does
    figures = entry["verification"]
    assert (figures["test_images"], figures["nondigits"]) == (10_000, 2000)
    assert figures["accuracy"] == pytest.approx(accuracy, abs=2e-4)
    assert figures["false_refusals"] == pytest.approx(refused[labels == 1].mean(), abs=2e-4)
    assert figures["refusals"] == pytest.approx(refused[labels == 0].mean(), abs=1e-3)
    assert figures["tolerance"] == rule.rule()
    assert entry["input"]["dtype"] == fmt.input_dtype and entry["output"]["shape"] == [None, 2]


def test_gate_files_carry_the_gates_classes(gate_folder):
    import onnx

    from export.to_tflite import read_metadata

    folder, _, metrics, _ = gate_folder
    for fmt in GATE_FORMATS:
        path = folder / fmt.filename
        meta = ({p.key: p.value for p in onnx.load(path).metadata_props} if fmt.kind == "onnx"
                else read_metadata(path.read_bytes()))
        assert meta["mnist_edge.format"] == fmt.key
        assert json.loads(meta["mnist_edge.labels"]) == metrics["classes"]
        assert meta["mnist_edge.source_weights_sha256"] == metrics["weights_sha256"]


def test_a_tampered_gate_file_is_refused(gate_folder, tmp_path):
    from common.artifacts import is_fresh
    from mnist_edge.manifest import verify_all

    copy = _copy(gate_folder[0], tmp_path)
    target = copy / "gate_int8.tflite"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    failed = [(entry.key, problem) for entry, problem in verify_all(copy) if problem is not None]
    assert [key for key, _ in failed] == ["gate_tflite_int8"] and "sha256" in failed[0][1]
    assert not is_fresh(copy)


def test_a_file_failing_verification_is_left_out(gate_folder, tmp_path, monkeypatch):
    from dataclasses import replace

    from common import formats
    from export.export import ExportConfig, run

    copy = _copy(gate_folder[0], tmp_path)
    impossible = replace(formats.FLOAT_TFLITE, min_agreement=1.01)  # every float file now fails
    monkeypatch.setattr(formats, "GATE_FORMATS",
                        tuple(replace(f, tolerance=impossible) if f.precision == "float32"
                              else f for f in formats.GATE_FORMATS))
    result = run(ExportConfig(artifacts=str(copy), data=local_mnist(),
                              formats="gate_tflite_float32,gate_onnx_int8"), log=lambda _: None)
    assert len(result.failures) == 1
    assert "gate_tflite_float32 on litert: top-1 agreement with Keras" in result.failures[0]
    raw = json.loads((copy / "manifest.json").read_text())
    # the rejected file is gone; the others (re-exported or carried over) stay
    assert [e["key"] for e in raw["gate"]["files"]] == ["gate_tflite_int8", "gate_onnx_float32",
                                                        "gate_onnx_int8"]
    assert not (copy / "gate_float32.tflite").exists()


def test_a_later_export_carries_the_gate_over(gate_folder, tmp_path):
    from export.export import ExportConfig, run

    before = json.loads((gate_folder[0] / "manifest.json").read_text())["gate"]
    copy = _copy(gate_folder[0], tmp_path)
    run(ExportConfig(artifacts=str(copy), data=local_mnist(), formats="tflite_float32"),
        log=lambda _: None)
    assert json.loads((copy / "manifest.json").read_text())["gate"] == before
    run(ExportConfig(artifacts=str(copy), data=local_mnist(), formats="gate_onnx_int8"),
        log=lambda _: None)
    after = json.loads((copy / "manifest.json").read_text())["gate"]
    assert [e["key"] for e in after["files"]] == list(GATE_KEYS)
    assert after["files"][:3] == before["files"][:3]  # untouched files kept as they were
    assert after["keras_reference"] == before["keras_reference"]


def test_gate_keys_without_a_gate_are_refused(test_artifacts, tmp_path):
    from export.export import ExportConfig, ExportError, run

    folder = tmp_path / "artifacts"
    shutil.copytree(test_artifacts, folder, ignore=shutil.ignore_patterns(".*", "gate*"))
    with pytest.raises(ExportError, match="gate.keras not found"):
        run(ExportConfig(artifacts=str(folder), formats="gate_tflite_int8"))


def test_without_a_gate_the_manifest_has_no_gate_section(gate_folder, tmp_path):
    from export.export import ExportConfig, run

    copy = _copy(gate_folder[0], tmp_path)
    (copy / "gate.keras").unlink()
    run(ExportConfig(artifacts=str(copy), data=local_mnist(), formats="tflite_float32"),
        log=lambda _: None)
    raw = json.loads((copy / "manifest.json").read_text())
    assert "gate" not in raw and "gate_calibration" not in raw["export"]
    assert not [f.filename for f in GATE_FORMATS if (copy / f.filename).exists()]


def test_gate_metrics_of_another_gate_are_refused(gate_folder, tmp_path):
    from export.export import ExportConfig, ExportError, run

    copy = _copy(gate_folder[0], tmp_path)
    path = copy / "gate_metrics.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "weights_sha256": "0" * 64}))
    with pytest.raises(ExportError, match="gate_metrics.json: describes another gate"):
        run(ExportConfig(artifacts=str(copy), formats="gate_tflite_int8"))
