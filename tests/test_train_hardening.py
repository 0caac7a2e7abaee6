"""python -m train refuses unsafe resumes and bad flags, and reports what it published."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import local_mnist

ROOT = Path(__file__).resolve().parents[1]
MNIST = local_mnist()
needs_mnist = pytest.mark.skipif(not MNIST,
                                 reason="no MNIST here (MNIST_DATA or Keras's cache) to train")


def _tiny(out: Path, **changes):
    from train.train import TrainConfig

    return replace(TrainConfig(out=str(out), epochs=1, limit=300), **changes)


def _checkpoint_only(monkeypatch):
    """Make run() stop where it would publish: the checkpoint of the last epoch stays."""
    import contextlib

    from train import train

    @contextlib.contextmanager
    def interrupted(out):
        raise KeyboardInterrupt
        yield

    monkeypatch.setattr(train.publish, "staging", interrupted)


def _write_npz(path: Path, **changes) -> Path:
    with np.load(MNIST) as npz:
        arrays = {k: npz[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    arrays.update(changes)
    np.savez(path, **arrays)
    return path


# 1. resuming with other epochs

def _state(folder: Path, epoch: int, config: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "state.json").write_text(json.dumps(
        {"epoch": epoch, "model": f"epoch-{epoch}.keras", "config": config, "history": {},
         "wall_time_s": 1.0}))


def test_resume_refuses_other_epochs_with_the_cosine_schedule(tmp_path):
    from train import checkpoint

    out = str(tmp_path / "artifacts")
    config = {"epochs": 3, "lr_schedule": "cosine", "seed": 1}
    _state(checkpoint.folder_for(out), 2, config)
    with pytest.raises(ValueError, match="--epochs 3"):
        checkpoint.load(out, {**config, "epochs": 6})


def test_resume_refuses_fewer_epochs_than_completed(tmp_path):
    from train import checkpoint

    out = str(tmp_path / "artifacts")
    config = {"epochs": 3, "lr_schedule": "constant", "seed": 1}
    _state(checkpoint.folder_for(out), 2, config)
    with pytest.raises(ValueError, match="2 completed epochs"):
        checkpoint.load(out, {**config, "epochs": 1})


# 2. resuming after the data changed

@needs_mnist
def test_resume_refuses_changed_mnist_data(tmp_path, monkeypatch):
    from train import checkpoint, train

    out = tmp_path / "artifacts"
    monkeypatch.setenv("MNIST_DATA", MNIST)
    with monkeypatch.context() as m, pytest.raises(KeyboardInterrupt):
        _checkpoint_only(m)
        train.run(_tiny(out))
    assert (checkpoint.folder_for(str(out)) / "state.json").is_file()

    with np.load(MNIST) as npz:
        other = _write_npz(tmp_path / "other.npz", x_train=255 - npz["x_train"])
    monkeypatch.setenv("MNIST_DATA", str(other))
    with pytest.raises(ValueError, match="training data"):
        train.run(_tiny(out, resume=True))
    assert not out.exists()


# 3. learning rate, seed, non-finite models and missing classes

@pytest.mark.parametrize("flag", [["--learning-rate", "nan"], ["--learning-rate", "-1"],
                                  ["--learning-rate", "0"], ["--learning-rate", "inf"],
                                  ["--learning-rate", "fast"], ["--seed", "-1"],
                                  ["--seed", str(2**32)], ["--seed", "1.5"]])
def test_bad_learning_rate_or_seed_is_an_argparse_error(flag, capsys):
    from train.__main__ import parse_args

    with pytest.raises(SystemExit) as exc:
        parse_args(flag)
    assert exc.value.code == 2
    assert flag[0] in capsys.readouterr().err


def test_good_learning_rate_and_seed_are_accepted():
    from train.__main__ import parse_args

    cfg = parse_args(["--learning-rate", "3e-4", "--seed", str(2**32 - 1)])
    assert cfg.learning_rate == 3e-4 and cfg.seed == 2**32 - 1
    assert parse_args([]).learning_rate is None and parse_args(["--seed", "0"]).seed == 0


@needs_mnist
def test_diverged_model_is_not_published(tmp_path):
    from train import train

    out = tmp_path / "artifacts"
    with pytest.raises(ValueError, match="diverged"):
        train.run(_tiny(out, data=MNIST, learning_rate=1e30, lr_schedule="constant"))
    assert not out.exists()


def test_model_with_non_finite_weights_or_loss_is_refused():
    from train.model import build_model
    from train.train import check_finite

    model = build_model()
    check_finite(model, 0.3)
    with pytest.raises(ValueError, match="test loss is nan"):
        check_finite(model, float("nan"))
    kernel = model.get_layer("dense").kernel
    kernel.assign(np.where(np.eye(*kernel.shape, dtype=bool), np.inf, kernel.numpy()))
    with pytest.raises(ValueError, match="not finite"):
        check_finite(model, 0.3)


@pytest.fixture(scope="module")
def published_without_nines(tmp_path_factory):
    """A tiny run whose test set has no digit 9: (artifacts folder, metrics)."""
    if not MNIST:
        pytest.skip("no MNIST here (MNIST_DATA or Keras's cache) for short trainings")
    from train import train

    tmp = tmp_path_factory.mktemp("no-nines")
    with np.load(MNIST) as npz:
        keep = npz["y_test"] != 9
        data = _write_npz(tmp / "no9.npz", x_test=npz["x_test"][keep], y_test=npz["y_test"][keep])
    out = tmp / "artifacts"
    train.run(_tiny(out, data=str(data)))
    return out, (out / "metrics.json").read_text()


def test_metrics_write_null_for_a_class_without_test_images(published_without_nines):
    _, text = published_without_nines

    def strict(name):
        raise ValueError(f"metrics.json holds {name}, which is not JSON")

    per_class = json.loads(text, parse_constant=strict)["per_class_accuracy"]
    assert per_class["9"] is None
    assert all(0.0 <= per_class[str(d)] <= 1.0 for d in range(9))


# 4. metrics.json names the weights it describes

def test_metrics_name_the_weights_they_describe(published_without_nines):
    from common.artifacts import weights_sha256

    out, text = published_without_nines
    assert json.loads(text)["weights_sha256"] == weights_sha256(out / "model.keras")


# 5. Ctrl-C after publishing

def _interrupt_after_writing(folder: Path, name: str):
    def run(cfg, **_):
        folder.mkdir(exist_ok=True)
        (folder / name).write_text('{"new": true}')
        raise KeyboardInterrupt
    return run


def test_train_interrupted_after_publishing_says_so(tmp_path, monkeypatch, capsys):
    import train.__main__ as cli

    out = tmp_path / "artifacts"
    monkeypatch.setattr(cli, "run", _interrupt_after_writing(out, "metrics.json"))
    assert cli.main(["--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "after publishing" in err and "left as they were" not in err


def test_train_interrupted_before_publishing_says_nothing_changed(tmp_path, monkeypatch, capsys):
    import train.__main__ as cli

    def run(cfg):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "run", run)
    assert cli.main(["--out", str(tmp_path / "artifacts")]) == 130
    assert "left as they were" in capsys.readouterr().err


def test_export_interrupted_after_publishing_says_so(tmp_path, monkeypatch, capsys):
    import export.__main__ as cli

    folder = tmp_path / "artifacts"
    folder.mkdir()
    (folder / "manifest.json").write_text('{"old": true}')
    monkeypatch.setattr(cli, "run", _interrupt_after_writing(folder, "manifest.json"))
    assert cli.main(["--artifacts", str(folder)]) == 130
    err = capsys.readouterr().err
    assert "after publishing" in err and "left as they were" not in err


@pytest.mark.parametrize("stage", ["train", "export"])
def test_ctrl_c_during_shutdown_after_success_prints_no_traceback(stage, tmp_path):
    # run() is replaced by a stub that succeeds; SIGINT arrives in an atexit handler.
    script = f"""
