"""The one child-process worker of the checks: a job per line in, an answer per line out.

    python -m checks.worker          # from the repository, in any venv with numpy and mnist_edge
    python3 checks/worker.py         # as a file where only the runtime is installed
                                     # (an emulated Pi)

Each line on stdin is a job, ``{"job": NAME, ...arguments}``: NAME is one of this file's jobs
(``predict``, ``line_scores``, ...) or a function the caller names as ``"module:function"``
(``job_name``), which the worker imports when asked, so it imports none of its callers. Each job
gets one JSON line back, ``{"ok": true, ...results}`` or ``{"ok": false, "error": "one line"}``
(a MnistEdgeError's own message, else the exception's type and first line). Arrays travel in
.npy/.npz files the job names. Whatever native code prints on fd 1 is sent to stderr, so it
cannot corrupt the answers. The parent side is ``Worker``: when the child dies mid-job the pipe
closes and the job counts as a crash; a job that outlives its timeout is a hang, and the child's
process group is killed.

This file's jobs need only the standard library, numpy and mnist_edge (they run on devices).
"""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

WORKER_FILE = Path(__file__).resolve()
REPO = WORKER_FILE.parents[1]


# ------------------------------------------------------------------------------ the jobs
def environment() -> dict:
    """What this interpreter is and can import: the facts a report shows per device."""
    import importlib.metadata
    import importlib.util
    import platform

    import numpy as np

    import mnist_edge

    def version(dist: str) -> str | None:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    # the CPU features numpy's dispatcher found (CPUID on x86): under qemu, the emulated model's
    core = getattr(np, "_core", None) or getattr(np, "core", None)  # numpy 2.x or 1.x
    features = getattr(getattr(core, "_multiarray_umath", None), "__cpu_features__", {})

    return {"machine": platform.machine(), "python": platform.python_version(),
            "libc": "-".join(platform.libc_ver()), "numpy": np.__version__,
            "mnist_edge": os.path.dirname(mnist_edge.__file__),
            "versions": {d: version(d) for d in ("mnist-edge", "ai-edge-litert", "onnxruntime",
                                                 "tflite-runtime", "numpy")},
            "tensorflow_importable": importlib.util.find_spec("tensorflow") is not None,
            "tensorflow_imported": "tensorflow" in sys.modules,
            "cpu_features": sorted(k for k, v in features.items() if v)}


def predict(manifest: str, key: str, backend: str, images: str, out: str, count: int | None = None,
            batch: int = 256, threads: int = 1) -> dict:
    """Classify the first ``count`` images of an .npy with one manifest file on one backend.

    Writes labels, probabilities and raw outputs to the .npz ``out``; returns the timings.
    """
    import numpy as np

    from mnist_edge import Classifier, backends

    start = time.perf_counter()
    clf = Classifier.load(manifest, backend=backend, threads=threads, key=key)
    load_s = time.perf_counter() - start
    x = np.load(images, allow_pickle=False)[:count]
    clf.predict(x[:batch])  # warm-up: the first call sizes the interpreter's tensors
    labels, probs, raws = [], [], []
    start = time.perf_counter()
    for i in range(0, len(x), batch):
        p = clf.predict(x[i:i + batch])
        labels.append(np.array(p.labels))  # copies: results must not alias interpreter memory
        probs.append(np.array(p.probabilities))
        raws.append(np.array(p.raw))
    seconds = time.perf_counter() - start
    tmp = out + ".partial.npz"
    np.savez(tmp, labels=np.concatenate(labels), probabilities=np.concatenate(probs),
             raw=np.concatenate(raws))
    os.replace(tmp, out)
    return {"backend": clf.backend, "format": clf.format, "precision": clf.precision,
            "runtime": backends.runtime_version(clf.backend), "images": int(len(x)),
            "load_s": load_s, "seconds": seconds}


