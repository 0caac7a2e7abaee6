"""Fuzz the runtime: bad arrays, mutated image files, the CLI, mutated model files and manifests,
damaged video files.

    python -m checks.reliability fuzz --cases 25000           # make fuzz: ~25k cases
                                                              # over every target
    python -m checks.reliability fuzz --cases 500 --target model

Cases run as ``fuzz`` jobs of a child worker (checks/worker.py, cases.py). When the worker dies
the case in flight is counted as a crash and a new worker takes over; a case that takes longer
than --timeout is a hang. A failure is a crash, a hang, or an outcome other than a result or a
clear one-line MnistEdgeError. The ``model-tflite-runtime`` target runs the worker in .venv-tflite.
"""

from __future__ import annotations

import copy
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from checks.reliability import headers, hostile, mutate, untrusted, video
from checks.reliability.cases import ARRAY_FILLS, run_case
from checks.worker import Worker, job_name
from common.artifacts import MANIFEST_FILE, ROOT
from common.formats import FORMATS, KEYS
from mnist_edge.digest import sha256_hex
from mnist_edge.formats import KINDS
from mnist_edge.manifest import read_manifest

SUFFIX = {f.key: Path(f.filename).suffix for f in FORMATS}
TFLITE_KEYS = [f.key for f in FORMATS if f.kind == "tflite"]  # what tflite-runtime runs
IMAGES = ("digit.png", "digit.jpg", "digit.bmp", "photo.png", "photo.jpg", "gray16.png")
ARRAY_DTYPES = ("uint8", "int8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
                "float16", "float32", "float64", "longdouble", "bool", "complex64", "U3")
ARRAY_LAYOUTS = ("c", "c", "c", "fortran", "strided", "readonly", "list", "object", "scalar",
                 "bytes")
# Share of the cases of a run that each target gets (tflite-runtime loads each file in a child
# process, about a second per case, so it gets few); every class (hostile.CLASSES) gets at least
# 1,000 of the default 25,000 cases.
SHARES = {"arrays": 0.16, "images": 0.16, "cli": 0.08, "model": 0.15, "manifest": 0.08,
          "model-tflite-runtime": 0.013, "environment": 0.05, "filesystem": 0.06,
          "decoders": 0.06, "resources": 0.06, "api": 0.06, "consistency": 0.05,
          "crops": 0.05, "walk": 0.05, "forging": 0.05, "headers": 0.05, "video": 0.05}
SHARES_OF_BYTES = ("arrays", "images", "cli", "model", "manifest", "model-tflite-runtime")
SHORT_TIMEOUT_S = 30  # a file-system case that blocks (a FIFO opened) is a hang after this
# a walk of / would not end either, nor a crafted header that takes minutes
SHORT_TIMEOUT = ("filesystem", "crops", "walk", "forging", "headers", "video")
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
        return {"tried": self.tried,
                **{k: self.outcomes[k] for k in ("ok", "error", "bad", "crash", "hang")},
                "failures": self.failures, "contained_crashes": self.contained,
                "seconds": round(self.seconds, 1), "examples": self.examples}


