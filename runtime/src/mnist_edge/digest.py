"""sha256 of bytes and files: the one hashing helper of the project (runtime, build stages, checks).

CPython's built-in sha256 module is used where it exists because ``hashlib`` loads OpenSSL's
libcrypto: 3.6 MB of resident memory on a device for one hash of a model file.
"""

from __future__ import annotations

import os
from typing import Any, Callable


def _sha256() -> Callable[..., Any]:
    try:
        from _sha256 import sha256  # type: ignore[import-not-found]  # CPython <= 3.11, no stub
    except ImportError:
        try:
            from _sha2 import sha256  # type: ignore[import-not-found]  # CPython >= 3.12, no stub
        except ImportError:
            from hashlib import sha256
    return sha256  # type: ignore[no-any-return]  # the modules above have no type information


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    digest: str = _sha256()(data).hexdigest()
    return digest


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes, read in blocks."""
    digest = _sha256()()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    text: str = digest.hexdigest()
    return text