def gate_scores(manifest: str, key: str, backend: str, images: str, out: str,
                batch: int = 256, threads: int = 1) -> dict:
    """The digit probability of each image of an .npy from one gate file (``gate_`` + the key of
    the classifier file it sits beside) on one backend, as ``predict(refuse=True)`` gives it.

    Writes ``digit_scores`` (float32 [N]) to the .npz ``out``; returns the timings.
    """
    import numpy as np

    from mnist_edge import Classifier, backends

    start = time.perf_counter()
    clf = Classifier.load(manifest, backend=backend, threads=threads,
                          key=key.removeprefix("gate_"))
    load_s = time.perf_counter() - start
    entry = clf.gate.model.entry if clf.gate is not None else None
    loaded = entry.key if entry is not None else None
    if loaded != key:
        raise ValueError(f"{manifest}: asked for the gate file {key} on {backend}, the runtime "
                         f"loaded {loaded or 'no gate'}")
    x = np.load(images, allow_pickle=False)
    scores = []
    start = time.perf_counter()
    for i in range(0, len(x), batch):
        scores.append(np.array(clf.predict(x[i:i + batch], refuse=True).digit_scores,
                               np.float32))
    seconds = time.perf_counter() - start
    tmp = out + ".partial.npz"
    np.savez(tmp, digit_scores=np.concatenate(scores) if scores else np.empty(0, np.float32))
    os.replace(tmp, out)
    return {"backend": clf.backend, "runtime": backends.runtime_version(clf.backend),
            "images": int(len(x)), "load_s": load_s, "seconds": seconds}


def line_scores(manifest: str, key: str, backend: str, strips: str, out: str,
                threads: int = 1) -> dict:
    """Score each strip of an .npz (``strips`` side by side and their ``widths``, as
    ``common.strips.save_lines`` writes them) with one line reader file on one backend.

    Writes the scores of every strip stacked by column, with each strip's column count, to the
    .npz ``out``; returns the timings.
    """
    import numpy as np

    from mnist_edge import backends
    from mnist_edge.linereader import LineReader

    start = time.perf_counter()
    reader = LineReader.load(manifest, key=key, backend=backend, threads=threads)
    load_s = time.perf_counter() - start
    with np.load(strips, allow_pickle=False) as z:
        joined, widths = z["strips"], z["widths"]
    edges = np.concatenate([[0], np.cumsum(widths)])
    parts = [joined[:, a:b] for a, b in zip(edges[:-1], edges[1:], strict=True)]
    start = time.perf_counter()
    scores = [np.array(reader.scores(p)) for p in parts]  # copies, as for predict
    seconds = time.perf_counter() - start
    tmp = out + ".partial.npz"
    np.savez(tmp, scores=np.concatenate(scores), columns=np.array([len(s) for s in scores]))
    os.replace(tmp, out)
    return {"backend": reader.backend, "precision": reader.precision,
            "runtime": backends.runtime_version(reader.backend), "lines": len(parts),
            "load_s": load_s, "seconds": seconds}


def bench_gate(model: str, images: str, **options) -> dict:
    """``mnist_edge.bench.bench_gate`` of one classifier file and its gate on the first image of
    an .npy."""
    import numpy as np

    from mnist_edge.bench import bench_gate as timed

    return timed(model, np.load(images, allow_pickle=False)[0], **options)


def read(manifest: str, key: str, backend: str, numbers: list[str], singles: list[str],
         nondigits: list[str] | None = None) -> dict:
    """The photo path with one manifest file on one backend: ``Classifier.read`` of each number
    photo (number, each digit's box, label, confidence, and whether the "no digit" gate left
    lines out) and ``predict_files`` of the single-digit and non-digit photos (label, error,
    and whether the gate answered "no digit")."""
    from mnist_edge import Classifier

    clf = Classifier.load(manifest, backend=backend, key=key)
    start = time.perf_counter()
    readings = []
    for path in numbers:
        r = clf.read(path)
        readings.append({"number": r.number, "digits": [[*d.box, d.label, round(d.confidence, 6)]
                                                    for d in r.digits],
                         "refused": len(getattr(r, "refused", None) or ())})

    def answers(paths: list[str]) -> list[list]:
        return [[f.label, f.error, getattr(f, "no_digit", None) is not None]
                for f in clf.predict_files(paths)]

    return {"backend": clf.backend, "numbers": readings, "singles": answers(singles),
            "nondigits": answers(nondigits or []), "seconds": time.perf_counter() - start}


def bench(model: str, **options) -> dict:
    """``mnist-edge bench --json`` of one file: its row (load time, latency, throughput, memory)."""
    from mnist_edge.bench import BenchConfig, bench_model

    key = options.pop("key", None)
    return bench_model(model, BenchConfig(**options), key=key)


def bench_reader(model: str, strip: str, **options) -> dict:
    """``mnist_edge.bench.bench_reader`` of one line reader file on the strip of an .npy."""
    import numpy as np

    from mnist_edge.bench import bench_reader as timed

    return timed(model, np.load(strip, allow_pickle=False), **options)