class CaseRunner:
    """Writes each case's input into a scratch folder and runs it as a ``fuzz`` job of a worker.

    ``run`` returns {"outcome", "detail", "contained"}; a worker that dies mid-case is a crash,
    one that does not answer in ``timeout`` seconds a hang (then a new worker takes over).
    """

    def __init__(self, artifacts: Path, corpus: Path, python: str = sys.executable,
                 timeout: float = 120.0):
        self.artifacts, self.corpus = Path(artifacts), Path(corpus)
        self.export = read_manifest(self.artifacts)
        self.files = {e.key: e.path for e in self.export.files}
        self.scratch = Path(tempfile.mkdtemp(prefix="mnist-edge-fuzz-"))
        self.worker = Worker(python, timeout=timeout)

    def run(self, target: str, spec: dict) -> dict:
        """The outcome of one case of ``target`` ("model-..." targets are model cases)."""
        shutil.rmtree(self.scratch, ignore_errors=True)
        self.scratch.mkdir()
        if target in untrusted.CLASSES:
            case = untrusted.build_case(target, spec, self.scratch, self.artifacts, self.corpus)
        elif target == "headers":
            case = headers.build_case(spec, self.scratch, self.artifacts, self.corpus)
        elif target == "video":
            case = video.build_case(spec, self.scratch, self.artifacts, self.corpus)
        elif target not in SHARES_OF_BYTES:
            case = hostile.build_case(target, spec, self.scratch, self.artifacts, self.corpus)
        else:
            case = self._case(target.split("-")[0] if target.startswith("model") else target, spec)
        timeout = SHORT_TIMEOUT_S if target in SHORT_TIMEOUT else None
        answer = self.worker.call({"job": job_name(run_case), **case}, timeout=timeout)
        if answer.pop("ok"):
            return answer
        return {"outcome": answer.get("outcome", "bad"), "detail": answer["error"],
                "contained": False}

    def close(self) -> None:
        self.worker.close()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def _case(self, target: str, spec: dict) -> dict:
        """The job's arguments: the spec turned into the files the runtime will meet."""
        artifacts = str(self.artifacts)
        if target == "arrays":
            return {"target": target, "artifacts": artifacts, "spec": spec}
        if target == "manifest":
            return {"target": target, "folder": str(self._folder(spec)),
                    "key": None if spec["mode"] == "json" else spec.get("key")}
        default = ".tflite" if target == "model" else ".png"
        path = self.scratch / f"case{spec.get('suffix', default)}"
        base = spec["base"]
        path.write_bytes(mutate.apply((self.files.get(base) or self.corpus / base).read_bytes(),
                                      spec["ops"]))
        if target == "images":
            return {"target": target, "artifacts": artifacts, "path": str(path)}
        if target == "cli":
            return {"target": target, "artifacts": artifacts, "path": str(path),
                    "args": spec.get("args", [])}
        return {"target": target, "path": str(path), "backend": spec.get("backend", "auto"),
                "probe": spec.get("probe")}

    def _folder(self, spec: dict) -> Path:
        """A copy of the artifacts with one file mutated (rehashed into the manifest when asked),
        or with the manifest's JSON mutated."""
        folder = self.scratch / "artifacts"
        folder.mkdir()
        mode, key = spec["mode"], spec.get("key")
        meta = copy.deepcopy(self.export.data)
        for entry in meta["files"]:
            src, dst = self.artifacts / entry["path"], folder / entry["path"]
            if mode != "json" and entry["key"] == key:
                data = mutate.apply(src.read_bytes(), spec["ops"])
                dst.write_bytes(data)
                if mode == "rehash":  # an export that was corrupted before its manifest was written
                    entry["size"], entry["sha256"] = len(data), sha256_hex(data)
            else:
                hostile.link_or_copy(src, dst)
        text = json.dumps(meta).encode()
        (folder / MANIFEST_FILE).write_bytes(mutate.apply(text, spec["ops"]) if mode == "json"
                                             else text)
        return folder


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
            ops.extend(["flip", _frac(rng), int(rng.integers(8))]
                       for _ in range(int(rng.integers(1, 9))))
        elif kind == "set":
            ops.append(["set", _frac(rng),
                        int(rng.choice([0, 0xFF, 0x7F, 0x80, rng.integers(256)]))])
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
    if target in untrusted.CLASSES:
        return untrusted.random_spec(target, rng)
    if target == "headers":
        return headers.random_spec(rng)
    if target == "video":
        return video.random_spec(rng, random_ops)
    if target not in SHARES_OF_BYTES and target in SHARES:
        return hostile.random_spec(target, rng)
    if target == "arrays":
        n = int(rng.choice([0, 1, 2, 7, 255, 256, 257, 600]))
        shape = [[28, 28], [n, 28, 28], [n, 28, 28, 1], [28, 28, 1], [n, 28], [28], [],
                 [n, 1, 28, 28], [n, 28, 28, 3], [n, 27, 28],
                 [1, 28, 28, 1, 1]][int(rng.integers(11))]
        if rng.random() < 0.5:
            shape = [[28, 28], [n, 28, 28], [n, 28, 28, 1]][int(rng.integers(3))]
        return {"dtype": str(rng.choice(ARRAY_DTYPES)), "shape": shape,
                "fill": str(rng.choice(ARRAY_FILLS)), "seed": int(rng.integers(1 << 30)),
                "layout": str(rng.choice(ARRAY_LAYOUTS)), "key": str(rng.choice(KEYS))}
    if target in ("images", "cli"):
        bases = IMAGES + (("digits.npy", "digits-idx3-ubyte") if target == "cli" else ())
        base = str(rng.choice(bases))
        natural = Path(base).suffix or ""
        suffix = (natural if rng.random() < 0.8
                  else str(rng.choice([".png", ".jpg", ".bmp", ".npy", ".gif"])))
        spec = {"base": base, "ops": random_ops(rng, image=True), "suffix": suffix}
        if target == "cli":
            spec["args"] = [[], ["--json"], ["--top-k", "3"]][int(rng.integers(3))]
        return spec
    if target.startswith("model"):
        base = str(rng.choice(KEYS)) if rng.random() < 0.9 else str(rng.choice(IMAGES))
        own = SUFFIX.get(base, ".tflite")
        swapped = [k.suffix for k in KINDS if k.suffix != own]
        suffix = own if rng.random() < 0.8 else str(rng.choice([*swapped, ".bin"]))
        ops = random_ops(rng) if rng.random() < 0.9 else []  # unmutated but possibly swapped
        spec = {"base": base, "ops": ops, "suffix": suffix}
        if target == "model-tflite-runtime":
            spec["backend"] = ("tflite-runtime" if own == ".tflite" or suffix == ".tflite"
                               else "onnxruntime")
            if base not in TFLITE_KEYS:
                spec["base"] = str(rng.choice(TFLITE_KEYS))
            spec["suffix"] = ".tflite"
            # the default: a file no manifest vouches for is refused on tflite-runtime, every
            # time (probe=True, trying it in a child first, is best effort and not fuzzed)
        return spec
    if target == "manifest":
        mode = str(rng.choice(["file", "file", "json", "rehash"]))
        return {"mode": mode, "key": str(rng.choice(KEYS)), "ops": random_ops(rng)}
    raise ValueError(f"unknown fuzz target {target!r}; choose one of {', '.join(SHARES)}")


