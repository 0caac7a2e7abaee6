"""Load figures: peak memory of `mnist-edge predict` over 10k and 100k images, and thread safety.

Peak RSS is the child's own ru_maxrss (checks/measure.py).
Thread safety: N threads share one Classifier and each makes M predict calls of varying batch
sizes; every answer must equal the serial answer for the same images, bit for bit.
"""

from __future__ import annotations

import functools
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from checks.measure import measure
from common.formats import KEYS


def predict_memory(artifacts: Path, x_test: np.ndarray, workdir: Path,
                   counts=(10_000, 100_000)) -> list[dict]:
    """Peak RSS of `mnist-edge predict ARTIFACTS images.npy` for each image count."""
    cli = Path(sys.executable).parent / "mnist-edge"
    rows = []
    for n in counts:
        path = workdir / f"images-{n}.npy"
        np.save(path, np.resize(x_test, (n, 28, 28)))  # the test set repeated
        run = measure([cli, "predict", artifacts, path])
        rows.append({"images": n, "exit_status": run.status,
                     "peak_rss_mib": round(run.peak_rss_mb, 1), "seconds": round(run.wall_s, 1),
                     "npy_mib": round(path.stat().st_size / 2**20, 1)})
        path.unlink()
    return rows


def _answer(clf, images: np.ndarray, job: tuple[int, int]) -> np.ndarray:
    start, n = job
    return clf.predict(images[start:start + n]).raw


def thread_safety(artifacts: Path, x_test: np.ndarray, threads: int = 8, calls: int = 25,
                  keys=KEYS,
                  seed: int = 0) -> list[dict]:
    """For each file: do N threads x M calls on one shared Classifier equal the serial answers?"""
    from mnist_edge import Classifier

    rng = np.random.default_rng(seed)
    jobs = []
    for _ in range(threads * calls):
        n = int(rng.choice([1, 3, 64, 256, 300]))
        start = int(rng.integers(0, len(x_test) - n))
        jobs.append((start, n))
    rows = []
    for key in keys:
        clf = Classifier.load(artifacts, key=key)
        serial = [clf.predict(x_test[s:s + n]).raw for s, n in jobs]
        with ThreadPoolExecutor(threads) as pool:
            parallel = list(pool.map(functools.partial(_answer, clf, x_test), jobs))
        mismatches = sum(not np.array_equal(a, b) for a, b in zip(serial, parallel, strict=True))
        rows.append({"key": key, "backend": clf.backend, "threads": threads, "calls": len(jobs),
                     "mismatches": mismatches})
    return rows


def _answer(clf, images: np.ndarray, job: tuple[int, int]) -> np.ndarray:
    start, n = job
    return clf.predict(images[start:start + n]).raw
