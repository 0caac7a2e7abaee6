"""Per-epoch checkpoints so an interrupted training run can continue (`python -m train --resume`).

The checkpoint lives next to the artifacts folder (``.artifacts-checkpoint/``), never inside
it, so a half-trained model is never mistaken for a published one. After each completed epoch
the model (with optimizer state) is written to ``epoch-N.keras`` and then ``state.json``, which
names it, is replaced atomically; a kill at any moment leaves the previous epoch resumable.
The folder is removed once the run has published its artifacts.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

from common import publish

STATE_FILE = "state.json"
# Fields of the configuration that a resumed run may change without invalidating the checkpoint.
# "epochs" only with a constant learning rate (the cosine schedule is fixed by the first run's
# epochs), and never below the completed ones; "data" may name the same data another way (the
# resolved path and the data's hash, DATA_FIELDS, are compared instead).
_MAY_DIFFER = {"epochs", "resume", "verbose", "out", "data"}
DATA_FIELDS = ("data_path", "data_sha256")


def folder_for(out: str, model: str | None = None) -> Path:
    """The checkpoint folder that belongs to an artifacts folder (and a model other than the
    classifier: each model trains on its own)."""
    out = Path(out).absolute()
    return out.parent / (f".{out.name}-{model}-checkpoint" if model else f".{out.name}-checkpoint")


def _comparable(config: dict) -> dict:
    may_differ = _MAY_DIFFER if config.get("lr_schedule") == "constant" else _MAY_DIFFER - {
        "epochs"}
    return {k: v for k, v in config.items() if k not in may_differ}


def _corrupt(path: Path, why: str) -> ValueError:
    return ValueError(f"{path}: checkpoint is corrupt ({why}); delete {path.parent} or rerun "
                      "without --resume to start fresh")


def _read_state(state_path: Path) -> dict:
    try:
        state = json.loads(state_path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _corrupt(state_path, str(exc)) from None
    if not isinstance(state, dict):
        raise _corrupt(state_path, f"a JSON {type(state).__name__}, not an object")
    return state


def _require(state_path: Path, state: dict, kinds: dict) -> None:
    wrong = [k for k, kind in kinds.items() if not isinstance(state.get(k), kind)]
    if wrong or state.get("epoch", 1) < 1:
        raise _corrupt(state_path, f"missing or wrong {', '.join(wrong or ['epoch'])}")


def load(out: str, config: dict, model: str | None = None):
    """(model, state) of the last completed epoch, or None when there is nothing to resume.

    Raises ValueError when a checkpoint exists but is corrupt or was made with a different
    configuration or data.
    """
    folder = folder_for(out, model)
    state_path = folder / STATE_FILE
    if not state_path.is_file():
        return None
    state = _read_state(state_path)
    _require(state_path, state, {"epoch": int, "model": str, "config": dict})
    old = state["config"]
    data = [k for k in DATA_FIELDS if old.get(k) != config.get(k)]
    if data:
        raise ValueError(f"{state_path}: checkpoint was trained on other training data "
                         f"({old.get('data_path')}, now {config.get('data_path')}; "
                         f"{', '.join(data)} differ); point --data or MNIST_DATA at the same "
                         "data, or rerun without --resume")
    changed = sorted(k for k in _comparable(config) | _comparable(old)
                     if old.get(k) != config.get(k) and k not in DATA_FIELDS)
    if changed:
        was = ", ".join(f"--{k.replace('_', '-')} {old.get(k)}" for k in changed)
        raise ValueError(f"{state_path}: checkpoint was made with different settings "
                         f"({', '.join(changed)}); it used {was}; rerun with the same flags "
                         "or without --resume")
    if config.get("epochs", state["epoch"]) < state["epoch"]:
        raise ValueError(f"{state_path}: checkpoint has {state['epoch']} completed epochs, more "
                         f"than --epochs {config.get('epochs')}; rerun with --epochs of at least "
                         f"{state['epoch']} or without --resume")
    _require(state_path, state, {"history": dict, "wall_time_s": (int, float)})
    import keras

    model_path = folder / state["model"]
    if not model_path.is_file():
        raise _corrupt(state_path, f"it names {model_path.name}, which is missing")
    try:
        model = keras.saving.load_model(model_path)
    except Exception as exc:  # Keras reports a damaged zip in many types, some misleading
        raise _corrupt(model_path, f"{type(exc).__name__}: {str(exc)[:80]}".replace(
            "File not found", "unreadable")) from None
    return model, state


def discard(out: str, model: str | None = None) -> None:
    """Remove the checkpoint folder (after a successful publish, or a fresh start)."""
    shutil.rmtree(folder_for(out, model), ignore_errors=True)


def callback(out: str, config: dict, history: dict, wall_s: float):
    """A Keras callback that checkpoints after every epoch, continuing ``history``."""
    import time

    import keras

    folder = folder_for(out)

    class _Checkpoint(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            folder.mkdir(parents=True, exist_ok=True)
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = {key: float(value) for key, value in (logs or {}).items()}
            bad = [f"{key} {value}" for key, value in logs.items() if not math.isfinite(value)]
            if bad:  # a diverged run only gets worse: stop before checkpointing it
                raise ValueError(f"training diverged in epoch {epoch + 1} ({', '.join(bad)}); "
                                 "nothing published; lower --learning-rate")
            for key, value in logs.items():
                history.setdefault(key, []).append(value)
            save(out, None, self.model, epoch + 1, config, history,
                 wall_s + time.perf_counter() - self._start)

    return _Checkpoint()


def save(out: str, model_name: str | None, model, epoch: int, config: dict, history: dict,
         wall_s: float) -> None:
    """Checkpoint ``model`` (with its optimizer's state) after ``epoch`` completed epochs: the
    model first, then the state naming it (atomically), then older epochs are removed."""
    folder = folder_for(out, model_name)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"epoch-{epoch}.keras"
    with publish.atomic_path(folder / name) as tmp:
        model.save(tmp)
    state = {"epoch": epoch, "model": name, "config": config, "history": history,
             "wall_time_s": wall_s}
    publish.write_json(folder / STATE_FILE, state)
    for old in folder.glob("epoch-*.keras"):
        if old.name != name:
            old.unlink(missing_ok=True)
