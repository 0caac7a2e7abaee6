"""Per-epoch checkpoints so an interrupted training run can continue (`python -m train --resume`).

The checkpoint lives next to the artifacts folder (``.artifacts-checkpoint/``), never inside
it, so a half-trained model is never mistaken for a published one. After each completed epoch
the model (with optimizer state) is written to ``epoch-N.keras`` and then ``state.json``, which
names it, is replaced atomically; a kill at any moment leaves the previous epoch resumable.
The folder is removed once the run has published its artifacts.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from common import publish

STATE_FILE = "state.json"
# Fields of the configuration that a resumed run may change without invalidating the checkpoint.
_MAY_DIFFER = {"epochs", "resume", "verbose", "out"}


def folder_for(out: str) -> Path:
    """The checkpoint folder that belongs to an artifacts folder."""
    out = Path(out).absolute()
    return out.parent / f".{out.name}-checkpoint"


def _comparable(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in _MAY_DIFFER}


def load(out: str, config: dict):
    """(model, state) of the last completed epoch, or None when there is nothing to resume.

    Raises ValueError when a checkpoint exists but was made with a different configuration.
    """
    folder = folder_for(out)
    state_path = folder / STATE_FILE
    if not state_path.is_file():
        return None
    state = json.loads(state_path.read_text())
    if _comparable(state["config"]) != _comparable(config):
        changed = sorted(k for k in _comparable(config)
                         if state["config"].get(k) != config.get(k))
        raise ValueError(f"{state_path}: checkpoint was made with different settings "
                         f"({', '.join(changed)}); rerun with the same flags or without --resume")
    import keras

    model = keras.saving.load_model(folder / state["model"])
    return model, state


def discard(out: str) -> None:
    """Remove the checkpoint folder (after a successful publish, or a fresh start)."""
    shutil.rmtree(folder_for(out), ignore_errors=True)


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
            for key, value in (logs or {}).items():
                history.setdefault(key, []).append(float(value))
            name = f"epoch-{epoch + 1}.keras"
            with publish.atomic_path(folder / name) as tmp:
                self.model.save(tmp)
            state = {"epoch": epoch + 1, "model": name, "config": config, "history": history,
                     "wall_time_s": wall_s + time.perf_counter() - self._start}
            publish.write_json(folder / STATE_FILE, state)
            for old in folder.glob("epoch-*.keras"):
                if old.name != name:
                    old.unlink(missing_ok=True)

    return _Checkpoint()
