"""The mnist-edge command: mixed good and bad inputs, --json, info, verify; no tracebacks."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest


def run(*args, cwd=None):
    done = subprocess.run([sys.executable, "-m", "mnist_edge", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)
    assert "Traceback" not in done.stderr, done.stderr
    return done


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, mnist_test):
    from PIL import Image

    x, y = mnist_test
    d = tmp_path_factory.mktemp("inputs")
    (d / "folder" / "sub").mkdir(parents=True)
    Image.fromarray(255 - x[0]).resize((90, 90)).save(d / "folder" / "a.png")
    Image.fromarray(x[1]).resize((70, 100)).convert("RGB").save(d / "folder" / "sub" / "b.jpg",
                                                                quality=90)
    (d / "folder" / "notes.txt").write_text("not an image, skipped when walking folders")
    np.save(d / "three.npy", x[2:5])
    np.save(d / "one.npy", x[5].astype(np.float32) / 255)
    header = b"\x00\x00\x08\x03" + (4).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    with gzip.open(d / "t10k-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(header + x[6:10].tobytes())
    (d / "cut-idx3-ubyte").write_bytes(header + x[6:8].tobytes())  # declares 4, holds 2
    (d / "empty.png").write_bytes(b"")
    (d / "junk.jpg").write_bytes(b"\xff\xd8\xff\xe0 junk")
    np.save(d / "wrong.npy", np.zeros((2, 5, 5)))
    return d, y


def test_predict_answers_good_inputs_and_reports_each_bad_one(artifacts, inputs):
    d, y = inputs
    done = run("predict", artifacts, d / "folder", d / "three.npy", d / "one.npy",
               d / "t10k-images-idx3-ubyte.gz", d / "empty.png", d / "junk.jpg", d / "wrong.npy",
               d / "missing.png", d / "cut-idx3-ubyte")
    rows = [line.split("\t") for line in done.stdout.splitlines()]
    got = {name: int(label) for name, label, conf in rows}
    expected = {str(d / "folder" / "a.png"): y[0], str(d / "folder" / "sub" / "b.jpg"): y[1],
                **{f"{d / 'three.npy'}[{i}]": y[2 + i] for i in range(3)}, str(d / "one.npy"): y[5],
                **{f"{d / 't10k-images-idx3-ubyte.gz'}[{i}]": y[6 + i] for i in range(4)},
                **{f"{d / 'cut-idx3-ubyte'}[{i}]": y[6 + i] for i in range(2)}}
    assert got.keys() == expected.keys()
    assert sum(got[k] == expected[k] for k in got) >= len(got) - 1
    assert all(0 <= float(conf) <= 1 for _, _, conf in rows)
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 6, errors  # five bad inputs, then the count
    for name in ("empty.png", "junk.jpg", "wrong.npy", "missing.png", "cut-idx3-ubyte"):
        assert sum(name in line for line in errors[:-1]) == 1
    assert errors[-1] == f"mnist-edge: 5 of {len(got) + 5} inputs failed"
    assert done.returncode == 1


def test_predict_json_and_top_k(artifacts, inputs):
    d, y = inputs
    done = run("predict", artifacts, d / "folder" / "a.png", d / "three.npy", "--json", "--top-k",
               "3")
    assert done.returncode == 0 and done.stderr == ""
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(rows) == 4
    for row in rows:
        assert row["label"] == row["top_k"][0][0] and len(row["top_k"]) == 3
        assert row["confidence"] >= row["top_k"][1][1] >= row["top_k"][2][1]


def test_predict_with_a_bad_model_is_one_line_and_exit_2(tmp_path, inputs):
    d, _ = inputs
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"\x00" * 4 + b"TFL3" + b"\x00" * 100)
    for model in (tmp_path / "missing.tflite", bad, tmp_path):
        done = run("predict", model, d / "three.npy")
        assert done.returncode == 2 and done.stdout == ""
        assert len(done.stderr.strip().splitlines()) == 1 and str(model) in done.stderr


def test_info_shows_format_backend_tensors_and_manifest(artifacts, manifest):
    done = run("info", artifacts)
    assert done.returncode == 0, done.stderr
    for word in ("format", "backend", "input", "output", "quantization", "sha256", "manifest"):
        assert word in done.stdout
    info = json.loads(run("info", artifacts, "--json").stdout)
    assert info["manifest"]["verified"] is True
    entry = next(f for f in manifest["files"] if f["key"] == info["manifest"]["key"])
    assert info["sha256"] == entry["sha256"] and info["sha256"] in done.stdout


def test_verify_reports_every_file_and_catches_a_changed_one(artifacts, manifest, tmp_path):
    done = run("verify", artifacts)
    assert done.returncode == 0, done.stdout + done.stderr
    listed = manifest["files"] + [f for side in ("line_reader", "gate")
                                  for f in (manifest.get(side) or {}).get("files", [])]
    assert done.stdout.count("OK ") == len(listed)
    copy = tmp_path / "art"
    shutil.copytree(artifacts, copy, ignore=shutil.ignore_patterns("*.keras", "*.png", "sm"))
    victim = copy / manifest["files"][-1]["path"]
    data = bytearray(victim.read_bytes())
    data[-10] ^= 0xFF
    victim.write_bytes(bytes(data))
    done = run("verify", copy)
    assert done.returncode == 1
    listed = manifest["files"] + [f for side in ("line_reader", "gate")
                                  for f in (manifest.get(side) or {}).get("files", [])]
    assert done.stdout.count("OK ") == len(listed) - 1
    assert "FAIL" in done.stdout and "sha256" in done.stdout
    assert "1 of" in done.stderr


def test_help_lists_the_commands():
    done = run("--help")
    assert done.returncode == 0
    for command in ("predict", "info", "verify"):
        assert command in done.stdout
    assert "default: 1" in run("predict", "--help").stdout
