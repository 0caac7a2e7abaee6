"""All-or-nothing writes to the artifacts folder and the reports, shared by every build tool.

A stage never writes into ``artifacts/`` directly. It gets a staging folder next to it that
already holds (hard links to) the current files, writes its new files there, and then the
staging folder and ``artifacts/`` swap places in one atomic ``renameat2(RENAME_EXCHANGE)``.
A crash or a kill at any moment leaves ``artifacts/`` holding either the previous complete
set or the new complete set, never a mix; leftovers are removed by the next run.

    with publish.exclusive("artifacts"):          # optional: hold the folder for a whole run
        with publish.staging("artifacts") as stage:
            publish.write_json(stage / "metrics.json", metrics)

Publishing replaces the whole folder, so ``staging`` refuses a folder holding anything but an
mnist-edge set (``allowed_names()``). A symlinked folder is published into its target; the
link stays. One run at a time per folder: ``staging`` takes the folder's lock (``exclusive``),
a second run waits for it and refuses after ``LOCK_TIMEOUT_S``. A full disk or a read-only
folder raises ``PublishError`` (a ValueError) and leaves the previous set intact.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import glob
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from common import formats
from common.artifacts import (
    EXPORT_FILES,
    GATE_TRAIN_FILES,
    MANIFEST_FILE,
    READER_TRAIN_FILES,
    TRAIN_FILES,
)

# How long a second run on the same folder waits for the first before refusing: long enough for
# `make train export` started twice (the second run queues behind a whole training run).
LOCK_TIMEOUT_S = 3600.0
_LOCK_POLL_S = 0.2
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_STAGE_PREFIX = ".staging-"
_OLD_PREFIX = ".old-"
_RANDOM = r"[a-z0-9_]{8}"  # tempfile's random part
# Errors of the storage, not of the caller: reported as PublishError in one line.
_STORAGE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO,
                   errno.EACCES, errno.EPERM, errno.EMLINK}
_held: dict[Path, int] = {}  # lock files this process holds -> its pid


class PublishError(ValueError):
    """The disk or folder refused a write (full, read-only); the previous files are intact."""

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.reason = reason or message


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _is_storage_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _STORAGE_ERRORS


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
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # the filesystem cannot exchange
        return False
    raise OSError(err, f"cannot swap {a} and {b}: {os.strerror(err)}")


# --- what may be in an artifacts folder ----------------------------------------------------------

def allowed_names() -> frozenset[str]:
    """The file names an mnist-edge artifacts set holds (training files, exports, their reports,
    manifest)."""
    exported = {f.filename for f in formats.all_formats()}
    return (TRAIN_FILES | READER_TRAIN_FILES | GATE_TRAIN_FILES | exported | EXPORT_FILES
            | {MANIFEST_FILE})


def _is_own_debris(name: str) -> bool:
    """An atomic_path temporary file (``.<stem>-<random><suffix>``) of a known file."""
    for known in allowed_names():
        stem, dot, suffix = known.partition(".")
        if re.fullmatch(rf"\.{re.escape(stem)}-{_RANDOM}{re.escape(dot + suffix)}", name):
            return True
    return False


def _foreign_entries(out: Path) -> list[str]:
    """Entries of ``out`` that mnist-edge did not write (sorted); [] for a missing folder."""
    if not out.is_dir():
        return []
    allowed = allowed_names()
    return sorted(item.name for item in out.iterdir()
                  if not item.is_file() or item.is_symlink()
                  or (item.name not in allowed and not _is_own_debris(item.name)))


def check_folder(out: Path) -> None:
    """Raise ValueError unless ``out`` is missing, empty or holds only an mnist-edge set."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder; choose another artifacts folder "
                         "(--out / --artifacts)")
    foreign = _foreign_entries(out)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5
                                          else "")
        raise ValueError(f"{out}: holds {shown}, which mnist-edge did not write; publishing "
                         "replaces the whole folder, so choose an empty or new artifacts folder "
                         "(--out / --artifacts) or move those out")


