"""Which (format, backend) pairs run here, and running them through the runtime API.

Every pair runs in a worker (``checks/worker.py``): this venv's Python for the backends it can
load, .venv-tflite's for tflite-runtime (numpy<2); images, strips and answers travel in .npy/.npz
files. The classifier's files answer ``predict`` jobs (``Classifier.predict``), the line
reader's ``line_scores`` jobs (``LineReader.scores``).
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from checks.worker import Worker

if TYPE_CHECKING:
    from common.strips import Lines

WORKER_TIMEOUT_S = 900


@dataclass(frozen=True)
class Pair:
    """One exported file (a manifest entry) on one backend."""

    key: str         # manifest / format-table key, e.g. "tflite_int8"
    filename: str    # file name inside the artifacts folder
    fmt: str         # "tflite" or "onnx"
    precision: str   # the format row's: "int8", "float32", "float16", "dynamic-int8"
    backend: str     # runtime backend name

    @property
    def name(self) -> str:
        return f"{self.key} on {self.backend}"


@dataclass
class Run:
    """What a pair answered on the test images, or why it could not run."""

    pair: Pair
    labels: np.ndarray | None = None          # int64 [N]
    probabilities: np.ndarray | None = None   # float32 [N,10]
    scores: list[np.ndarray] | None = None    # a reader's: float32 [W/4, 11] per strip
    digit_scores: np.ndarray | None = None    # a gate's: float32 [N] digit probability
    seconds: float = 0.0
    runtime: str = ""
    error: str | None = None


@dataclass(frozen=True)
class Where:
    """How a backend is reached: this venv's Python, another venv's, or not at all."""

    backend: str
    python: str          # the Python whose worker runs it
    reason: str | None   # why it cannot run (then it is skipped)

    @property
    def usable(self) -> bool:
        return self.reason is None


def locate(backend: str, tflite_python: Path) -> Where:
    """Where ``backend`` runs: here if this Python can load it, else .venv-tflite for
    tflite-runtime."""
    from mnist_edge import backends

    reason = backends.unusable_reason(backend)
    if reason is None:
        return Where(backend, sys.executable, None)
    if backend == "tflite-runtime":
        if Path(tflite_python).is_file():
            return Where(backend, str(tflite_python), None)
        return Where(backend, sys.executable, f"{reason}, and {tflite_python} does not exist "
                                              "(build it with `make runtime-venvs`)")
    return Where(backend, sys.executable, reason)


def plan(files, wheres: list[Where]) -> list[Pair]:
    """Every manifest file on every usable backend of its format, in manifest order."""
    from mnist_edge import backends

    pairs = []
    for entry in files:
        for where in wheres:
            if where.usable and backends.BACKENDS[where.backend].format == entry.format:
                pairs.append(Pair(entry.key, entry.path.name, entry.format, entry.precision,
                                  where.backend))
    return pairs


def run_pairs(pairs: list[Pair], wheres: dict[str, Where], artifacts: Path,
              images: np.ndarray | Lines, log=print) -> list[Run]:
    """Run every pair on ``images`` (uint8 [N,28,28] for the classifier's files, the strips of
    ``Lines`` for the reader's), one worker per Python; errors are recorded."""
    from common.strips import Lines, save_lines

    runs = []
    with tempfile.TemporaryDirectory(prefix="parity-") as tmp:
        if isinstance(images, Lines):
            save_lines(images, Path(tmp) / "lines.npz")
        else:
            np.save(Path(tmp) / "images.npy", images)
        workers: dict[str, Worker] = {}
        try:
            for pair in pairs:
                python = wheres[pair.backend].python
                worker = workers.setdefault(python, Worker(python, timeout=WORKER_TIMEOUT_S))
                runs.append(_run(worker, pair, Path(artifacts).resolve(), Path(tmp),
                                 "" if python == sys.executable
                                 else f" ({Path(python).parents[1].name})"))
                log(_line(runs[-1]))
        finally:
            for worker in workers.values():
                worker.close()
    return runs


def _run(worker: Worker, pair: Pair, artifacts: Path, tmp: Path, where: str) -> Run:
    from common.formats import GATE_KEYS

    out = tmp / f"{pair.key}-{pair.backend}.npz"
    lines, gate = tmp / "lines.npz", pair.key in GATE_KEYS
    job = ({"job": "line_scores", "strips": str(lines)} if lines.is_file()
           else {"job": "gate_scores" if gate else "predict", "images": str(tmp / "images.npy")})
    answer = worker.call({**job, "manifest": str(artifacts), "key": pair.key,
                          "backend": pair.backend, "out": str(out)})
    if not answer["ok"]:
        return Run(pair, error=answer["error"])
    seconds, runtime = answer["load_s"] + answer["seconds"], answer["runtime"] + where
    with np.load(out, allow_pickle=False) as npz:
        if lines.is_file():
            edges = np.cumsum(npz["columns"])[:-1]
            return Run(pair, scores=list(np.split(npz["scores"].astype(np.float32), edges)),
                       seconds=seconds, runtime=runtime)
        if gate:
            return Run(pair, digit_scores=npz["digit_scores"].astype(np.float32),
                       seconds=seconds, runtime=runtime)
        return Run(pair, npz["labels"].astype(np.int64), npz["probabilities"].astype(np.float32),
                   seconds=seconds, runtime=runtime)


def _line(run: Run) -> str:
    if run.error:
        return f"  {run.pair.name:<32} ERROR {run.error}"
    return f"  {run.pair.name:<32} {run.seconds:6.1f} s  ({run.runtime})"
