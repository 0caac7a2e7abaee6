"""pi-check's own logic, without emulation: what passes, what fails and why, which wheels a Pi gets.

The emulated runs themselves are `make pi-check` (minutes, root on first use), not part of the
suite.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from checks.pi import packages
from checks.pi.__main__ import main
from checks.pi.check import snapshot_models
from checks.pi.common import PiCheckError
from checks.pi.compare import Row, compare
from checks.pi.targets import ARM64, ARMHF, TARGETS
from common.formats import all_formats, get_format

REPO = Path(__file__).resolve().parents[1]
INT8 = {"key": "tflite_int8", "precision": "int8",
        "output": {"quantization": {"scale": 1 / 256, "zero_point": -128}}}
FLOAT = {"key": "onnx_float32", "precision": "float32", "output": {"quantization": None}}


def _outputs(raw: np.ndarray) -> dict:
    probs = raw.astype(np.float32)
    if raw.dtype == np.int8:
        probs = (raw.astype(np.float32) + 128) / 256
    return {"labels": probs.argmax(1), "probabilities": probs, "raw": raw}


def _int8_outputs(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    raw = np.full((n, 10), -128, dtype=np.int8)
    raw[np.arange(n), rng.integers(0, 10, n)] = 100  # a clear winner per image
    return raw


def test_device_within_a_few_steps_and_same_digits_passes():
    host = _int8_outputs(200)
    device = host.copy()
    device[:, 0] = np.clip(device[:, 0].astype(int) + 2, -128, 127).astype(np.int8)
    row = compare(Row("pi4-arm64", "tflite_int8", "litert", 200, 200), INT8, _outputs(device),
                  _outputs(host), _outputs(host)["labels"], get_format("tflite_int8").tolerance)
    assert row.ok, row.failures
    assert row.agreement == 1.0 and row.max_diff == 2


def test_one_changed_digit_fails_and_says_how_many():
    host = _int8_outputs(500)
    device = host.copy()
    device[7] = np.roll(device[7], 1)  # another digit wins on image 7
    row = compare(Row("pi5-arm64", "tflite_int8", "litert", 500, 500), INT8, _outputs(device),
                  _outputs(host), _outputs(host)["labels"], get_format("tflite_int8").tolerance)
    assert not row.ok
    assert any("differs from the host on 1 of 500 images" in f for f in row.failures)
    assert row.agreement == pytest.approx(499 / 500)


def test_outputs_drifting_beyond_tolerance_fail_even_with_same_digits():
    host = np.random.default_rng(1).dirichlet(np.ones(10), 100).astype(np.float32)
    device = host + 5e-4  # argmax unchanged, probabilities off by 5e-4
    row = compare(Row("pi4-arm64", "onnx_float32", "onnxruntime", 100, 100), FLOAT,
                  _outputs(device), _outputs(host), host.argmax(1),
                  get_format("onnx_float32").tolerance)
    assert row.agreement == 1.0
    assert any("differ from the host by 0.0005 probability" in f for f in row.failures)


def test_a_reduced_run_does_not_pass_as_proof():
    host = _int8_outputs(100)
    row = compare(Row("pi4-armhf", "tflite_int8", "tflite-runtime", 100, 10_000), INT8,
                  _outputs(host), _outputs(host), _outputs(host)["labels"],
                  get_format("tflite_int8").tolerance)
    assert row.failures == ["ran 100 images, needs 10000"]


def test_arm64_gets_the_hosts_pinned_versions():
    pins = packages.host_pins(REPO / "requirements.txt")
    litert = packages.requirements_for(ARM64.backends[0], ARM64, REPO / "runtime", pins)
    assert pins["ai-edge-litert"] in litert and pins["numpy"] in litert
    assert not any(r.lower().startswith(("tensorflow", "keras")) for r in litert)


def test_armhf_takes_numpy_and_pillow_from_debian_and_tflite_runtime_from_pypi():
    pins = packages.host_pins(REPO / "requirements.txt")
    reqs = packages.requirements_for(ARMHF.backends[0], ARMHF, REPO / "runtime", pins)
    assert reqs == ["tflite-runtime==2.14.0"]
    assert {"python3-numpy", "python3-pil"} <= set(ARMHF.debs)


def test_tensorflow_in_a_device_site_is_found(tmp_path):
    (tmp_path / "numpy").mkdir()
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "keras-3.15.1.dist-info").mkdir()
    assert packages.tensorflow_in(tmp_path) == ["keras-3.15.1.dist-info", "tensorflow"]


def _manifest(folder: Path, data: bytes, sha: str | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_int8.tflite").write_bytes(data)
    entry = {"key": "tflite_int8", "path": "model_int8.tflite", "format": "tflite",
             "precision": "int8", "size": len(data),
             "sha256": sha or hashlib.sha256(data).hexdigest()}
    (folder / "manifest.json").write_text(json.dumps({"schema_version": 1, "files": [entry]}))


def test_models_are_copied_so_a_re_export_cannot_mix_two_models(tmp_path):
    _manifest(tmp_path / "art", b"TFL3 model bytes")
    manifest, files = snapshot_models(tmp_path / "art", tmp_path / "copy")
    shutil.rmtree(tmp_path / "art")
    assert (manifest.parent / "model_int8.tflite").read_bytes() == b"TFL3 model bytes"
    assert [f["key"] for f in files] == ["tflite_int8"]


def test_files_not_matching_the_manifest_are_refused(tmp_path):
    _manifest(tmp_path / "art", b"new bytes", sha="0" * 64)
    with pytest.raises(PiCheckError, match="do not match their sha256"):
        snapshot_models(tmp_path / "art", tmp_path / "copy", tries=1)


def test_cli_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["--targets", "pi9", "--artifacts", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["pi-check: error: unknown target pi9; choose from arm64-max, pi4-arm64, "
                   "pi4-armhf, pi5-arm64, x86-haswell, x86-nehalem or all"]
    assert main(["--artifacts", str(tmp_path / "nothing"), "--data", "/nonexistent.npz"]) == 2
    assert "pi-check: error:" in capsys.readouterr().err


def test_prepare_needs_no_export_and_builds_nothing_for_the_x86_models(tmp_path, capsys):
    # the x86 CPU models run the host's own device venv: no root to build, nothing downloaded;
    # with no export anywhere, the check itself would refuse to start
    cache = tmp_path / "cache"
    assert main(["--prepare", "--targets", "x86-haswell,x86-nehalem", "--cache", str(cache),
                 "--artifacts", str(tmp_path / "no-export")]) == 0
    assert f"prepared {cache}: everything was cached" in capsys.readouterr().err
    assert not cache.exists() or not any(cache.iterdir())
    assert main(["--prepare", "--targets", "pi9"]) == 2  # a wrong target is still one line
    (tmp_path / "a-file").write_text("")
    capsys.readouterr()
    assert main(["--prepare", "--cache", str(tmp_path / "a-file")]) == 2
    assert capsys.readouterr().err.strip() == f"pi-check: error: --cache {tmp_path / 'a-file'} " \
                                              "is not a folder"


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.key)
def test_qemu_has_the_cpu_model_each_target_names(target):
    qemu = shutil.which(target.stack.qemu)
    if qemu is None:
        pytest.skip(f"{target.stack.qemu} not installed (make pi-check installs it; .ci/run "
                    "installs it before the tests, so this runs in CI)")
    models = subprocess.run([qemu, "-cpu", "help"], capture_output=True, text=True).stdout.split()
    assert target.cpu in models


# ------------------------------------------------------------------ the photo path's comparison

def _photo_answers(numbers: list[str], singles: list[list]) -> dict:
    digits = [[[10 * i, 5, 10 * i + 8, 30, int(c), 0.9] for i, c in enumerate(n)] for n in numbers]
    return {"numbers": [{"number": n, "digits": d} for n, d in zip(numbers, digits, strict=True)],
            "singles": singles, "seconds": 1.0}


def _photo_set():
    from checks.pi.photos import PhotoSet

    return PhotoSet(numbers=["n0.png", "n1.png"], singles=["d0.png", "d1.png"],
                    truths=["12", "345"], labels=[7, 1])


def test_photo_answers_that_match_the_host_pass_with_their_accuracy():
    from checks.pi.photos import compare_photos

    host = _photo_answers(["12", "340"], [[7, None], [2, None]])
    row = compare_photos("pi5", "litert", host, host, _photo_set())
    assert row.failures == [] and row.agreement == 1.0
    assert row.accuracy == row.host_accuracy == 2 / 4  # "12" and the 7 are right


def test_a_photo_answered_differently_from_the_host_fails():
    from checks.pi.photos import compare_photos

    host = _photo_answers(["12", "345"], [[7, None], [1, None]])
    device = _photo_answers(["12", "346"], [[7, None], [1, None]])
    row = compare_photos("pi5", "litert", device, host, _photo_set())
    assert row.agreement == 3 / 4
    assert row.failures == ["photo path: 1 of 4 photos answered differently from the host"]


def test_a_photo_that_fails_on_both_sides_is_a_failure_not_an_agreement():
    from checks.pi.photos import compare_photos

    both = _photo_answers(["12", "345"], [[7, None], [None, "cannot decode"]])
    row = compare_photos("pi5", "litert", both, both, _photo_set())
    assert row.agreement == 1.0
    assert len(row.failures) == 2
    assert all("1 of 2 digit photos gave an error" in f and "d1.png: cannot decode" in f
               for f in row.failures)


# ------------------------------------------------------------------ the "no digit" gate
GATE_INT8 = {"key": "gate_tflite_int8", "precision": "int8",
             "output": {"quantization": {"scale": 1 / 256, "zero_point": -128}}}


def test_a_gate_file_deciding_like_the_host_within_its_steps_passes():
    from checks.pi.compare import compare_gate

    labels = np.r_[np.ones(300, np.int64), np.zeros(200, np.int64)]
    host = np.r_[np.full(300, 0.9), np.full(200, 0.05)]
    host[0], host[300] = 0.1, 0.6   # one digit refused, one non-digit let through
    device = host + 2 / 256          # two int8 output steps above, no decision changes
    row = compare_gate(Row("pi4-arm64", "gate_tflite_int8", "litert", 500, 500), GATE_INT8,
                       device, host, labels, 0.293, get_format("gate_tflite_int8",
                                                               all_formats()).tolerance)
    assert row.ok, row.failures
    assert row.agreement == 1.0 and row.max_diff == pytest.approx(2)
    assert row.accuracy == row.host_accuracy == 498 / 500


def test_a_gate_decision_changed_on_the_device_fails_and_says_how_many():
    from checks.pi.compare import compare_gate

    labels = np.ones(100, np.int64)
    host = np.full(100, 0.30)
    device = host.copy()
    device[5] = 0.29                 # one step under the threshold 0.293: refused on the device
    row = compare_gate(Row("pi5-arm64", "gate_tflite_int8", "litert", 100, 100), GATE_INT8,
                       device, host, labels, 0.293, get_format("gate_tflite_int8",
                                                               all_formats()).tolerance)
    assert row.failures == ["the gate decides unlike the host on 1 of 100 images"]
    assert row.accuracy == 0.99 and row.host_accuracy == 1.0


def test_non_digit_photos_count_as_right_when_refused_and_must_be_refused_like_the_host():
    from dataclasses import replace

    from checks.pi.photos import compare_photos

    photos = replace(_photo_set(), nondigits=("x0.png", "x1.png"))
    host = {**_photo_answers(["12", "345"], [[7, None, False], [1, None, False]]),
            "nondigits": [[None, None, True], [4, None, False]]}
    device = {**host, "nondigits": [[None, None, True], [None, None, True]]}

    same = compare_photos("pi5", "litert", host, host, photos)
    differs = compare_photos("pi5", "litert", device, host, photos)

    assert same.failures == [] and same.images == 6
    assert same.accuracy == 5 / 6      # every digit right, one of two non-digits refused
    assert differs.failures == ["photo path: 1 of 6 photos answered differently from the host"]
    assert differs.accuracy == 1.0


def test_every_job_names_its_manifest_file_and_backend_whether_classifier_or_gate(tmp_path):
    from checks.pi import check

    entries = [{"key": "tflite_int8", "format": "tflite"}, {"key": "onnx_int8", "format": "onnx"},
               {"key": "gate_tflite_int8", "format": "tflite"}]
    plan = check.Plan(tmp_path, tmp_path / "manifest.json", entries,
                      {"tflite_int8": 10, "onnx_int8": 5, "gate_tflite_int8": 8}, 32,
                      tmp_path / "images.npy", None, tmp_path / "gate.npy")
    jobs = check.plan_jobs(plan, "host-litert",
                           lambda e: "litert" if e["format"] == "tflite" else None)
    assert [(j["job"], j["key"], j["backend"]) for j in jobs] == [
        ("predict", "tflite_int8", "litert"), ("gate_scores", "gate_tflite_int8", "litert")]
    for j in jobs:
        assert j["manifest"] == str(tmp_path / "manifest.json") and j["batch"] == 32
        assert j["out"].endswith(f"host-litert.{j['key']}.npz")
    assert jobs[0]["count"] == 10 and jobs[1]["images"] == str(tmp_path / "gate.npy")
