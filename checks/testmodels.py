"""A small trained and exported artifacts folder shared by the tests and the reliability checks.

    from checks.testmodels import ensure_test_artifacts
    folder = ensure_test_artifacts()   # Path with model.keras, line_reader.keras, gate.keras,
                                       # their exported files, manifest.json

    python -m checks.testmodels        # build (or reuse) it and print its path

If ``artifacts/`` holds a fresh full export of the three models (its manifest covers every
format, matches the files and was made from the current ``model.keras``, ``line_reader.keras``
and ``gate.keras``) that folder is returned. Otherwise a model from a short pinned training (one
epoch on all 60,000 training images), a line reader and a "no digit" gate from short ones are
exported into .cache/test-artifacts/
and reused until train/, export/, common/, the runtime's line finding, this file or
requirements.txt change (their hash is the cache key). It lives with the checks, which may
start the build stages they check.
MNIST comes from $MNIST_DATA, else the Keras download (common.data.DataError when neither works).
Treat the returned folder as read-only.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

from common.artifacts import GATE_FILE, READER_FILE, ROOT, is_fresh
from mnist_edge.digest import sha256_hex

CACHE = ROOT / ".cache" / "test-artifacts"
KEY_FILE = ROOT / ".cache" / "test-artifacts.key"
LOCK_FILE = ROOT / ".cache" / "test-artifacts.lock"
EPOCHS = 1  # on all 60,000 training images: about 98%, so the reader tests mean something
# the line reader: a short run (about six minutes on two cores) that reads most clean lines
READER_LINES, READER_EPOCHS = 16_000, 8
# the gate: a short run that refuses most non-digits at its calibrated threshold
GATE_NONDIGITS, GATE_EPOCHS = 6_000, 2
KEYED_FILES = ("train/*.py", "export/*.py", "common/*.py", "checks/testmodels.py",
               "requirements.txt", "runtime/src/mnist_edge/lines.py",
               "runtime/src/mnist_edge/ink.py", "runtime/src/mnist_edge/imageops.py")


def cache_key() -> str:
    """Hash of the code and pins that the cached artifacts were built with."""
    parts = [path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0"
             for pattern in KEYED_FILES for path in sorted(ROOT.glob(pattern))]
    return sha256_hex(b"".join(parts))


def ensure_test_artifacts() -> Path:
    """A folder with model.keras, line_reader.keras, gate.keras, every exported format and
    manifest.json; built if needed."""
    main = ROOT / "artifacts"
    if is_fresh(main) and (main / READER_FILE).is_file() and (main / GATE_FILE).is_file():
        return main
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK_FILE, "w") as lock:  # another test run may be building the same folder
        fcntl.flock(lock, fcntl.LOCK_EX)
        key = cache_key()
        if _read(KEY_FILE) == key and is_fresh(CACHE) and (CACHE / GATE_FILE).is_file():
            return CACHE
        _build(CACHE)
        KEY_FILE.write_text(key + "\n")
    return CACHE


def _build(out: Path) -> None:
    from common.data import load_mnist

    load_mnist()  # fails fast with DataError offline without $MNIST_DATA; else fills Keras's cache
    KEY_FILE.unlink(missing_ok=True)
    shutil.rmtree(out, ignore_errors=True)
    # this tree's runtime too, not the one an editable install elsewhere points at
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "runtime" / "src")])}
    _run([sys.executable, "-m", "train", "--epochs", str(EPOCHS), "--out", str(out)], env)
    _run([sys.executable, "-m", "train", "--model", "line_reader", "--lines", str(READER_LINES),
          "--epochs", str(READER_EPOCHS), "--test-lines", "300", "--out", str(out)], env)
    _run([sys.executable, "-m", "train", "--model", "gate", "--nondigits", str(GATE_NONDIGITS),
          "--epochs", str(GATE_EPOCHS), "--out", str(out)], env)
    _run([sys.executable, "-m", "export", "--artifacts", str(out)], env)


def _run(cmd: list[str], env: dict) -> None:
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"building test artifacts failed: {' '.join(cmd[1:])} exited "
                           f"{done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


if __name__ == "__main__":
    print(ensure_test_artifacts())
