"""Predictions through every installed backend: accuracy as exported, agreement, API contract."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import installed_backends

from mnist_edge import Classifier, Prediction
from mnist_edge.classifier import CHUNK

BACKENDS = installed_backends()


def _pairs(manifest):
    fmt = {"litert": "tflite", "tflite-runtime": "tflite", "tensorflow": "tflite",
           "onnxruntime": "onnx"}
    return [(f["key"], b) for f in manifest["files"] for b in BACKENDS if fmt[b] == f["format"]]


def test_some_backend_is_installed():
    assert BACKENDS, "no interpreter installed: pip install 'mnist-edge[litert]'"


def test_every_file_and_backend_keeps_the_keras_accuracy(artifacts, manifest, mnist_test):
    """Each file, run by each installed backend, scores what the Keras model scored (measured by
    Keras at export) within the format's rule: int8 within 0.3 point; float files agree with
    Keras on 99.95% of images, so within 0.05 point."""
    x, y = mnist_test
    pairs = _pairs(manifest)
    if not pairs:
        pytest.skip("no installed backend runs any exported file")
    keras_accuracy = manifest["keras_reference"]["test_accuracy"]
    labels = {}
    for key, backend in pairs:
        clf = Classifier.load(artifacts, backend=backend, key=key)
        assert (clf.backend, clf.entry.key) == (backend, key)
        pred = clf.predict(x)
        accuracy = float((pred.labels == y).mean())
        entry = next(f for f in manifest["files"] if f["key"] == key)
        bound = 0.003 if entry["precision"] == "int8" else 0.0005
        assert abs(accuracy - keras_accuracy) <= bound + 1e-9, (
            f"{key} via {backend}: accuracy {accuracy:.4f}, Keras {keras_accuracy:.4f}")
        labels[(key, backend)] = pred.labels
    for (key, backend), got in labels.items():
        # the same file gives the same answers through every interpreter (99.9%, the format
        # table's rule across backends)
        for (key2, backend2), other in labels.items():
            if key2 == key and backend2 != backend:
                assert (got == other).mean() >= 0.999, f"{key}: {backend} vs {backend2}"
    reference = next(iter(labels.values()))
    for (key, backend), got in labels.items():
        # each file agrees with Keras on at least 99.5% of images, so any two on at least 99%
        assert (got == reference).mean() >= 0.99, f"{key} via {backend} disagrees with the others"


@pytest.fixture(scope="module")
def clf(artifacts):
    return Classifier.load(artifacts)


def test_auto_load_picks_the_first_runnable_file_in_manifest_order(clf, manifest):
    runnable = {"tflite": any(b in BACKENDS for b in ("litert", "tflite-runtime", "tensorflow")),
                "onnx": "onnxruntime" in BACKENDS}
    first = next(f for f in manifest["files"] if runnable[f["format"]])
    assert clf.entry.key == first["key"]
    assert clf.path.name == first["path"] and clf.format == first["format"]
    assert clf.precision == first["precision"]


def test_probabilities_are_float32_rows_summing_to_one(clf, mnist_test):
    x, _ = mnist_test
    p = clf.predict(x[:300])
    assert isinstance(p, Prediction) and len(p) == 300
    assert p.labels.dtype == np.int64 and p.labels.shape == (300,)
    assert p.probabilities.dtype == np.float32 and p.probabilities.shape == (300, 10)
    np.testing.assert_allclose(p.probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert (p.probabilities >= 0).all()
    np.testing.assert_array_equal(p.probabilities.argmax(axis=1), p.labels)
    assert p.raw.dtype == clf.output_spec.dtype


def test_every_input_form_gives_the_same_answer(clf, mnist_test):
    x, _ = mnist_test
    x = x[:64]
    base = clf.predict(x)
    as_float = x.astype(np.float32) / np.float32(255)
    for form in (as_float, as_float[..., None], as_float.astype(np.float64), x[..., None],
                 x.astype(np.int64), list(x)):
        np.testing.assert_array_equal(clf.predict(form).raw, base.raw)
    for i in (0, 5):
        single = clf.predict(x[i])
        assert single.labels.shape == (1,)
        np.testing.assert_array_equal(single.raw[0], base.raw[i])
        np.testing.assert_array_equal(clf.predict(as_float[i][..., None]).raw[0], base.raw[i])


def test_large_batches_run_in_chunks_with_the_same_results(clf, mnist_test):
    x, _ = mnist_test
    n = 2 * CHUNK + 37  # two full chunks and a remainder
    whole = clf.predict(x[:n])
    parts = np.concatenate([clf.predict(x[i:min(i + 50, n)]).raw for i in range(0, n, 50)])
    np.testing.assert_array_equal(whole.raw, parts)
    np.testing.assert_array_equal(clf.predict(x[:3]).raw, whole.raw[:3])  # resizing back and forth
    assert len(clf.predict(x[:0])) == 0


def test_top_k_and_confidences(clf, mnist_test):
    x, _ = mnist_test
    p = clf.predict(x[:20])
    labels, probs = p.top_k(3)
    assert labels.shape == probs.shape == (20, 3)
    np.testing.assert_array_equal(labels[:, 0], p.labels)
    assert (np.diff(probs, axis=1) <= 0).all()
    np.testing.assert_allclose(p.confidences, probs[:, 0])


def test_one_classifier_is_safe_to_share_between_threads(clf, mnist_test):
    x, _ = mnist_test
    batches = [x[i * 37:(i + 1) * 37 + i] for i in range(8)]  # different sizes force resizes
    serial = [clf.predict(b).raw for b in batches]
    results, errors = {}, []

    def work(t):
        try:
            for _ in range(5):
                for i, b in enumerate(batches):
                    results[(t, i)] = clf.predict(b).raw
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for (_, i), raw in results.items():
        np.testing.assert_array_equal(raw, serial[i])


def test_standalone_model_files_load_without_a_manifest(artifacts, manifest, mnist_test):
    x, y = mnist_test
    for entry in manifest["files"]:
        fmt_backends = [b for b in BACKENDS if (b == "onnxruntime") == (entry["format"] == "onnx")]
        if not fmt_backends:
            continue
        clf = Classifier.load(artifacts / entry["path"], probe=True)  # tflite-runtime needs it
        assert clf.manifest is None and clf.format == entry["format"]
        assert clf.precision == entry["precision"]
        assert (clf.predict(x[:1000]).labels == y[:1000]).mean() > 0.9


def test_info_reports_specs_quantization_and_manifest(clf, manifest):
    info = clf.info()
    entry = next(f for f in manifest["files"] if f["key"] == clf.entry.key)
    assert info["sha256"] == entry["sha256"] and info["size"] == entry["size"]
    assert info["input"]["dtype"] == entry["input"]["dtype"]
    q = entry["input"]["quantization"]
    if q:
        assert info["input"]["quantization"]["zero_point"] == q["zero_point"]
        assert info["input"]["quantization"]["scale"] == pytest.approx(q["scale"])
    assert info["manifest"]["verified"] is True