# ------------------------------------------------------------------------------ the run
def prepare(workdir: Path, data: str | None = None,
            videos: bool = True) -> tuple[Path, Path]:
    """(artifacts, corpus): the test artifacts (checks/testmodels.py) and the seed corpus (images,
    and the video seeds when ``videos``)."""
    from checks.testmodels import ensure_test_artifacts
    from common.data import load_mnist
    from common.photos import split_digits

    artifacts = ensure_test_artifacts()
    mnist = load_mnist(data)
    corpus = mutate.build_corpus(workdir / "corpus", mnist.x_test[:8])
    if videos:
        video.build_seeds(corpus, split_digits(mnist, "test"), artifacts)
    return artifacts, corpus


def fuzz(total: int, workdir: Path, targets: list[str] | None = None, seed: int = 0,
         timeout: float = 120.0, data: str | None = None, log=print) -> dict[str, Tally]:
    """Run about ``total`` cases split over ``targets`` by SHARES; returns a Tally per target."""
    targets = targets or list(SHARES)
    artifacts, corpus = prepare(workdir, data, videos="video" in targets)
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
        runner = CaseRunner(artifacts, corpus, python, timeout)
        rng = np.random.default_rng([seed, i])
        tally = tallies.setdefault(target, Tally())
        start = time.perf_counter()
        try:
            for _ in range(count):
                spec = random_spec(target, rng)
                record(tally, spec, runner.run(target, spec))
        finally:
            runner.close()
        tally.seconds = time.perf_counter() - start
        log(format_row(target, tally))
    return tallies


def record(tally: Tally, spec: dict, answer: dict) -> None:
    """Count one answer."""
    tally.tried += 1
    tally.outcomes[answer["outcome"]] += 1
    tally.contained += bool(answer.get("contained"))
    if answer["outcome"] in ("bad", "crash", "hang") and len(tally.examples) < 5:
        tally.examples.append({"spec": spec, "outcome": answer["outcome"],
                               "detail": answer["detail"]})


HEADER = (f"{'target':<22}{'cases':>7}{'result':>8}{'refused':>9}{'failed':>8}{'crashes':>9}"
          f"{'contained':>11}{'s':>7}")


def format_row(target: str, t: Tally) -> str:
    return (f"{target:<22}{t.tried:>7}{t.outcomes['ok']:>8}{t.outcomes['error']:>9}{t.failures:>8}"
            f"{t.outcomes['crash']:>9}{t.contained:>11}{t.seconds:>7.0f}")
