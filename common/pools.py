"""Worker processes for the data generators (lines, non-digits).

Workers are started fresh ("spawn"), never forked: the callers run beside TensorFlow, and a
forked copy of a process that holds TensorFlow's threads can abort or hang when it frees a
TensorFlow object it inherited. A worker that dies fails the whole map with
``BrokenProcessPool`` instead of leaving the caller waiting for its answer.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any


def workers(n: int, initializer: Callable[..., None], initargs: tuple[Any, ...]
            ) -> ProcessPoolExecutor:
    """``n`` fresh processes, each running ``initializer(*initargs)`` once before its jobs."""
    return ProcessPoolExecutor(n, mp_context=mp.get_context("spawn"), initializer=initializer,
                               initargs=initargs)
