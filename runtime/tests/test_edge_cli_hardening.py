"""The mnist-edge command under hostile or careless use: ties, NaNs, odd file names, broken
output, out-of-range flags, an unwritable cache. One line on stderr, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mnist_edge import Classifier

EDGE = [sys.executable, "-m", "mnist_edge"]


def run(*args, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([*EDGE, *(a if isinstance(a, bytes) else str(a) for a in args)],
                          capture_output=True, env=env, timeout=300, **kwargs)
    stderr = done.stderr if isinstance(done.stderr, str) else done.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr, stderr
    return done


def lines(text: str) -> list[str]:
    return text.strip().splitlines()


@pytest.fixture(scope="module")
def x_test_npy(tmp_path_factory, mnist_test) -> Path:
    path = tmp_path_factory.mktemp("hardening") / "x_test.npy"
    np.save(path, mnist_test[0])
    return path


# ------------------------------------------------------------------------------------ 1. ties
def test_predict_labels_and_top_k_follow_the_api_on_every_test_image(artifacts, mnist_test,
                                                                     x_test_npy):
    x, _ = mnist_test
    done = run("predict", artifacts, x_test_npy, "--json", "--top-k", "3", text=True)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    clf = Classifier.load(artifacts)
    pred = clf.predict(x, refuse=clf.gate is not None)  # the CLI refuses as the API does
    answered = ~pred.refused
    assert [r["label"] for r in rows] == [int(v) if ok else None for v, ok in
                                          zip(pred.labels, answered, strict=True)]  # ties: lowest
    assert [r.get("no_digit") for r in rows] == pred.reasons
    order, _ = pred.top_k(3)
    assert [[d for d, _ in r["top_k"]] for r, ok in zip(rows, answered, strict=True) if ok] == \
        order[answered].tolist()


# ------------------------------------------------------------------------------------ 2. NaN
def test_a_nan_fails_only_its_own_image(artifacts, mnist_test, tmp_path):
    x = mnist_test[0][:5000].astype(np.float32) / 255
    x[4500, 14, 14] = np.nan
    path = tmp_path / "nan.npy"
    np.save(path, x)
    done = run("predict", artifacts, path, text=True)
    assert done.returncode == 1
    names = [line.split("\t")[0] for line in done.stdout.splitlines()]
    assert names == [f"{path}[{i}]" for i in range(5000) if i != 4500]
    errors = lines(done.stderr)
    assert len(errors) == 2, errors
    assert errors[0].startswith(f"mnist-edge: {path}[4500]: ") and "NaN" in errors[0]
    assert errors[1] == "mnist-edge: 1 of 5000 inputs failed"


# ------------------------------------------------------------------------- 3. non-UTF-8 names
def test_a_file_name_that_is_not_utf8_is_printed_and_later_inputs_answered(artifacts, mnist_test,
                                                                           tmp_path):
    from PIL import Image

    x, y = mnist_test
    folder = os.fsencode(tmp_path)
    odd = os.path.join(folder, b"caf\xe9.png")
    Image.fromarray(x[0]).save(odd)
    blank = os.path.join(folder, b"\xe9mpty.png")
    with open(blank, "wb"):
        pass
    Image.fromarray(x[1]).save(tmp_path / "ok.png")
    # what Python picks under a UTF-8 locale such as en_US.UTF-8 (C.UTF-8 gets surrogateescape)
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    env.pop("PYTHONUTF8", None)
    done = run("predict", artifacts, odd, blank, tmp_path / "ok.png", env=env)
    assert done.returncode == 1, done.stderr
    out = done.stdout.decode("utf-8").splitlines()
    assert len(out) == 2
    assert out[0].split("\t")[:2] == [str(tmp_path / "caf\\udce9.png"), str(y[0])]
    assert out[1].split("\t")[:2] == [str(tmp_path / "ok.png"), str(y[1])]
    errors = lines(done.stderr.decode("utf-8"))
    assert len(errors) == 2 and "\\udce9mpty.png" in errors[0], errors
    done = run("predict", artifacts, odd, "--json", env=env)
    assert done.returncode == 0
    assert os.fsencode(json.loads(done.stdout)["input"]) == odd  # JSON escapes, names round-trip


# ---------------------------------------------------------------------------- 4. broken output
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
@pytest.mark.parametrize("buffered", [True, False])
@pytest.mark.parametrize("count", [1, 3000])  # written at exit, or failing during the run
def test_a_full_disk_is_one_line_and_exit_2(artifacts, mnist_test, tmp_path, buffered, count):
    path = tmp_path / "x.npy"
    np.save(path, mnist_test[0][:count])
    env = {**os.environ}
    if buffered:
        env.pop("PYTHONUNBUFFERED", None)
    else:
        env["PYTHONUNBUFFERED"] = "1"
    with open("/dev/full", "w") as full:
        done = subprocess.run([*EDGE, "predict", str(artifacts), str(path)], stdout=full,
                              stderr=subprocess.PIPE, text=True, env=env, timeout=300)
    assert done.returncode == 2
    errors = lines(done.stderr)
    assert len(errors) == 1 and errors[0].startswith("mnist-edge: cannot write output ("), errors


@pytest.mark.parametrize("command", [["predict", "{artifacts}", "{x}"], ["info", "{artifacts}"],
                                     ["verify", "{artifacts}"]])
def test_a_closed_stdout_is_one_line_and_exit_2(artifacts, x_test_npy, command):
    args = [a.format(artifacts=artifacts, x=x_test_npy) for a in command]
    done = subprocess.run(["sh", "-c", '"$@" >&-', "sh", *EDGE, *args], stderr=subprocess.PIPE,
                          text=True, timeout=300)
    assert done.returncode == 2
    errors = lines(done.stderr)
    assert len(errors) == 1 and errors[0].startswith("mnist-edge: cannot write output ("), errors


def test_a_closed_pipe_stays_a_quiet_exit_0(artifacts, x_test_npy):
    with subprocess.Popen([*EDGE, "predict", str(artifacts), str(x_test_npy)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline().startswith(str(x_test_npy).encode())
        proc.stdout.close()  # like `| head -1`
        stderr = proc.stderr.read()
        assert proc.wait(timeout=300) == 0 and stderr == b""


# ------------------------------------------------------------------------------------ 5. top-k
@pytest.mark.parametrize("k", ["0", "11", "-1"])
def test_top_k_outside_1_to_10_is_refused(artifacts, x_test_npy, k):
    done = run("predict", artifacts, x_test_npy, "--top-k", k, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert lines(done.stderr) == [f"mnist-edge: --top-k must be between 1 and 10, got {k}"]


# ------------------------------------------------------------------------ 6. unwritable cache
@pytest.mark.parametrize("as_json", [False, True])
def test_bench_prints_its_results_when_the_cache_cannot_be_written(artifacts, tmp_path, as_json):
    from mnist_edge import backends

    tflite = [b for b in ("litert", "tflite-runtime") if backends.unusable_reason(b) is None]
    if not tflite:
        pytest.skip("no TFLite interpreter installed here")
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where the cache folder should be; works even as root")
    env = {**os.environ, "MNIST_EDGE_CACHE": str(blocker / "cache")}
    done = run("bench", artifacts, "--backend", tflite[0], "--quick", "--runs", "20",
               "--seconds-per-batch", "0.01", *(["--json"] if as_json else []), env=env,
               text=True)
    assert done.returncode == 0, done.stderr
    if as_json:
        out = json.loads(done.stdout)
        assert out["saved"] is None and out["recommended"]["latency"]["backend"] == tflite[0]
        assert {r["key"] for r in out["rows"] if "error" not in r} >= {"tflite_int8"}
    else:
        assert "tflite_int8" in done.stdout and "fastest by latency" in done.stdout
        assert "saved to" not in done.stdout
    errors = lines(done.stderr)
    assert len(errors) == 1 and errors[0].startswith("mnist-edge: ") and "cannot save" in errors[0]


# ----------------------------------------------------------------------------- 7. bad flags
@pytest.fixture(scope="module")
def tflite_only(tmp_path_factory, artifacts) -> Path:
    """An artifacts folder whose manifest lists the int8 TFLite file only (no ONNX)."""
    folder = tmp_path_factory.mktemp("tflite-only")
    manifest = json.loads((artifacts / "manifest.json").read_text())
    manifest["files"] = [f for f in manifest["files"] if f["key"] == "tflite_int8"]
    shutil.copy(artifacts / manifest["files"][0]["path"], folder)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.mark.parametrize("flags", [["--threads", "0"], ["--threads", "65"]])
@pytest.mark.parametrize("target", ["folder", "file"])
def test_bench_bad_threads_is_one_line_for_a_folder_and_a_file(artifacts, tmp_path, flags,
                                                               target):
    model = artifacts if target == "folder" else artifacts / "model_int8.tflite"
    env = {**os.environ, "MNIST_EDGE_CACHE": str(tmp_path)}
    done = run("bench", model, *flags, "--quick", "--runs", "5", env=env, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert lines(done.stderr) == [f"mnist-edge: --threads must be between 1 and 64, "
                                  f"got {flags[1]}"]
    assert not list(tmp_path.iterdir())  # nothing measured, nothing saved


@pytest.mark.parametrize("target", ["folder", "file"])
def test_bench_backend_without_a_file_to_run_is_one_line(tflite_only, tmp_path, target):
    model = tflite_only if target == "folder" else tflite_only / "model_int8.tflite"
    env = {**os.environ, "MNIST_EDGE_CACHE": str(tmp_path)}
    done = run("bench", model, "--backend", "onnxruntime", "--quick", "--runs", "5", env=env,
               text=True)
    assert done.returncode == 2 and done.stdout == ""
    errors = lines(done.stderr)
    assert len(errors) == 1 and "onnx" in errors[0] and errors[0].startswith("mnist-edge: "), errors
