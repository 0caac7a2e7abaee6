"""API misuse and hostile surroundings: clear errors, no code run from the current folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mnist_edge import Classifier, InputError, MnistEdgeError
from mnist_edge.loading import MAX_THREADS


def test_a_child_python_never_imports_code_from_the_current_folder(artifacts, tmp_path,
                                                                    monkeypatch):
    planted = tmp_path / "mnist_edge"
    planted.mkdir()
    marker = tmp_path / "ran"
    (planted / "__init__.py").write_text(f"open({str(marker)!r}, 'w').write('planted code ran')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # the variables are ignored too
    clf = Classifier.load(artifacts / "model_int8.tflite", probe=True)  # the probe: a child Python
    assert clf.predict(np.zeros((28, 28), np.uint8)).labels.shape == (1,)
    assert not marker.exists()


def test_threads_beyond_the_limit_are_refused_and_beyond_the_cores_capped(artifacts):
    with pytest.raises(MnistEdgeError, match=f"at most {MAX_THREADS}"):
        Classifier.load(artifacts, threads=100_000)
    with pytest.raises(MnistEdgeError, match="positive integer"):
        Classifier.load(artifacts, threads=True)
    clf = Classifier.load(artifacts, threads=MAX_THREADS)  # more than the cores: the cores
    assert len(clf.predict(np.zeros((3, 28, 28), np.uint8))) == 3


def test_cli_refuses_absurd_threads_with_one_line(artifacts, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 28, 28), np.uint8))
    done = subprocess.run([sys.executable, "-m", "mnist_edge", "predict", str(artifacts),
                           str(tmp_path / "x.npy"), "--threads", "100000"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"mnist-edge: threads must be at most {MAX_THREADS}, got 100000; more threads than "
        "cores only slow a small model down"]


def test_cli_uses_at_most_the_cores_and_says_so(artifacts, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 28, 28), np.uint8))
    done = subprocess.run([sys.executable, "-m", "mnist_edge", "predict", str(artifacts),
                           str(tmp_path / "x.npy"), "--threads", str(MAX_THREADS)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 2
    cores = os.cpu_count() or 1
    if cores < MAX_THREADS:
        assert done.stderr.strip().splitlines() == [
            f"mnist-edge: note: --threads {MAX_THREADS} is more than this machine's {cores} "
            f"cores; using {cores}"]


def test_predict_files_takes_one_path_or_a_list_and_refuses_anything_else(artifacts, mnist_test,
                                                                          tmp_path):
    from PIL import Image

    x, y = mnist_test
    path = tmp_path / "seven.png"
    Image.fromarray(x[0]).save(path)
    clf = Classifier.load(artifacts)
    for one in (str(path), path, os.fsencode(path), [os.fsencode(path)]):
        results = clf.predict_files(one)
        assert [(r.path, r.label) for r in results] == [(str(path), int(y[0]))], one
    for bad in ([None], [3], 7, None):
        with pytest.raises(InputError, match="path"):
            clf.predict_files(bad)


def test_tflite_runtime_refuses_an_unverified_file_every_time_unless_asked(artifacts, tmp_path):
    from mnist_edge import ModelError, backends

    if backends.unusable_reason("tflite-runtime") is not None:
        pytest.skip(f"tflite-runtime: {backends.unusable_reason('tflite-runtime')}")
    damaged = tmp_path / "damaged.tflite"
    data = bytearray((artifacts / "model_float32.tflite").read_bytes())
    data[24] = 113  # a header byte that crashed tflite-runtime 2.14 in some runs, not others
    damaged.write_bytes(bytes(data) + bytes(5000))
    for _ in range(3):  # the same answer every time
        with pytest.raises(ModelError, match="does not verify model files.*probe=True"):
            Classifier.load(damaged, backend="tflite-runtime")
    clf = Classifier.load(artifacts / "model_int8.tflite", backend="tflite-runtime", probe=True)
    assert clf.backend == "tflite-runtime"


@pytest.mark.parametrize("call", [
    lambda a: Classifier.load(None),
    lambda a: Classifier.load(""),
    lambda a: Classifier.load(a, backend=None),
    lambda a: Classifier.load(a, prefer=np.array(["a", "b"])),
    lambda a: Classifier.load(a, key=np.array([1, 2])),
    lambda a: Classifier.load(a, probe=np.array([1, 2])),
    lambda a: Classifier.load(a).predict(np.zeros((2, 28, 28), np.uint8)).top_k("3"),
    lambda a: Classifier.load(a).predict(np.zeros((2, 28, 28), np.uint8)).top_k(object()),
])
def test_wrong_types_anywhere_give_one_clear_error(artifacts, call):
    with pytest.raises(MnistEdgeError) as err:
        call(artifacts)
    assert "\n" not in str(err.value)


def test_command_line_mistakes_are_one_line_exit_2(artifacts):
    for args in (["predict", str(artifacts), "x.png", "--top-k", "abc"], ["predict"], [],
                 ["frobnicate"]):
        done = subprocess.run([sys.executable, "-m", "mnist_edge", *args], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 2, args
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert done.stderr.startswith("mnist-edge: ") and "--help" in done.stderr


def test_results_do_not_depend_on_the_working_folder(artifacts, mnist_test, tmp_path,
                                                     monkeypatch):
    x, _ = mnist_test
    here = Classifier.load(artifacts).predict(x[:50]).labels
    monkeypatch.chdir(tmp_path)
    assert np.array_equal(Classifier.load(Path(artifacts).resolve()).predict(x[:50]).labels, here)
