"""Which (format, backend) pairs run here, and running them through the runtime API.

Backends this Python can load run in-process; tflite-runtime (numpy<2) runs under the Python
of .venv-tflite through ``python -m parity.worker``, with images and results in .npy/.npz files.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from parity import worker
from common.artifacts import ROOT

WORKER_TIMEOUT_S = 900


@dataclass(frozen=True)
class Pair:
    """One exported file (a manifest entry) on one backend."""

    key: str         # manifest / format-table key, e.g. "tflite_int8"
    filename: str    # file name inside the artifacts folder
    fmt: str         # "tflite" or "onnx"
    precision: str   # "int8" or "float32"
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
    seconds: float = 0.0
    runtime: str = ""
    error: str | None = None


@dataclass(frozen=True)
class Where:
    """How a backend is reached: in this process, in another venv's Python, or not at all."""

    backend: str
    python: str | None   # None: this process
    reason: str | None   # why it cannot run (then it is skipped)

    @property
    def usable(self) -> bool:
        return self.reason is None


def locate(backend: str, tflite_python: Path) -> Where:
    """Where ``backend`` runs: here if this Python can load it, else .venv-tflite for tflite-runtime."""
    from mnist_edge import backends

    reason = backends.unusable_reason(backend)
    if reason is None:
        return Where(backend, None, None)
    if backend == "tflite-runtime":
        if Path(tflite_python).is_file():
            return Where(backend, str(tflite_python), None)
        return Where(backend, None, f"{reason}, and {tflite_python} does not exist "
                                    "(build it with `make runtime-venvs`)")
    return Where(backend, None, reason)


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
              images: np.ndarray, log=print) -> list[Run]:
    """Run every pair on ``images`` (uint8 [N,28,28]); errors are recorded, not raised."""
    from mnist_edge import MnistEdgeError

    runs: dict[Pair, Run] = {}
    remote: dict[str, list[Pair]] = {}
    if any(p.backend == "tensorflow" and wheres[p.backend].python is None for p in pairs):
        from common.tf import import_tensorflow

        import_tensorflow()  # first import here, with its C++ start-up log hidden
    for pair in pairs:
        where = wheres[pair.backend]
        if where.python is not None:
            remote.setdefault(where.python, []).append(pair)
            continue
        try:
            r = worker.predict(artifacts, pair.key, pair.backend, images)
            runs[pair] = Run(pair, r["labels"], r["probabilities"], r["seconds"], r["runtime"])
        except MnistEdgeError as exc:
            runs[pair] = Run(pair, error=str(exc))
        log(_line(runs[pair]))
    for python, group in remote.items():
        for run in _run_in(python, group, artifacts, images):
            runs[run.pair] = run
            log(_line(run))
    return [runs[p] for p in pairs]


def _line(run: Run) -> str:
    if run.error:
        return f"  {run.pair.name:<32} ERROR {run.error}"
    return f"  {run.pair.name:<32} {run.seconds:6.1f} s  ({run.runtime})"


def _run_in(python: str, pairs: list[Pair], artifacts: Path, images: np.ndarray) -> list[Run]:
    """Run pairs under another Python (one process per backend), exchanging .npy/.npz files."""
    runs = []
    with tempfile.TemporaryDirectory(prefix="parity-") as tmp:
        tmp = Path(tmp)
        np.save(tmp / "images.npy", images)
        by_backend: dict[str, list[Pair]] = {}
        for pair in pairs:
            by_backend.setdefault(pair.backend, []).append(pair)
        for backend, group in by_backend.items():
            out = tmp / backend
            out.mkdir()
            cmd = [python, "-m", "parity.worker", "--artifacts", str(Path(artifacts).resolve()),
                   "--backend", backend, "--keys", ",".join(p.key for p in group),
                   "--images", str(tmp / "images.npy"), "--out", str(out)]
            failure = _call(cmd)
            results = {} if failure else json.loads((out / worker.RESULTS_FILE).read_text())
            for pair in group:
                r = results.get(pair.key, {"error": failure or "the worker returned no result"})
                if "error" in r:
                    runs.append(Run(pair, error=r["error"]))
                    continue
                with np.load(out / f"{pair.key}.npz", allow_pickle=False) as npz:
                    runs.append(Run(pair, npz["labels"].astype(np.int64),
                                    npz["probabilities"].astype(np.float32), r["seconds"],
                                    f"{r['runtime']} ({Path(python).parents[1].name})"))
    return runs


def _call(cmd: list[str]) -> str | None:
    """Run the worker; None on success, else a one-line reason."""
    try:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"{cmd[0]} -m parity.worker did not finish in {WORKER_TIMEOUT_S} s"
    except OSError as exc:
        return f"cannot start {cmd[0]} ({exc})"
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or [""])[-1][:300]
        return f"{cmd[0]} -m parity.worker exited {done.returncode}: {tail}"
    return None

