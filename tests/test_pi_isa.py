"""pi-check's x86 instruction-set targets and its informational run, without the long emulation:
which targets run which files on how many images, the rule against Keras and the float file on
synthetic outputs, and a backend that refuses a CPU model.

The emulated runs themselves are `make pi-check`; the one test that starts qemu here stops at
Python's first instruction (a CPU model too old to start it).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from checks.pi import check, isa
from checks.pi.compare import Row, as_information
from checks.pi.report import isa_table, table
from checks.pi.targets import CLASSIFIER_KEYS, TARGETS, X86_64, Target, get_targets
from common.formats import get_format

REPO = Path(__file__).resolve().parents[1]
ENTRIES = [{"key": "tflite_int8", "format": "tflite", "precision": "int8"},
           {"key": "tflite_float32", "format": "tflite", "precision": "float32"},
           {"key": "onnx_float32", "format": "onnx", "precision": "float32"},
           {"key": "onnx_int8", "format": "onnx", "precision": "int8"},
           {"key": "tflite_float16", "format": "tflite", "precision": "float16"},
           {"key": "tflite_dynamic", "format": "tflite", "precision": "dynamic-int8"},
           {"key": "gate_tflite_int8", "format": "tflite", "precision": "int8"},
           {"key": "gate_tflite_float32", "format": "tflite", "precision": "float32"}]


def _plan(tmp_path: Path, full: int = 10_000, subset: int = 1_000) -> check.Plan:
    counts = {e["key"]: full if e["key"] == "tflite_int8" else subset for e in ENTRIES}
    return check.Plan(tmp_path, tmp_path / "manifest.json", ENTRIES, counts, 100,
                      tmp_path / "images.npy", None, tmp_path / "gate.npy")


# ------------------------------------------------------------------ the table and the selection

def test_x86_models_and_the_max_run_are_rows_of_the_one_table_selected_like_the_pis():
    assert [t.key for t in get_targets("x86-nehalem,arm64-max,x86-haswell")] == [
        "x86-haswell", "x86-nehalem", "arm64-max"]  # table order
    assert {t.key for t in get_targets("all")} == {t.key for t in TARGETS}
    haswell, nehalem = get_targets("x86-haswell,x86-nehalem")
    assert haswell.isa and nehalem.isa and haswell.stack is X86_64
    assert (haswell.cpu, nehalem.cpu) == ("Haswell", "Nehalem")
    assert "AVX512F" in haswell.lacks and "AVX2" in nehalem.lacks
    assert not any(t.isa or t.informational for t in get_targets("pi4-arm64,pi5-arm64,pi4-armhf"))
    (max_run,) = get_targets("arm64-max")
    assert max_run.informational and max_run.cpu == "max" and not max_run.isa


def test_x86_models_run_every_classifier_file_int8_on_the_full_set(tmp_path):
    plan = _plan(tmp_path)
    pi4, haswell, max_run = get_targets("x86-haswell,arm64-max,pi4-arm64")  # table order
    assert check.target_counts(haswell, plan) == {"tflite_int8": 10_000, "tflite_float32": 1_000,
                                                  "onnx_float32": 1_000, "onnx_int8": 10_000,
                                                  "tflite_float16": 1_000,
                                                  "tflite_dynamic": 1_000}
    assert check.target_counts(max_run, plan) == {"tflite_int8": 1_000}
    assert check.target_counts(pi4, plan) == plan.counts  # the Pis run as they did
    jobs = check.plan_jobs(plan, "x86-haswell", lambda e: "onnxruntime"
                           if e["format"] == "onnx" else None, check.target_counts(haswell, plan))
    assert [(j["key"], j["count"]) for j in jobs] == [("onnx_float32", 1_000),
                                                      ("onnx_int8", 10_000)]


def test_the_host_runs_every_classifier_file_on_the_full_set_only_when_an_x86_model_is_asked(
        tmp_path):
    plan = _plan(tmp_path)
    with_x86 = check.host_counts(get_targets("pi4-arm64,x86-nehalem"), plan)
    assert all(with_x86[k] == 10_000 for k in CLASSIFIER_KEYS)
    assert with_x86["gate_tflite_int8"] == 1_000
    assert check.host_counts(get_targets("pi4-arm64,arm64-max"), plan) == plan.counts


def test_float_partner_is_the_float_file_of_the_same_format_not_the_gates():
    assert isa.float_partner("tflite_int8", ENTRIES) == "tflite_float32"
    assert isa.float_partner("onnx_int8", ENTRIES) == "onnx_float32"
    assert isa.float_partner("onnx_float32", ENTRIES) is None


def test_the_host_cpu_names_its_vector_extensions(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Some Xeon\nflags\t\t: fpu sse4_2 avx avx2 fma "
                    "avx512f avx512_vnni\n\nprocessor\t: 1\nmodel name\t: Some Xeon\n"
                    "flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni\n")
    assert isa.host_cpu(info) == {"model": "Some Xeon",
                                  "flags": ["sse4_2", "avx", "avx2", "fma", "avx512f",
                                            "avx512_vnni"]}
    assert isa.host_cpu(tmp_path / "missing") == {"model": "unknown", "flags": []}


# ------------------------------------------------------------------ the rule, on synthetic outputs

def _keras(truth: np.ndarray, wrong: int, seed: int = 0) -> np.ndarray:
    """Keras-like probabilities: confident, right except on the first ``wrong`` images."""
    rng = np.random.default_rng(seed)
    winners = truth.copy()
    winners[:wrong] = (truth[:wrong] + 1) % 10
    probs = rng.uniform(0, 0.01, (len(truth), 10)).astype(np.float32)
    probs[np.arange(len(truth)), winners] = 0.95
    return probs / probs.sum(1, keepdims=True)


def _row(key: str, n: int = 10_000, required: int = 10_000) -> isa.IsaRow:
    row = isa.IsaRow("x86-haswell", key, "onnxruntime", n, required)
    row.float_key = isa.float_partner(key, ENTRIES)
    return row


@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 10, 10_000)


def test_an_int8_file_answering_like_keras_and_its_float_file_passes_with_its_figures(truth):
    keras = _keras(truth, wrong=130)
    labels = keras.argmax(1).copy()
    labels[200:210] = (labels[200:210] + 3) % 10  # 10 of 10,000 answered otherwise: 99.9%
    row = isa.judge(_row("onnx_int8"), labels, keras, keras, truth,
                    get_format("onnx_int8").tolerance, float_labels=keras.argmax(1))
    assert row.ok, row.failures
    assert row.keras_accuracy == pytest.approx(0.987)
    assert row.accuracy == pytest.approx(0.986)
    assert row.keras_agreement == row.float_agreement == pytest.approx(0.999)


def test_thirty_changed_answers_fail_against_the_float_file_though_accuracy_is_within(truth):
    # what int8 ONNX does on an AVX2-only CPU: 98.60% against 98.74%, within 0.3 pt of Keras
    keras = _keras(truth, wrong=126)
    labels = keras.argmax(1).copy()
    labels[:16] = (truth[:16] + 2) % 10       # 16 wrong answers changed to other wrong digits
    labels[500:514] = (truth[500:514] + 1) % 10  # 14 right answers made wrong
    float_labels = keras.argmax(1)
    row = isa.judge(_row("onnx_int8"), labels, keras, keras, truth,
                    get_format("onnx_int8").tolerance, float_labels=float_labels)
    assert (row.accuracy, row.keras_accuracy) == (pytest.approx(0.986), pytest.approx(0.9874))
    assert row.float_agreement == pytest.approx(0.997)
    assert row.failures == ["top-1 agreement with onnx_float32 99.70% is below 99.90% (30 of "
                            "10,000 images answered differently)"]


def test_accuracy_beyond_the_format_tables_bound_fails(truth):
    keras = _keras(truth, wrong=100)
    labels = truth.copy()
    labels[:60] = (truth[:60] + 2) % 10  # 0.6 pt below Keras (98.4% against 99.0%)
    row = isa.judge(_row("tflite_int8"), labels, keras, keras, truth,
                    get_format("tflite_int8").tolerance)
    assert row.accuracy == pytest.approx(0.994) or row.accuracy < row.keras_accuracy
    assert any("accuracy differs from Keras" in f for f in row.failures), row.failures


def test_a_float_file_drifting_from_keras_fails_on_its_probability_bound(truth):
    keras = _keras(truth, wrong=100)
    drifted = keras.copy()
    drifted[:, 0] += 1e-3  # same digits, probabilities 1e-3 off
    row = isa.judge(_row("onnx_float32", required=1_000), keras.argmax(1), drifted, keras,
                    truth, get_format("onnx_float32").tolerance)
    assert row.keras_agreement == 1.0 and row.float_agreement is None
    assert row.failures == ["max |Δprob| vs Keras 1.00e-03 is above 1e-05"]


def test_an_int8_file_on_fewer_images_than_the_full_set_does_not_pass(truth):
    keras = _keras(truth, wrong=100)
    row = isa.judge(_row("tflite_int8", n=1_000), keras.argmax(1), keras, keras, truth,
                    get_format("tflite_int8").tolerance, float_labels=keras.argmax(1))
    assert row.failures == ["ran 1,000 images, needs 10,000"]


# ------------------------------------------------------------------ refusals and information

def test_a_refused_cpu_model_is_unsupported_with_one_line_and_does_not_fail():
    row = isa.unsupported(_row("onnx_int8"), "x86-old onnxruntime under qemu: worker died with "
                          "signal 4: qemu: uncaught target signal 4 (Illegal instruction)\n")
    assert row.ok and row.unsupported.endswith("(Illegal instruction)")
    assert "unsupported: x86-old onnxruntime" in isa_table([row])


def test_an_informational_run_is_shown_with_what_it_found_and_never_fails():
    row = Row("arm64-max", "tflite_int8", "litert", 1000, 1000, agreement=0.113,
              failures=["predicted digit differs from the host on 887 of 1000 images"])
    as_information(row)
    assert row.ok and row.notes == ["predicted digit differs from the host on 887 of 1000 images"]
    assert "| information only |" in table([row])


def test_a_cpu_model_too_old_for_the_host_python_is_reported_unsupported(tmp_path):
    """core2duo lacks SSE4.2: the host's Python dies of SIGILL under qemu at its first
    instructions, before any model loads, which is how a backend refusing a CPU looks."""
    qemu, python = shutil.which(X86_64.qemu), REPO / X86_64.python
    if qemu is None or not python.is_file():
        pytest.skip(f"needs {X86_64.qemu} and {X86_64.python} (make runtime-venvs); CI has both")
    old = Target("x86-core2", "Core 2", X86_64, "core2duo", "SSSE3, no SSE4.2", "",
                 only=("tflite_int8", "onnx_int8"))
    plan = _plan(tmp_path, full=10, subset=10)
    rows, info = check.run_target(old, None, {}, {e["key"]: 10 for e in ENTRIES}, tmp_path,
                                   plan)
    assert [(r.key, r.backend) for r in rows] == [("tflite_int8", "litert"),
                                                  ("onnx_int8", "onnxruntime")]
    for row in rows:
        assert row.ok and row.unsupported and "\n" not in row.unsupported
        assert "signal 4" in row.unsupported or "Illegal instruction" in row.unsupported
    assert info["isa"] and info["cpu"] == "core2duo"


def _save(path: Path, labels: np.ndarray, probs: np.ndarray) -> str:
    np.savez(path, labels=labels, probabilities=probs, raw=probs)
    return str(path)


def test_the_host_and_each_cpu_model_are_judged_the_int8_file_against_the_hosts_float_answers(
        tmp_path, truth):
    """On the emulated model the float file ran on a subset: its int8 file is compared with the
    host's float answers on the full set, and 30 changed answers fail only that model."""
    keras = _keras(truth, wrong=126)
    right = keras.argmax(1)
    changed = right.copy()
    changed[:16] = (truth[:16] + 2) % 10
    changed[500:514] = (truth[500:514] + 1) % 10
    entries = [e for e in ENTRIES if e["format"] == "onnx"]
    plan = check.Plan(tmp_path, tmp_path / "manifest.json", entries,
                      {"onnx_float32": 1_000, "onnx_int8": 1_000, "tflite_int8": 10_000}, 100,
                      tmp_path / "images.npy", None)
    host = {"onnxruntime": {
        k: {"backend": "onnxruntime", "images": 10_000, "seconds": 1.0,
            "out": _save(tmp_path / f"host-onnxruntime.{k}.npz", right, keras)}
        for k in ("onnx_float32", "onnx_int8")}}
    _save(tmp_path / "x86-haswell.onnx_int8.npz", changed, keras)
    _save(tmp_path / "x86-haswell.onnx_float32.npz", right[:1_000], keras[:1_000])
    rows = [isa.IsaRow("x86-haswell", "onnx_float32", "onnxruntime", 1_000, 1_000),
            isa.IsaRow("x86-haswell", "onnx_int8", "onnxruntime", 10_000, 10_000)]
    cfg = check.CheckConfig()
    judged = check.compare_isa(get_targets("x86-haswell"), rows, host, plan, keras, truth, cfg)
    assert [(r.target, r.key) for r in judged] == [
        ("host", "onnx_float32"), ("host", "onnx_int8"),
        ("x86-haswell", "onnx_float32"), ("x86-haswell", "onnx_int8")]
    host_f, host_i, model_f, model_i = judged
    assert host_f.ok and host_i.ok and model_f.ok, [r.failures for r in judged]
    assert host_i.float_agreement == 1.0 and model_f.host_agreement == 1.0
    assert model_i.float_agreement == pytest.approx(0.997)
    assert model_i.host_agreement == pytest.approx(0.997)
    assert not model_i.ok and "99.70% is below 99.90%" in model_i.failures[0]
    assert model_i.notes == ["onnx_float32's answers from the host (onnxruntime): it ran on "
                             "1,000 images on x86-haswell"]


def test_each_target_self_tests_the_snapshot_in_its_worker(test_artifacts, tmp_path):
    # the snapshot carries the golden set, the worker's self_test job runs it, and a backend
    # whose self-test could not run is a failed row, not a missing one
    import sys

    from checks.worker import run_once

    manifest, _ = check.snapshot_models(test_artifacts, tmp_path / "models")
    assert (manifest.parent / "golden.npz").is_file()
    answer = run_once(sys.executable, {"job": "self_test", "manifest": str(manifest),
                                       "backend": "litert"})
    rows = check.self_test_rows({"litert": answer})
    assert {r["key"] for r in rows} >= {"tflite_int8", "tflite_float32"}
    assert all(r["passed"] and r["backend"] == "litert" for r in rows), rows
    assert not any(r["key"].startswith("onnx") for r in rows)  # litert runs no ONNX file
    failed = check.self_test_rows({"tflite-runtime": {"ok": False, "error": "crashed"}})
    assert failed[0]["passed"] is False and "crashed" in failed[0]["summary"]
