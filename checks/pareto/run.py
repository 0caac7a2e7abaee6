"""Measure every exported classifier file of every artifacts set on one machine, side by side.

    from checks.pareto.run import ParetoConfig, run
    result = run(ParetoConfig(artifacts="artifacts,artifacts-edge", quick=True))
    result["rows"][0]["p50_us"], result["frontier"], result["choice"]

Per file (a model x format): the MNIST test accuracy the export verified (10,000 images, on the
backend the runtime prefers), the accuracy on the reader report's single-digit photos (thin and
broken digits photographed on paper, normalised once by the runtime's photo path and classified
by every file), the model's parameters and multiply-adds, the file's size, the microcontroller
arena for the int8 file when the export measured it, and, timed by ``mnist-edge bench`` in a fresh
worker per file on the preferred backend with one thread: batch-1 ``predict`` p50 and batch-256
throughput per core-second. The sweep runs ``rounds`` times in alternating order and each time is
the median, so the ratios between files are taken within this one run.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from checks.bench.models import describe
from checks.worker import run_once
from common.artifacts import ROOT
from common.flags import fraction, option, positive_float, positive_int
from common.flags import seed as seed_type
from mnist_edge import bench as edge_bench
from mnist_edge.manifest import manifest_path, read_manifest

BIG = str(max(edge_bench.BATCHES))
TIMEOUT_S = 600
DEFAULT_FLOOR = 0.99


class ParetoError(Exception):
    """An expected problem before any timing (no export, no data, bad option)."""


@dataclass
class ParetoConfig:
    """Options of one Pareto report (the flags of python -m checks.pareto)."""

    artifacts: str = option("", "comma-separated artifacts folders (default: artifacts and every "
                                "artifacts-*/ beside it that holds a manifest.json)",
                            metavar="FOLDERS")
    data: str | None = option(None, "MNIST npz or IDX folder (default: $MNIST_DATA, else Keras's "
                                    "download)")
    out: str = option("reports", "folder for pareto.md, pareto.json and pareto.png")
    floor: float = option(DEFAULT_FLOOR, "MNIST test accuracy the recommended file must reach "
                                         "(0.99 = 99%%)", type=fraction)
    singles: int = option(1000, "single-digit photos of the reader report's set (seed --seed) "
                                "every file classifies", type=positive_int)
    seed: int = option(1234, "seed of the single-digit photos (the reader report's)",
                       type=seed_type)
    runs: int = option(1000, "timed batch-1 calls per file and round", type=positive_int)
    seconds_per_batch: float = option(0.3, "throughput timing per batch size",
                                      type=positive_float)
    rounds: int = option(2, "repetitions of the timing sweep (alternating order); medians are "
                            "reported", type=positive_int)
    python: str = option(".venv-runtime/bin/python", "Python that times the files (the device-like "
                                                     "venv, no TensorFlow); else this one")
    quick: bool = option(False, "1 round, 300 runs, short throughput timing, 500 photos")

    def resolved(self) -> ParetoConfig:
        if self.quick:
            return ParetoConfig(**{**self.__dict__, "runs": min(self.runs, 300), "rounds": 1,
                                   "seconds_per_batch": min(self.seconds_per_batch, 0.1),
                                   "singles": min(self.singles, 500)})
        return self


def _exported(folder: Path) -> bool:
    return (folder / "manifest.json").is_file()


def folders(cfg: ParetoConfig) -> list[Path]:
    """The sets to measure: --artifacts, else artifacts/ and every artifacts-*/ with a
    manifest; the first is the reference the others are compared with."""
    if cfg.artifacts.strip():
        found = [Path(f.strip()) for f in cfg.artifacts.split(",") if f.strip()]
        if not found:
            raise ParetoError(f"--artifacts {cfg.artifacts!r} names no folder")
        for f in found:
            if not _exported(f):
                raise ParetoError(f"{f}: no manifest.json; export it first (make export "
                                  "MODEL=NAME, or python -m export --artifacts FOLDER)")
        return found
    found = [p.relative_to(ROOT) for p in [ROOT / "artifacts", *sorted(ROOT.glob("artifacts-*"))]
             if _exported(p)]
    if not found:
        raise ParetoError("no exported artifacts folder; run `make train export` first")
    return found


def photo_inputs(digits, seed: int, n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The first ``n`` single-digit photos of the reader report's set, normalised by the
    runtime's photo path: (28x28 inputs, labels, photos the path found no ink in). A photo with
    no ink found counts as wrong for every file."""
    from common import photos as sets
    from mnist_edge.errors import BlankImageError
    from mnist_edge.normalize import preprocess_image

    x, y, blank = [], [], 0
    for sample in sets.singles(digits, seed, n):
        label = sample.glyphs[0].label
        try:
            x.append(preprocess_image(sample.image))
            y.append(label)
        except BlankImageError:
            blank += 1
    if not x:
        raise ParetoError(f"no ink found in any of the {n} photos; ask for more with --singles")
    return np.stack(x), np.array(y), blank


