"""Silence what native libraries write straight to file descriptors 1 and 2.

Interpreters and TensorFlow log from C++ ("Created TensorFlow Lite XNNPACK delegate ...",
oneDNN notices) to the descriptors themselves, past ``sys.stderr``, so the descriptors are
pointed at /dev/null for the duration. The runtime, the build stages and the checks use this one
helper.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def silenced(fds: tuple[int, ...] = (2,)) -> Iterator[None]:
    """Point ``fds`` at /dev/null meanwhile; left alone where a descriptor is unusable."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        saved = [os.dup(fd) for fd in fds]
    except OSError:  # no usable descriptor (embedded interpreters): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in fds:
            os.dup2(devnull, fd)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip(fds, saved):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)


def verbose() -> bool:
    """True when MNIST_EDGE_VERBOSE asks to keep the native libraries' logs."""
    return bool(os.environ.get("MNIST_EDGE_VERBOSE"))
