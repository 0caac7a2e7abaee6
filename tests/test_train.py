"""The reference model and a short real training run through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import local_mnist

ROOT = Path(__file__).resolve().parents[1]
MNIST = local_mnist()


def test_reference_model_layers_and_parameters():
    from train.model import PARAMETER_COUNT, build_model

    model = build_model()
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"]
    assert model.count_params() == PARAMETER_COUNT == 693_962
    assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, 10)
    conv, pool, _, dense, out = model.layers
    assert conv.filters == 32 and conv.kernel_size == (3, 3) and conv.activation.__name__ == "relu"
    assert pool.pool_size == (2, 2)
    assert dense.units == 128 and dense.activation.__name__ == "relu"
    assert out.units == 10 and out.activation.__name__ == "softmax"


def test_compile_uses_sparse_crossentropy():
    from train.model import build_model, compile_model

    model = compile_model(build_model(), "adagrad")
    assert model.loss == "sparse_categorical_crossentropy"
    assert type(model.optimizer).__name__ == "Adagrad"
    with pytest.raises(ValueError, match="unknown optimizer"):
        compile_model(build_model(), "sgd")


@pytest.mark.skipif(not MNIST, reason="no MNIST here (MNIST_DATA or Keras's cache) to train")
def test_short_training_run_writes_every_artifact(tmp_path):
    out = tmp_path / "artifacts"
    proc = subprocess.run(
        [sys.executable, "-m", "train", "--data", MNIST, "--epochs", "1", "--limit", "6000",
         "--out", str(out), "--seed", "7"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy" in proc.stdout and "oneDNN" not in proc.stderr
    for name in ("model.keras", "history.json", "training_curves.png", "confusion_matrix.png",
                 "metrics.json", "config.json"):
        assert (out / name).stat().st_size > 0, name
    assert not list(tmp_path.glob(".staging-*")), "staging folder left behind"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.90 and metrics["parameters"] == 693_962
    assert metrics["test_images"] == 10_000 and metrics["seed"] == 7
    assert set(metrics["per_class_accuracy"]) == {str(d) for d in range(10)}
    history = json.loads((out / "history.json").read_text())
    assert set(history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(history["loss"]) == 1
    config = json.loads((out / "config.json").read_text())
    assert config["epochs"] == 1 and config["validation_split"] == 0.1
    for png in ("training_curves.png", "confusion_matrix.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    import keras

    model = keras.saving.load_model(out / "model.keras")
    assert model.count_params() == 693_962


@pytest.mark.skipif(not MNIST, reason="no MNIST here (MNIST_DATA or Keras's cache) to train")
def test_killed_run_resumes_from_last_epoch(tmp_path):
    """SIGKILL after the first epoch: nothing is published, and --resume continues from epoch 1."""
    import signal
    import time

    out = tmp_path / "artifacts"
    args = [sys.executable, "-m", "train", "--data", MNIST, "--epochs", "3", "--limit", "3000",
            "--out", str(out)]
    state = tmp_path / ".artifacts-checkpoint" / "state.json"
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert state.exists(), "no checkpoint after the first epoch"
    assert not out.exists(), "a killed run published artifacts"

    done = subprocess.run(args + ["--resume"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resuming after epoch" in done.stdout
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == 3
    assert json.loads((out / "metrics.json").read_text())["test_accuracy"] > 0.9
    assert not state.parent.exists(), "checkpoint left behind after a completed run"


def test_resume_refuses_a_checkpoint_with_other_settings(tmp_path):
    from train import checkpoint

    folder = checkpoint.folder_for(str(tmp_path / "artifacts"))
    folder.mkdir()
    (folder / "state.json").write_text(json.dumps(
        {"epoch": 1, "model": "epoch-1.keras", "config": {"batch_size": 64, "seed": 1}}))
    with pytest.raises(ValueError, match="different settings \\(seed\\)"):
        checkpoint.load(str(tmp_path / "artifacts"), {"batch_size": 64, "seed": 2})


def test_retraining_drops_the_previous_export(tmp_path):
    """A new model.keras must not be published beside files exported from the old one."""
    from common.artifacts import drop_exports

    (tmp_path / "model_int8.tflite").write_bytes(b"old")
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "manifest.json").write_text(json.dumps({"files": [{"path": "model_int8.tflite"}]}))
    drop_exports(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