def _timed(python: str, manifest: Path, key: str, cfg: ParetoConfig) -> dict:
    """``mnist-edge bench`` of one file on the preferred backend, one thread, fresh worker."""
    timing = edge_bench.BenchConfig(runs=cfg.runs, threads=1, backend="auto",
                                    seconds_per_batch=cfg.seconds_per_batch,
                                    warmup=min(50, cfg.runs))
    answer = run_once(python, {"job": "bench", "model": str(manifest), "key": key,
                               **asdict(timing)}, TIMEOUT_S)
    return answer if answer.pop("ok") else {"error": answer["error"]}


def frontier(rows: list[dict]) -> list[int]:
    """Indices of the rows no other row beats: at least as accurate and at least as fast, better
    on one of the two (MNIST test accuracy, batch-1 p50)."""
    ok = [i for i, r in enumerate(rows) if r.get("p50_us") is not None]

    def beats(a: dict, b: dict) -> bool:
        return (a["accuracy"] >= b["accuracy"] and a["p50_us"] <= b["p50_us"]
                and (a["accuracy"] > b["accuracy"] or a["p50_us"] < b["p50_us"]))

    return [i for i in ok if not any(beats(rows[j], rows[i]) for j in ok if j != i)]


def choose(rows: list[dict], floor: float) -> dict:
    """Among the files whose MNIST test accuracy reaches ``floor``: the fastest at batch 1, the
    fastest at batch 256 and the smallest (None each when no file reaches it)."""
    ok = [r for r in rows if r.get("p50_us") is not None and r["accuracy"] >= floor]

    def name(r: dict | None) -> dict | None:
        return None if r is None else {k: r[k] for k in ("model", "folder", "key", "path",
                                                          "accuracy", "p50_us", "images_per_cpu_s",
                                                          "size_bytes")}

    return {"floor": floor, "meeting": len(ok),
            "fastest": name(min(ok, key=lambda r: r["p50_us"], default=None)),
            "highest_throughput": name(max(ok, key=lambda r: r["images_per_cpu_s"],
                                           default=None)),
            "smallest": name(min(ok, key=lambda r: r["size_bytes"], default=None))}