def self_test(manifest: str, backend: str) -> dict:
    """``mnist-edge verify --backend BACKEND``: every file of the folder that ``backend`` runs, on
    the golden set; one row per file (``passed``, ``summary``, the figures; or ``not_run``)."""
    from pathlib import Path

    from mnist_edge.selftest import verify_folder

    rows = []
    for entry, result in verify_folder(Path(manifest), backend):
        if isinstance(result, str):
            rows.append({"key": entry.key, "not_run": result})
        else:
            rows.append({"key": entry.key, "passed": result.passed, "summary": result.summary(),
                         "inputs": result.inputs, "changed": result.changed,
                         "max_diff": result.max_diff, "allowed": result.allowed,
                         "unit": result.unit, "error": result.error})
    return {"files": rows}


JOBS = {"environment": environment, "predict": predict, "gate_scores": gate_scores,
        "line_scores": line_scores, "read": read, "bench": bench, "bench_reader": bench_reader,
        "bench_gate": bench_gate, "self_test": self_test}


def job_name(function: Callable[..., dict]) -> str:
    """The job name of a module's function, ``"module:function"``, for ``{"job": ...}``."""
    return f"{function.__module__}:{function.__qualname__}"


def _job(name: str) -> Callable[..., dict]:
    """The function a job names: this file's own, or ``module:function`` imported now."""
    module, _, function = name.rpartition(":")
    return getattr(importlib.import_module(module), function) if module else JOBS[name]


def serve() -> int:
    """Answer jobs from stdin until it closes."""
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # native prints go to stderr from now on
    sys.stdout = os.fdopen(1, "w", buffering=1)
    for line in sys.stdin:
        job = json.loads(line)
        try:
            answer = {"ok": True, **_job(job.pop("job"))(**job)}
        except Exception as exc:  # reported to the parent, which decides what it means
            from mnist_edge.errors import MnistEdgeError

            text = (str(exc).strip().splitlines() or [""])[0]
            answer = {"ok": False, "error": text if isinstance(exc, MnistEdgeError)
                      else f"{type(exc).__name__}: {text}"}
        answers.write(json.dumps(answer) + "\n")
    return 0


# ------------------------------------------------------------------------------ the parent side
class Worker:
    """A worker child process; ``call`` sends one job and returns its answer, or why there is none.

    ``cmd`` starts the worker: by default this Python on this module from the repository. A
    crash or a hang comes back as ``{"ok": false, "outcome": "crash" | "hang", "error": ...}``
    and the next call starts a new child.
    """

    def __init__(self, python: str = sys.executable, cmd: list[str] | None = None,
                 env: dict | None = None, timeout: float = 900.0):
        self.cmd = cmd or [str(python), "-m", "checks.worker"]
        self.env = env or {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
        self.timeout = timeout
        self.proc: subprocess.Popen | None = None
        self._stderr: IO[bytes] | None = None  # the child's stderr, for the last words of a crash

    def call(self, job: dict, timeout: float | None = None) -> dict:
        """The answer to ``job`` ({"job": NAME, ...})."""
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        try:
            self.proc.stdin.write(json.dumps(job) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout or self.timeout)
        line = self.proc.stdout.readline() if ready else None
        if line:
            return json.loads(line)
        if line is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the worker and anything it started
            answer = {"outcome": "hang", "error": f"no answer in {timeout or self.timeout:.0f} s"}
        else:
            code = self.proc.wait()
            how = f"signal {-code}" if code < 0 else f"exit status {code}"
            answer = {"outcome": "crash", "error": f"worker died with {how}{self._last_words()}"}
        self.proc.wait()
        self.proc = None
        return {"ok": False, **answer}

    def close(self) -> None:
        """End the child (stdin closed, then killed if it does not leave)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> None:
        if self._stderr is not None:  # a previous child's, which crashed or hung
            self._stderr.close()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the child; closed in close())
        self.proc = subprocess.Popen(self.cmd, cwd=REPO, env=self.env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._stderr, text=True,
                                     start_new_session=True)

    def _last_words(self) -> str:
        self._stderr.seek(0)
        lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        return f": {lines[-1][:300]}" if lines else ""


def run_once(python: str, job: dict, timeout: float = 900.0) -> dict:
    """One job in a fresh worker (honest load time and peak memory), which then ends."""
    with Worker(python, timeout=timeout) as worker:
        return worker.call(job)


if __name__ == "__main__":
    sys.exit(serve())