# --- one run at a time per folder ----------------------------------------------------------------

def _lock_path(out: Path) -> Path:
    return out.parent / f".{out.name}.lock"


def _holder(lock: Path) -> str:
    with contextlib.suppress(OSError, ValueError):
        return f" (pid {int(lock.read_text())})"
    return ""


def _acquire(lock: Path, out: Path, timeout: float) -> int:
    """An fd holding flock on ``lock``; waits up to ``timeout`` s, then raises ValueError."""
    deadline = time.monotonic() + timeout
    told = False
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() >= deadline:
                raise ValueError(f"{out}: another run{_holder(lock)} is still using it after "
                                 f"{timeout:g} s; wait for it to finish (or stop it), then "
                                 "rerun") from None
            if not told:
                print(f"waiting for another run{_holder(lock)} to finish with {out} ...",
                      file=sys.stderr, flush=True)
                told = True
            time.sleep(_LOCK_POLL_S)
            continue
        # The holder before us removes the lock file on release; a lock on a removed file
        # guards nothing, so make sure the file we locked is still the one at the path.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)


@contextlib.contextmanager
def exclusive(out: str | os.PathLike, timeout: float = LOCK_TIMEOUT_S) -> Iterator[Path]:
    """Hold ``out``'s lock (``.<name>.lock`` beside it) for the block; yields the resolved folder.

    Another process waits (a one-line notice on stderr), and after ``timeout`` seconds raises
    ValueError. Within the process that holds it, ``exclusive`` and ``staging`` pass through.
    Also refuses (ValueError) a folder holding files mnist-edge did not write, so a stage that
    takes the lock at its start fails before any work.
    """
    folder = Path(out).resolve()
    lock = _lock_path(folder)
    if _held.get(lock) == os.getpid():  # already ours (e.g. staging inside a stage's run)
        yield folder
        return
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        fd = _acquire(lock, folder, timeout)
    except OSError as exc:
        if not _is_storage_error(exc):
            raise
        raise PublishError(f"{folder}: cannot lock it ({_reason(exc)}); nothing was changed; "
                           f"make {folder.parent} writable, then rerun", _reason(exc)) from exc
    _held[lock] = os.getpid()  # the pid: a forked child does not inherit the ownership
    try:
        check_folder(folder)
        yield folder
    finally:
        del _held[lock]
        with contextlib.suppress(OSError):
            lock.unlink()  # while still holding it: see _acquire
        os.close(fd)


# --- leftovers of interrupted runs ---------------------------------------------------------------

def _alive(pid: int | None) -> bool:
    """Whether process ``pid`` runs (None: a leftover of an older version, owned by no one)."""
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _leftovers(out: Path, prefix: str, pattern: str) -> list[tuple[Path, int | None]]:
    """(path, owner pid or None for the older unnamed form) of ``out``'s leftovers."""
    found: list[tuple[Path, int | None]] = []
    name = re.escape(out.name)
    for path in out.parent.glob(f"{prefix}{glob.escape(out.name)}-*"):
        match = re.fullmatch(rf"{re.escape(prefix)}{name}-(\d+){pattern}", path.name)
        if match:
            found.append((path, int(match[1])))
        elif prefix == _STAGE_PREFIX and re.fullmatch(rf"{re.escape(prefix)}{name}-{_RANDOM}",
                                                      path.name):
            found.append((path, None))  # written before leftovers carried their run's pid
    return found


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def clean_leftovers(out: str | os.PathLike) -> None:
    """Remove staging folders that an interrupted run left next to ``out``.

    Leftovers carry the pid of the run that made them; those of a live process are kept. If a
    run died between the two renames of the fallback path, the previous set is put back.
    """
    out = Path(out).resolve()
    stages = [p for p, pid in _leftovers(out, _STAGE_PREFIX, f"-{_RANDOM}") if not _alive(pid)]
    olds = sorted((p for p, pid in _leftovers(out, _OLD_PREFIX, "") if not _alive(pid)),
                  key=lambda p: p.lstat().st_mtime)
    if olds and not os.path.lexists(out):
        os.rename(olds.pop(), out)
    for leftover in stages + olds:
        _remove(leftover)


