"""sha256 of bytes and files: the one hashing helper of the project (runtime, build stages, checks).

CPython's built-in sha256 module is used where it exists because ``hashlib`` loads OpenSSL's
libcrypto: 3.6 MB of resident memory on a device for one hash of a model file.
"""

from __future__ import annotations

import os


def _sha256():
    try:
        from _sha256 import sha256  # CPython <= 3.11
    except ImportError:
        try:
            from _sha2 import sha256  # CPython >= 3.12
        except ImportError:
            from hashlib import sha256
    return sha256


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return _sha256()(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in blocks."""
    digest = _sha256()()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
