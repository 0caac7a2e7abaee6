"""All-or-nothing writes to the artifacts folder and the reports, shared by every build tool.

A stage never writes into ``artifacts/`` directly. It gets a staging folder next to it that
already holds (hard links to) the current files, writes its new files there, and then the
staging folder and ``artifacts/`` swap places in one atomic ``renameat2(RENAME_EXCHANGE)``.
A crash or a kill at any moment leaves ``artifacts/`` holding either the previous complete
set or the new complete set, never a mix; leftovers are removed by the next run.

    with publish.staging("artifacts") as stage:
        publish.write_json(stage / "metrics.json", metrics)
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_STAGE_PREFIX = ".staging-"
_OLD_PREFIX = ".old-"


def _umask() -> int:
    """The process's umask, read without changing it where /proc tells it (Linux 4.7+)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: read by setting, then restore at once
    os.umask(mask)
    return mask


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where the call is unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: the filesystem cannot exchange
        return False
    raise OSError(err, f"cannot swap {a} and {b}: {os.strerror(err)}")


def _siblings(out: Path, prefix: str) -> list[Path]:
    return list(out.parent.glob(f"{prefix}{out.name}-*"))


def clean_leftovers(out: Path) -> None:
    """Remove staging folders that an interrupted run left next to ``out``.

    If a run died between the two renames of the fallback path, the previous set is put back.
    """
    olds = sorted(_siblings(out, _OLD_PREFIX), key=lambda p: p.stat().st_mtime)
    if olds and not out.exists():
        os.rename(olds.pop(), out)
    for leftover in _siblings(out, _STAGE_PREFIX) + _siblings(out, _OLD_PREFIX):
        shutil.rmtree(leftover, ignore_errors=True)


@contextlib.contextmanager
def staging(out: str | os.PathLike) -> Iterator[Path]:
    """Yield a folder seeded with the current artifacts; publish it atomically on success."""
    out = Path(out).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(out)
    stage = Path(tempfile.mkdtemp(prefix=f"{_STAGE_PREFIX}{out.name}-", dir=out.parent))
    stage.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; the published folder gets normal modes
    leftover: Path | None = stage  # what to remove at the end: the stage, or the swapped-out set
    try:
        if out.is_dir():
            for item in out.iterdir():
                if item.is_file():
                    os.link(item, stage / item.name)
        yield stage
        _fsync_dir(stage)
        if out.is_dir():
            if not _exchange(stage, out):
                # Fallback (no renameat2): two renames; if a run dies between them,
                # clean_leftovers() restores the previous set.
                old = out.parent / f"{_OLD_PREFIX}{out.name}-{os.getpid()}"
                os.rename(out, old)
                os.rename(stage, out)
                leftover = old
        else:
            os.rename(stage, out)
            leftover = None
        _fsync_dir(out.parent)
    finally:
        if leftover is not None:
            shutil.rmtree(leftover, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); rename it over ``path`` on success.

    Writing a new inode (never through an existing hard link) keeps the previous set intact.
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    tmp.chmod(0o666 & ~_umask())  # mkstemp makes 0600
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Atomically write ``data`` to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | os.PathLike, obj) -> None:
    """Atomically write ``obj`` as indented JSON to ``path``."""
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())
