"""Fuzz the runtime: bad arrays, mutated image files, the CLI, mutated model files and manifests.

    python -m reliability fuzz --cases 10000           # make fuzz: ~10k cases over every target
    python -m reliability fuzz --cases 500 --target model

Cases run in a child worker (reliability/worker.py). When the worker dies the case in flight is
counted as a crash and a new worker takes over; a case that takes longer than --timeout is a
hang. A failure is a crash, a hang, or an outcome other than a result or a clear one-line
MnistEdgeError. The ``model-tflite-runtime`` target runs the worker in .venv-tflite.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.artifacts import ROOT
from common.formats import FORMATS, KEYS
from reliability import mutate

SUFFIX = {f.key: Path(f.filename).suffix for f in FORMATS}
IMAGES = ("digit.png", "digit.jpg", "digit.bmp", "photo.png", "photo.jpg", "gray16.png")
ARRAY_DTYPES = ("uint8", "int8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
                "float16", "float32", "float64", "longdouble", "bool", "complex64", "U3")
ARRAY_LAYOUTS = ("c", "c", "c", "fortran", "strided", "readonly", "list", "object", "scalar", "bytes")
# Share of the cases of a run that each target gets (tflite-runtime loads each file in a child
# process, about a second per case, so it gets few).
SHARES = {"arrays": 0.25, "images": 0.25, "cli": 0.12, "model": 0.23, "manifest": 0.13,
          "model-tflite-runtime": 0.02}
TFLITE_PYTHON = ROOT / ".venv-tflite" / "bin" / "python"


@dataclass
class Tally:
    """Cases of one target and how they ended."""

    tried: int = 0
    outcomes: Counter = field(default_factory=Counter)  # ok, error, bad, crash, hang
    contained: int = 0      # interpreter crashes caught by the runtime's child-process probe
    examples: list = field(default_factory=list)        # (spec, detail) of failures, first few
    seconds: float = 0.0

    @property
    def failures(self) -> int:
        return self.outcomes["bad"] + self.outcomes["crash"] + self.outcomes["hang"]

    def as_dict(self) -> dict:
        return {"tried": self.tried, **{k: self.outcomes[k] for k in ("ok", "error", "bad", "crash", "hang")},
                "failures": self.failures, "contained_crashes": self.contained,
                "seconds": round(self.seconds, 1), "examples": self.examples}


class WorkerProcess:
    """A reliability.worker child; ``run`` returns its answer or a crash/hang outcome."""

    def __init__(self, artifacts: Path, corpus: Path, python: str = sys.executable,
                 timeout: float = 120.0):
        self.cmd = [str(python), "-m", "reliability.worker", "--artifacts", str(artifacts),
                    "--corpus", str(corpus)]
        self.timeout = timeout
        self.proc: subprocess.Popen | None = None
        self.restarts = 0

    def _start(self) -> subprocess.Popen:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
        return subprocess.Popen(self.cmd, cwd=ROOT, env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                start_new_session=True)

    def run(self, target: str, spec: dict) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        try:
            self.proc.stdin.write(json.dumps({"target": target, "spec": spec}) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
        line = self.proc.stdout.readline() if ready else None
        if line:
            return json.loads(line)
        if line is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the worker and any probe it started
            outcome = {"outcome": "hang", "detail": f"no answer in {self.timeout:.0f} s"}
        else:
            code = self.proc.wait()
            outcome = {"outcome": "crash", "detail": f"worker died with {_status(code)}"}
        self.proc.wait()
        self.proc, self.restarts = None, self.restarts + 1
        return outcome

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None


def _status(code: int) -> str:
    return f"signal {-code}" if code < 0 else f"exit status {code}"


# ------------------------------------------------------------------------------ random cases
def _frac(rng: np.random.Generator) -> float:
    """A position: anywhere, near the start (headers, tables) or near the end."""
    where = rng.integers(3)
    f = rng.random()
    return float(f if where == 0 else f * 0.02 if where == 1 else 1 - f * 0.02)


def random_ops(rng: np.random.Generator, image: bool = False) -> list:
    """One to three mutations."""
    ops = []
    for _ in range(int(rng.integers(1, 4))):
        kind = rng.choice(["truncate", "flip", "flip", "set", "header", "header", "append",
                           "random", "empty", *(["dims", "dims"] if image else [])])
        if kind == "truncate":
            ops.append(["truncate", float(rng.random())])
        elif kind == "flip":
            ops.extend(["flip", _frac(rng), int(rng.integers(8))] for _ in range(int(rng.integers(1, 9))))
        elif kind == "set":
            ops.append(["set", _frac(rng), int(rng.choice([0, 0xFF, 0x7F, 0x80, rng.integers(256)]))])
        elif kind == "header":
            ops.append(["header", int(rng.integers(64)), int(rng.integers(256))])
        elif kind == "append":
            ops.append(["append", int(rng.choice([1, 7, 100, 5000])), int(rng.integers(1 << 30))])
        elif kind == "random":
            ops.append(["random", int(rng.choice([1, 16, 200, 30000])), int(rng.integers(1 << 30))])
            break
        elif kind == "empty":
            ops.append(["empty"])
            break
        else:
            w, h = mutate.HUGE_DIMS[int(rng.integers(len(mutate.HUGE_DIMS)))]
            ops.insert(0, ["dims", w, h])
    return ops


def random_spec(target: str, rng: np.random.Generator) -> dict:
    """A random case for ``target``."""
    if target == "arrays":
        n = int(rng.choice([0, 1, 2, 7, 255, 256, 257, 600]))
        shape = [[28, 28], [n, 28, 28], [n, 28, 28, 1], [28, 28, 1], [n, 28], [28], [],
                 [n, 1, 28, 28], [n, 28, 28, 3], [n, 27, 28], [1, 28, 28, 1, 1]][int(rng.integers(11))]
        if rng.random() < 0.5:
            shape = [[28, 28], [n, 28, 28], [n, 28, 28, 1]][int(rng.integers(3))]
        from reliability.worker import ARRAY_FILLS

        return {"dtype": str(rng.choice(ARRAY_DTYPES)), "shape": shape,
                "fill": str(rng.choice(ARRAY_FILLS)), "seed": int(rng.integers(1 << 30)),
                "layout": str(rng.choice(ARRAY_LAYOUTS)), "key": str(rng.choice(KEYS))}
    if target in ("images", "cli"):
        bases = IMAGES + (("digits.npy", "digits-idx3-ubyte") if target == "cli" else ())
        base = str(rng.choice(bases))
        natural = Path(base).suffix or ""
        suffix = natural if rng.random() < 0.8 else str(rng.choice([".png", ".jpg", ".bmp", ".npy", ".gif"]))
        spec = {"base": base, "ops": random_ops(rng, image=True), "suffix": suffix}
        if target == "cli":
            spec["args"] = [[], ["--json"], ["--top-k", "3"]][int(rng.integers(3))]
        return spec
    if target.startswith("model"):
        base = str(rng.choice(KEYS)) if rng.random() < 0.9 else str(rng.choice(IMAGES))
        own = SUFFIX.get(base, ".tflite")
        swapped = {".tflite": ".onnx", ".onnx": ".tflite"}[own]
        suffix = own if rng.random() < 0.8 else str(rng.choice([swapped, ".bin"]))
        ops = random_ops(rng) if rng.random() < 0.9 else []  # unmutated but possibly swapped
        spec = {"base": base, "ops": ops, "suffix": suffix}
        if target == "model-tflite-runtime":
            spec["backend"] = "tflite-runtime" if own == ".tflite" or suffix == ".tflite" else "onnxruntime"
            if base not in ("tflite_int8", "tflite_float32"):
                spec["base"] = str(rng.choice(["tflite_int8", "tflite_float32"]))
            spec["suffix"] = ".tflite"
        return spec
    if target == "manifest":
        mode = str(rng.choice(["file", "file", "json", "rehash"]))
        return {"mode": mode, "key": str(rng.choice(KEYS)), "ops": random_ops(rng)}
    raise ValueError(f"unknown fuzz target {target!r}; choose one of {', '.join(SHARES)}")


def worker_target(target: str) -> str:
    """The worker method that runs ``target``."""
    return "model" if target.startswith("model") else target


# ------------------------------------------------------------------------------ the run
def prepare(workdir: Path, data: str | None = None) -> tuple[Path, Path]:
    """(artifacts, corpus): the test artifacts (common/testmodels.py) and the image seed corpus."""
    from common.data import load_mnist
    from common.testmodels import ensure_test_artifacts

    artifacts = ensure_test_artifacts()
    corpus = mutate.build_corpus(workdir / "corpus", load_mnist(data).x_test[:8])
    return artifacts, corpus


def fuzz(total: int, workdir: Path, targets: list[str] | None = None, seed: int = 0,
         timeout: float = 120.0, data: str | None = None, log=print) -> dict[str, Tally]:
    """Run about ``total`` cases split over ``targets`` by SHARES; returns a Tally per target."""
    artifacts, corpus = prepare(workdir, data)
    targets = targets or list(SHARES)
    weight = sum(SHARES[t] for t in targets)
    tallies: dict[str, Tally] = {}
    for i, target in enumerate(targets):
        count = max(1, round(total * SHARES[target] / weight))
        python = sys.executable
        if target == "model-tflite-runtime":
            if not TFLITE_PYTHON.exists():
                log(f"{target}: skipped ({TFLITE_PYTHON} missing; make runtime-venvs)")
                continue
            python = str(TFLITE_PYTHON)
        worker = WorkerProcess(artifacts, corpus, python, timeout)
        rng = np.random.default_rng([seed, i])
        tally = tallies.setdefault(target, Tally())
        start = time.perf_counter()
        try:
            for _ in range(count):
                spec = random_spec(target, rng)
                answer = worker.run(worker_target(target), spec)
                record(tally, spec, answer)
        finally:
            worker.close()
        tally.seconds = time.perf_counter() - start
        log(format_row(target, tally))
    return tallies


def record(tally: Tally, spec: dict, answer: dict) -> None:
    """Count one answer."""
    tally.tried += 1
    tally.outcomes[answer["outcome"]] += 1
    tally.contained += bool(answer.get("contained"))
    if answer["outcome"] in ("bad", "crash", "hang") and len(tally.examples) < 5:
        tally.examples.append({"spec": spec, "outcome": answer["outcome"], "detail": answer["detail"]})


HEADER = f"{'target':<22}{'cases':>7}{'result':>8}{'refused':>9}{'failed':>8}{'crashes':>9}{'contained':>11}{'s':>7}"


def format_row(target: str, t: Tally) -> str:
    return (f"{target:<22}{t.tried:>7}{t.outcomes['ok']:>8}{t.outcomes['error']:>9}{t.failures:>8}"
            f"{t.outcomes['crash']:>9}{t.contained:>11}{t.seconds:>7.0f}")
