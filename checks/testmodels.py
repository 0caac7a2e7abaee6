"""A small trained and exported artifacts folder shared by the tests and the reliability checks.

    from checks.testmodels import ensure_test_artifacts
    folder = ensure_test_artifacts()   # Path with model.keras, the four exported files,
                                       # manifest.json

    python -m checks.testmodels        # build (or reuse) it and print its path

If ``artifacts/`` holds a fresh full export (its manifest covers every format, matches the files
and was made from the current ``artifacts/model.keras``) that folder is returned. Otherwise a
model from a short pinned training (one epoch on all 60,000 training images) is exported into
.cache/test-artifacts/ and reused until train/, export/, common/, this file or requirements.txt
change (their hash is the cache key). It lives with the checks, which may start the build
stages they check.
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

from common.artifacts import ROOT, is_fresh
from mnist_edge.digest import sha256_hex

CACHE = ROOT / ".cache" / "test-artifacts"
KEY_FILE = ROOT / ".cache" / "test-artifacts.key"
LOCK_FILE = ROOT / ".cache" / "test-artifacts.lock"
EPOCHS = 1  # on all 60,000 training images: about 98%, so the reader tests mean something
KEYED_FILES = ("train/*.py", "export/*.py", "common/*.py", "checks/testmodels.py",
               "requirements.txt")


def cache_key() -> str:
    """Hash of the code and pins that the cached artifacts were built with."""
    parts = [path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0"
             for pattern in KEYED_FILES for path in sorted(ROOT.glob(pattern))]
    return sha256_hex(b"".join(parts))


def ensure_test_artifacts() -> Path:
    """A folder with model.keras, all four exported formats and manifest.json; built if needed."""
    main = ROOT / "artifacts"
    if is_fresh(main):
        return main
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK_FILE, "w") as lock:  # another test run may be building the same folder
        fcntl.flock(lock, fcntl.LOCK_EX)
        key = cache_key()
        if _read(KEY_FILE) == key and is_fresh(CACHE):
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