# --- publishing ----------------------------------------------------------------------------------

@contextlib.contextmanager
def staging(out: str | os.PathLike) -> Iterator[Path]:
    """Yield a folder seeded with the current artifacts; publish it atomically on success.

    Raises ValueError for a folder holding files mnist-edge did not write, and PublishError
    when the disk refuses (full, read-only): nothing is published, the previous set is intact.
    """
    with exclusive(out) as folder:
        check_folder(folder)
        try:
            with _swap(folder) as stage:
                yield stage
        except PublishError as exc:
            raise _not_published(folder, exc.reason) from exc
        except OSError as exc:
            if not _is_storage_error(exc):
                raise
            raise _not_published(folder, _reason(exc)) from exc


def check_space(out: str | os.PathLike, need: int, what: str) -> None:
    """Refuse, before long work, an ``out`` whose file system has less than ``need`` bytes free.

    ``out`` may not exist yet: its nearest existing ancestor's file system is asked.
    """
    folder = Path(out).absolute()
    while not folder.exists():
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if free < need:
        raise PublishError(f"{out}: {free / 1e6:.1f} MB free on its disk, {what} needs about "
                           f"{need / 1e6:.1f} MB; nothing was written; free disk space or choose "
                           "another folder, then rerun", "no space left")


def _not_published(out: Path, reason: str) -> PublishError:
    return PublishError(f"{out}: cannot publish ({reason}); nothing was published and the "
                        f"previous set is intact; free disk space or make {out.parent} "
                        "writable, then rerun", reason)


@contextlib.contextmanager
def _swap(out: Path) -> Iterator[Path]:
    """The staging folder of ``out`` (lock held, folder checked), swapped in on success."""
    clean_leftovers(out)
    stage = Path(tempfile.mkdtemp(prefix=f"{_STAGE_PREFIX}{out.name}-{os.getpid()}-",
                                  dir=out.parent))
    leftover: Path | None = stage  # what to remove at the end: the stage, or the swapped-out set
    try:
        stage.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; the published set gets normal modes
        if out.is_dir():
            for item in out.iterdir():  # only the set's own files (checked): no debris
                if item.name in allowed_names():
                    os.link(item, stage / item.name, follow_symlinks=False)
        yield stage
        _fsync_dir(stage)
        if out.is_dir():
            if not _exchange(stage, out):
                # Fallback (no renameat2): two renames; if a run dies between them,
                # clean_leftovers() restores the previous set.
                old = out.parent / f"{_OLD_PREFIX}{out.name}-{os.getpid()}"
                os.rename(out, old)
                try:
                    os.rename(stage, out)
                except OSError:
                    os.rename(old, out)
                    raise
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
    A full disk or a read-only folder raises PublishError; the previous file is then intact.
    """
    path = Path(path)
    tmp: Path | None = None
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix,
                                    dir=path.parent)
        os.close(fd)
        tmp = Path(name)
        tmp.chmod(0o666 & ~_umask())  # mkstemp makes 0600
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if not _is_storage_error(exc):
            raise
        before = (f"the previous {path.name} is intact" if path.exists()
                  else f"no {path.name} was written")
        raise PublishError(f"{path}: cannot write it ({_reason(exc)}); {before}; free disk "
                           f"space or make {path.parent} writable, then rerun",
                           _reason(exc)) from exc
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Atomically write ``data`` to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | os.PathLike, obj) -> None:
    """Atomically write ``obj`` as indented strict JSON to ``path`` (NaN/inf: ValueError)."""
    try:
        text = json.dumps(obj, indent=2, sort_keys=False, allow_nan=False)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc} (NaN or infinity, which strict JSON has no form for); "
                         "nothing was written; fix the value that produced it and rerun") from None
    write_bytes(path, (text + "\n").encode())
