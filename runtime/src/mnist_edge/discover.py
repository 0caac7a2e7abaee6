"""The CLI's inputs as given: image files, folders (walked recursively), .npy arrays, IDX files.

Files are told apart by their content (numpy's and IDX's magic numbers, gzip around IDX), then by
their name; the arrays themselves are read by ``arrays.py``. Symbolic links named on the command
line and links to files are followed; a folder walk follows links to folders only while they
lead to a folder inside the one given (each real folder once, so loops end). Devices, FIFOs and
sockets are refused unopened, and a command's own output folder is never read.
"""

from __future__ import annotations

import gzip
import os
import stat
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mnist_edge.arrays import GZIP_MAGIC, NPY_MAGIC, idx_magic
from mnist_edge.errors import InputError
from mnist_edge.images import IMAGE_SUFFIXES, not_a_file, open_file

SKIPPED_NAMES = ("._",)  # macOS AppleDouble files (resource forks), not images
SKIPPED_FOLDERS = ("__MACOSX",)  # where macOS zips keep them
_ACCEPTED = "pass image files, folders, .npy arrays or IDX files"


@dataclass(frozen=True)
class Source:
    """One input as given: ``kind`` is image, npy, idx, or error (with the message)."""

    path: Path
    kind: str
    error: str | None = None


def expand(args: list[str], outputs: Iterable[Path] = ()) -> Iterator[Source]:
    """Sources in command-line order; folders expand to their image files, sorted.

    ``outputs`` are the folders the command writes into: never walked, and refused if named.
    """
    skip = {key for key in map(_folder_key, outputs) if key is not None}
    for arg in args:
        path = Path(arg)
        if arg == "-":
            yield Source(path, "error", f"reading standard input is not supported; {_ACCEPTED} "
                                        "(a file named '-': ./-)")
            continue
        try:
            mode = os.stat(path).st_mode  # a link's target
        except FileNotFoundError:
            broken = os.path.islink(path)
            yield Source(path, "error", "broken symbolic link (its target does not exist)"
                         if broken else "no such file or folder")
            continue
        except OSError as exc:
            yield Source(path, "error", f"cannot read ({exc.strerror or exc})")
            continue
        if stat.S_ISDIR(mode):
            if _folder_key(path) in skip:
                yield Source(path, "error", "is where this command writes its output "
                                            "(--crops); its files are not read as inputs")
                continue
            yield from _walk(path, skip)
        elif not stat.S_ISREG(mode):  # a device, FIFO or socket: not opened
            yield Source(path, "error", f"is {not_a_file(mode)}, not a file; {_ACCEPTED}")
        else:
            yield _source(path)


def _walk(folder: Path, skip: set[tuple[int, int]]) -> Iterator[Source]:
    """The image files under ``folder``, sorted; links to folders followed only while they lead
    inside ``folder``, each real folder once; folders whose (device, inode) is in ``skip`` left
    out."""
    seen = set(skip)
    _first_visit(folder, seen)
    inside = os.path.realpath(folder)
    problems: list[OSError] = []
    found = False
    for root, dirs, files in os.walk(folder, onerror=problems.append, followlinks=True):
        # real sub-folders are claimed before links to them, then walked in name order
        dirs.sort(key=lambda d: (os.path.islink(os.path.join(root, d)), d))
        outward = [d for d in dirs if not _leads_inside(os.path.join(root, d), inside)]
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_FOLDERS and d not in outward
                         and _first_visit(Path(root) / d, seen))
        for name in sorted(files):
            if Path(name).suffix.lower() in IMAGE_SUFFIXES and not name.startswith(SKIPPED_NAMES):
                found = True
                yield Source(Path(root) / name, "image")  # the image reader refuses odd files
        for name in sorted(outward):
            found = True
            yield Source(Path(root) / name, "error", "a link to a folder outside "
                         f"{folder}; not walked (a folder walk stays inside the folder given)")
        while problems:
            exc = problems.pop(0)
            found = True
            yield Source(Path(exc.filename or root), "error",
                         f"cannot read folder ({exc.strerror or exc})")
    if not found:
        yield Source(folder, "error", "folder holds no image files (.png, .jpg, .bmp, ...)")


def _leads_inside(path: str, inside: str) -> bool:
    """Whether ``path`` (a link's target, if a link) is the folder ``inside`` or lies under it."""
    if not os.path.islink(path):
        return True  # a real sub-folder of a folder inside
    target = os.path.realpath(path)
    return target == inside or target.startswith(inside.rstrip(os.sep) + os.sep)


def _folder_key(folder: Path) -> tuple[int, int] | None:
    """(device, inode) of ``folder`` (a link's target), None if it cannot be read."""
    try:
        st = os.stat(folder)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def _first_visit(folder: Path, seen: set[tuple[int, int]]) -> bool:
    """Whether ``folder`` (a link's target, if a link) is walked for the first time; notes it."""
    key = _folder_key(folder)
    if key is None:
        return True  # os.walk reports it
    if key in seen:
        return False
    seen.add(key)
    return True


def _source(path: Path) -> Source:
    """A regular file as a Source: .npy or IDX (raw or gzipped) by content or name, else image."""
    name = path.name.lower()
    inner, gz_error = b"", None
    try:
        with open_file(path) as fh:
            head = fh.read(8)
            if head[:2] == GZIP_MAGIC:  # what does it hold?
                fh.seek(0)
                try:
                    with gzip.GzipFile(fileobj=fh) as gz:
                        inner = gz.read(8)
                except (OSError, EOFError, zlib.error) as exc:
                    gz_error = f"{type(exc).__name__}: {exc}"
    except InputError as exc:
        return Source(path, "error", str(exc).removeprefix(f"{path}: "))
    idx_name = "idx" in name or name.endswith(("-ubyte", "-ubyte.gz"))
    if head.startswith(NPY_MAGIC) or name.endswith(".npy"):
        return Source(path, "npy")
    if idx_magic(head) or idx_magic(inner) or (idx_name and head[:2] == GZIP_MAGIC):
        return Source(path, "idx")  # the IDX reader says what is wrong with a bad one
    if gz_error:
        return Source(path, "error", f"a gzip file that cannot be decompressed ({gz_error}); "
                                     "it is truncated or corrupt")
    if head[:2] == GZIP_MAGIC:
        if inner.startswith(NPY_MAGIC):
            return Source(path, "error", "a gzipped .npy array; gunzip it first")
        return Source(path, "error", f"gzip-compressed, but not an IDX file; {_ACCEPTED} "
                                     "(IDX may be gzipped)")
    if head[:4] == b"PK\x03\x04":
        if name.endswith(".npz"):
            return Source(path, "error", "an .npz archive (numpy's zip of arrays); the CLI takes "
                                         ".npy arrays: save one with np.save('images.npy', "
                                         f"np.load('{path}')[NAME])")
        return Source(path, "error", f"a zip archive; unpack it, then {_ACCEPTED}")
    if idx_name and path.suffix.lower() not in IMAGE_SUFFIXES:
        return Source(path, "idx")
    return Source(path, "image")
