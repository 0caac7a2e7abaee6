"""The self-test on the golden set: it passes for every file this machine runs, and it fails when a
kernel gives wrong outputs or a file's weights changed under a correct-looking manifest."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from mnist_edge import Classifier, ModelError, SelfTestError, backends
from mnist_edge.selftest import verify_folder

EDGE = [sys.executable, "-m", "mnist_edge"]


def run(*args, timeout=120):
    return subprocess.run([*EDGE, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def runnable(manifest) -> list[dict]:
    """Every file the manifest lists that an installed backend runs."""
    listed = manifest["files"] + [f for side in ("line_reader", "gate")
                                  for f in (manifest.get(side) or {}).get("files", [])]
    return [f for f in listed if backends.available(f["format"])]


def test_the_golden_set_is_mnist_test_digits_with_their_labels(artifacts, manifest, mnist_test):
    x, y = mnist_test
    section = manifest["golden"]
    data = (artifacts / section["path"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == section["sha256"] and len(data) == section["size"]
    with np.load(artifacts / section["path"]) as npz:
        idx, digits, labels = npz["test_indices"], npz["digits"], npz["labels"]
        assert np.array_equal(digits, x[idx]) and np.array_equal(labels, y[idx])
        assert np.bincount(labels, minlength=10).tolist() == [10] * 10
        listed = {f["key"] for f in manifest["files"]} | {
            f["key"] for side in ("line_reader", "gate")
            for f in (manifest.get(side) or {}).get("files", [])}
        assert {n.removeprefix("out_") for n in npz.files if n.startswith("out_")} == listed
        assert set(section["files"]) == listed


def test_every_file_passes_its_self_test_here_in_under_a_second(artifacts, manifest):
    files = runnable(manifest)
    assert files, "no backend installed"
    done = run("verify", artifacts)
    assert done.returncode == 0, done.stdout + done.stderr
    for f in files:
        line = next(ln for ln in done.stdout.splitlines() if f"  {f['key']} " in ln)
        assert line.startswith("OK") and " golden answers as at export" in line, line
    results = [r for _, r in verify_folder(artifacts) if not isinstance(r, str)]
    assert len(results) == len(files) and all(r.passed for r in results)
    assert all(r.changed == 0 and r.inputs >= 10 for r in results)


def test_load_with_self_test_passes_for_each_file_and_its_gate(artifacts, manifest):
    for f in manifest["files"]:
        if backends.available(f["format"]):
            clf = Classifier.load(artifacts, key=f["key"], self_test=True)
            assert clf.predict(np.zeros((1, 28, 28), np.uint8)).labels.shape == (1,)


def test_self_test_needs_the_artifacts_folder(artifacts, manifest):
    entry = next(f for f in manifest["files"] if backends.available(f["format"]))
    with pytest.raises(ModelError, match="artifacts folder"):
        Classifier.load(artifacts / entry["path"], probe=False, self_test=True)
    with pytest.raises(Exception, match="self_test must be True or False"):
        Classifier.load(artifacts, self_test="yes")


@pytest.mark.parametrize("fault", ["shifted", "swapped"])
def test_a_kernel_with_wrong_outputs_fails_the_self_test(artifacts, manifest, monkeypatch, fault):
    # a broken int8 or float kernel: outputs moved by a few dozen steps, or two classes swapped
    clf = Classifier.load(artifacts)
    impl = type(clf._backend)
    original = impl.run

    def broken(self):
        out = original(self).copy()
        if fault == "swapped" and out.shape[1] == 10:  # the classifier's (not the gate's)
            out[:, [3, 5]] = out[:, [5, 3]]
        elif np.issubdtype(out.dtype, np.integer):
            out[:, 0] = np.clip(out[:, 0].astype(np.int64) + 40, -128, 127)
        else:
            out[:, 0] += 0.2
        return out

    monkeypatch.setattr(impl, "run", broken)
    with pytest.raises(SelfTestError, match="failed its self-test") as err:
        Classifier.load(artifacts, self_test=True)
    assert "golden answers as at export" in str(err.value)
    if fault == "swapped":  # the ten golden images of 3 and the ten of 5 change answer
        assert "80 of 100 golden answers" in str(err.value)
    else:
        assert "differ by" in str(err.value)
    failed = [r for _, r in verify_folder(artifacts) if not isinstance(r, str) and not r.passed]
    assert clf.entry.key in {r.key for r in failed}


def _tamper(artifacts, manifest, tmp_path, key):
    """A copy of the artifacts whose ``key`` file has other weights, its manifest entry updated
    to the new size and sha256: the file a device would load without complaint."""
    copy = tmp_path / "art"
    shutil.copytree(artifacts, copy, ignore=shutil.ignore_patterns("*.keras", "*.png"))
    mpath = copy / "manifest.json"
    data = json.loads(mpath.read_text())
    entry = next(f for f in data["files"] if f["key"] == key)
    victim = copy / entry["path"]
    raw = bytearray(victim.read_bytes())
    # the middle of the file is the dense layer's weights (99.7% of the parameters)
    start, stop = len(raw) * 2 // 5, len(raw) * 3 // 5
    rng = np.random.default_rng(0)
    raw[start:stop] = rng.integers(0, 256, stop - start, dtype=np.uint8).tobytes() \
        if entry["precision"] == "int8" else np.asarray(
            np.frombuffer(bytes(raw[start:stop]), np.uint8) ^ 0x01, np.uint8).tobytes()
    victim.write_bytes(bytes(raw))
    entry["sha256"] = hashlib.sha256(raw).hexdigest()
    mpath.write_text(json.dumps(data))
    return copy


@pytest.mark.parametrize("key", ["tflite_int8", "onnx_float32"])
def test_a_file_with_changed_weights_under_a_matching_manifest_fails(artifacts, manifest,
                                                                     tmp_path, key):
    entry = next(f for f in manifest["files"] if f["key"] == key)
    if not backends.available(entry["format"]):
        pytest.skip(f"no {entry['format']} backend installed here")
    copy = _tamper(artifacts, manifest, tmp_path, key)
    done = run("verify", copy)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    bad = next(ln for ln in lines if f"  {key} " in ln)
    assert bad.startswith("FAIL") and "golden answers as at export" in bad, bad
    assert sum(ln.startswith("FAIL") for ln in lines) == 1, done.stdout
    assert "answer the golden set unlike at export" in done.stderr
    with pytest.raises(SelfTestError):
        Classifier.load(copy, key=key, self_test=True)


def test_a_damaged_golden_set_is_not_trusted(artifacts, tmp_path):
    copy = tmp_path / "art"
    shutil.copytree(artifacts, copy, ignore=shutil.ignore_patterns("*.keras", "*.png"))
    golden = copy / "golden.npz"
    data = bytearray(golden.read_bytes())
    data[len(data) // 2] ^= 0xFF
    golden.write_bytes(bytes(data))
    done = run("verify", copy)
    assert done.returncode == 1 and "golden" in done.stderr and "Traceback" not in done.stderr
    with pytest.raises(ModelError, match="golden"):
        Classifier.load(copy, self_test=True)