def run(cfg: ParetoConfig, command: str = "", log=print) -> dict:
    """Measure every file of every set; the dict pareto.json holds."""
    from common import photos as sets
    from common.data import DataError, load_mnist
    from mnist_edge import Classifier

    cfg = cfg.resolved()
    started = time.perf_counter()
    sets_found = folders(cfg)
    try:
        models = [describe(f) for f in sets_found]
    except ValueError as exc:
        raise ParetoError(str(exc)) from None
    try:
        mnist = load_mnist(cfg.data)
    except DataError as exc:
        raise ParetoError(str(exc)) from None
    py = Path(cfg.python)
    python = str(py if py.is_absolute() else ROOT / py)
    python = python if Path(python).is_file() else sys.executable
    log(f"pareto: {len(sets_found)} sets ({', '.join(m['model'] for m in models)}); making "
        f"{cfg.singles} single-digit photos")
    x, y, blank = photo_inputs(sets.split_digits(mnist, "test"), cfg.seed, cfg.singles)
    rows: list[dict] = []
    present = {}  # the digit sets: the floors (photos of MNIST digits) hold them
    for folder, model in zip(sets_found, models, strict=True):
        manifest = read_manifest(manifest_path(folder))
        if manifest.kind == "digits":
            present[model["model"]] = True
        micro = manifest.data.get("micro")
        micro = micro if isinstance(micro, dict) else {}
        for entry in manifest.files:
            clf = Classifier.load(folder, key=entry.key, threads=1)
            right = int(np.sum(clf.predict(x).labels == y)) if clf.kind == "digits" else None
            accuracy = entry.verification.get("accuracy")
            if not isinstance(accuracy, (int, float)) or isinstance(accuracy, bool):
                raise ParetoError(f"{folder}: manifest.json gives {entry.key} no test accuracy; "
                                  "export the set again (make export MODEL=NAME)")
            rows.append({
                "model": model["model"], "folder": str(folder), "key": entry.key,
                "path": entry.path.name, "format": entry.format, "precision": entry.precision,
                "backend": clf.backend, "parameters": model["parameters"],
                "multiply_adds": model["multiply_adds"], "size_bytes": entry.size,
                "accuracy": accuracy, "keras_accuracy": model["keras_accuracy"],
                "photo_accuracy": None if right is None else round(right / (len(y) + blank), 4),
                "arena_bytes": micro.get("arena_bytes") if micro.get("source") == entry.path.name
                else None})
    log(f"pareto: {len(rows)} files; photos classified ({time.perf_counter() - started:.0f} s)")
    timings: list[list[dict]] = [[] for _ in rows]
    for r in range(cfg.rounds):
        order = range(len(rows)) if r % 2 == 0 else range(len(rows) - 1, -1, -1)
        for i in order:
            row = rows[i]
            timings[i].append(_timed(python, manifest_path(Path(row["folder"])), row["key"], cfg))
        log(f"pareto: timing round {r + 1}/{cfg.rounds} done "
            f"({time.perf_counter() - started:.0f} s)")
    errors = []
    for row, times in zip(rows, timings, strict=True):
        ok = [t for t in times if "error" not in t]
        if not ok:
            row.update(p50_us=None, images_per_s=None, images_per_cpu_s=None,
                       error=times[0]["error"])
            errors.append(f"{row['folder']}/{row['path']}: {times[0]['error']}")
            continue
        row.update(p50_us=round(statistics.median(t["latency_us"]["p50"] for t in ok), 1),
                   images_per_s=round(statistics.median(t["throughput"][BIG] for t in ok)),
                   images_per_cpu_s=round(statistics.median(t["throughput_cpu"][BIG]
                                                             for t in ok)),
                   runtime=ok[0]["runtime"])
    on_front = frontier(rows)
    for i, row in enumerate(rows):
        row["frontier"] = i in on_front
    device = next((t[0]["device"] for t in timings if t and "device" in t[0]), None)
    return {
        "schema_version": 1,
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command, "config": asdict(cfg), "device": device, "python": python,
        "data": mnist.source, "photos": {"n": len(y) + blank, "blank": blank, "seed": cfg.seed},
        "sets": models, "present": present, "rows": rows,
        "errors": errors,
        "frontier": [f"{rows[i]['model']}/{rows[i]['key']}" for i in on_front],
        "choice": choose(rows, cfg.floor),
        "choices": [choose(rows, f) for f in sorted({0.98, 0.985, 0.99, 0.993, cfg.floor})],
        "wall_time_s": round(time.perf_counter() - started, 1),
    }