import atexit, os, runpy, signal, sys, time
import {stage}.{stage} as mod

class Result:
    manifest, failures, quantization = {{"files": []}}, [], None
    def table(self):
        return ""

def run(cfg, **_):
    return {{"test_accuracy": 0.9, "test_loss": 0.1, "epochs": 1, "wall_time_s": 1.0}} \\
        if "{stage}" == "train" else Result()

mod.run = run
def late_ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.2)
atexit.register(late_ctrl_c)
sys.argv = ["{stage}", "--{'out' if stage == 'train' else 'artifacts'}", {str(tmp_path)!r}]
runpy.run_module("{stage}", run_name="__main__", alter_sys=True)
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert "Traceback" not in proc.stderr and "KeyboardInterrupt" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stderr


# 6. clear messages instead of tracebacks

def _no_training(monkeypatch):
    from train import train

    def trained(*_, **__):
        raise AssertionError("training started")

    monkeypatch.setattr(train, "import_tensorflow", trained)


@needs_mnist
def test_out_naming_a_file_is_refused_before_training(tmp_path, monkeypatch, capsys):
    import train.__main__ as cli

    _no_training(monkeypatch)
    (tmp_path / "model.keras").write_text("not a folder")
    assert cli.main(["--data", MNIST, "--out", str(tmp_path / "model.keras")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a folder" in err and "model.keras" in err


@needs_mnist
def test_unwritable_out_parent_is_refused_before_training(monkeypatch, capsys):
    import train.__main__ as cli

    _no_training(monkeypatch)  # /proc refuses new files even to root
    assert cli.main(["--data", MNIST, "--out", "/proc/mnist-edge-test/artifacts"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write" in err and "/proc" in err


@pytest.mark.parametrize("text", ["{}", "[]", "", "{not json", '{"epoch": "x", "model": 1}'])
def test_corrupt_state_json_says_the_checkpoint_is_corrupt(text, tmp_path):
    from train import checkpoint

    out = str(tmp_path / "artifacts")
    folder = checkpoint.folder_for(out)
    folder.mkdir()
    (folder / "state.json").write_text(text)
    with pytest.raises(ValueError, match="corrupt") as exc:
        checkpoint.load(out, {"epochs": 1})
    assert "without --resume" in str(exc.value)


def test_truncated_checkpoint_model_says_the_checkpoint_is_corrupt(tmp_path):
    from train import checkpoint
    from train.model import build_model, compile_model

    out = str(tmp_path / "artifacts")
    folder = checkpoint.folder_for(out)
    config = {"epochs": 2, "lr_schedule": "cosine"}
    _state(folder, 1, config)
    compile_model(build_model()).save(folder / "epoch-1.keras")
    data = (folder / "epoch-1.keras").read_bytes()
    (folder / "epoch-1.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt") as exc:
        checkpoint.load(out, config)
    assert "epoch-1.keras" in str(exc.value) and "File not found" not in str(exc.value)


@needs_mnist
def test_resume_with_nothing_to_resume_says_so(tmp_path, monkeypatch, capsys):
    from train import train

    class Started(Exception):
        pass

    def started(*_, **__):
        raise Started

    monkeypatch.setattr(train, "compile_model", started)
    with pytest.raises(Started):
        train.run(_tiny(tmp_path / "artifacts", data=MNIST, resume=True))
    assert "nothing to resume" in capsys.readouterr().out


@needs_mnist
def test_too_little_free_space_is_refused_before_training(tmp_path, monkeypatch, capsys):
    import shutil

    import train.__main__ as cli
    from train import checkpoint

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(
        10**9, 10**9 - 5_000_000, 5_000_000))
    out = tmp_path / "artifacts"
    assert cli.main(["--data", MNIST, "--out", str(out), "--epochs", "1", "--limit", "300"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "5.0 MB free" in err and "training needs about" in err
    assert not out.exists() and not checkpoint.folder_for(str(out)).exists()  # fit never began
