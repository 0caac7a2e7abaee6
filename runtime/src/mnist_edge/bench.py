"""Latency, throughput, load time and memory of exported models on this device (no TensorFlow).

    mnist-edge bench artifacts/model_int8.tflite             # one file, in this process
    mnist-edge bench artifacts/ --json                       # every file x installed backend,
                                                             # each in a fresh process; saves the
                                                             # fastest for Classifier.load(prefer=)
    mnist-edge bench artifacts/ --key tflite_int8 --threads 2 --runs 2000

Batch-1 latency is timed per call (min/p50/p90/p99/max) in blocks that alternate with the
interpreter's bare call on the same pre-filled input (``invoke()`` or ``session.run``), so the
runtime's overhead is a ratio measured under the same conditions. Throughput is images per
second from the median call at batch 1, 8, 32 and 256, by the wall clock (``throughput``) and
per second of this process's CPU time (``throughput_cpu``: with one thread, images per second of
one core, unaffected by other processes taking the core away during a long call, which a busy
machine does to batch-256 calls far more than to 40 µs ones). Peak RSS is the process's high-water
mark (VmHWM), so it is honest only for one model per process, which is how a folder is swept.
"""

from __future__ import annotations

import functools
import gc
import io
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from mnist_edge import backends
from mnist_edge import choice as choice_mod
from mnist_edge.errors import BackendError, MnistEdgeError, ModelError
from mnist_edge.formats import FORMATS, kind_of_suffix
from mnist_edge.loading import MAX_THREADS
from mnist_edge.modelfile import read_regular_file

if TYPE_CHECKING:  # the classifier is imported where a model is loaded
    import argparse

    from mnist_edge.classifier import Classifier
    from mnist_edge.manifest import Manifest

# subprocess and platform are imported where used: the CLI's start-up stays short
Row = dict[str, Any]  # one benchmark row, as `mnist-edge bench --json` prints it
BATCHES = (1, 8, 32, 256)
SCHEMA = 1
_BLOCK = 25            # calls per block when predict and the bare call alternate
_SWEEP_TIMEOUT_S = 300
MAX_RUNS = 10_000_000          # about an hour of batch-1 predictions on a Raspberry Pi
MAX_SECONDS_PER_BATCH = 600.0
MAX_IMAGES_BYTES = 1024 * 1024 * 1024  # --images: 1.3 M images of 28x28


@dataclass
class BenchConfig:
    """What one benchmark run measures (the CLI flags; defaults shown in --help)."""

    runs: int = 1000              # timed batch-1 predictions (and as many bare interpreter calls)
    warmup: int = 50              # untimed batch-1 predictions first
    threads: int = 1              # interpreter threads
    backend: str = "auto"         # interpreter, or auto
    seconds_per_batch: float = 0.3  # time spent on each throughput batch size
    images: str | None = None     # .npy of uint8 [N,28,28] (else random pixels); labels reported


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (VmHWM; ru_maxrss where /proc is missing)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024  # bytes on macOS


def percentiles(ns: list[int]) -> dict[str, float]:
    """min/p50/p90/p99/max of nanosecond samples, in microseconds."""
    a = np.asarray(ns, dtype=np.float64) / 1000.0
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"min": round(float(a.min()), 2), "p50": round(float(p50), 2),
            "p90": round(float(p90), 2), "p99": round(float(p99), 2),
            "max": round(float(a.max()), 2)}


def _images(cfg: BenchConfig) -> np.ndarray:
    if cfg.images is None:  # timing does not depend on the pixels; random ones need no dataset
        return np.random.default_rng(0).integers(0, 256, size=(max(BATCHES), 28, 28),
                                                 dtype=np.uint8)
    try:  # a regular file only: a FIFO would block, /dev/zero never end
        data = read_regular_file(Path(cfg.images).expanduser(), MAX_IMAGES_BYTES, ".npy file")
        x = np.load(io.BytesIO(data), allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise MnistEdgeError(f"{cfg.images}: not a readable .npy array ({exc})") from None
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28) or len(x) == 0:
        raise MnistEdgeError(f"{cfg.images}: expected uint8 images [N,28,28], "
                             f"got {x.dtype} {x.shape}")
    images: np.ndarray = x
    return images


def _timed(fn: Callable[[], object], calls: int) -> list[int]:
    pc = time.perf_counter_ns
    out = []
    for _ in range(calls):
        start = pc()
        fn()
        out.append(pc() - start)
    return out


def measure(clf: Classifier, cfg: BenchConfig, x: np.ndarray) -> Row:
    """Batch-1 latency next to the bare interpreter call, and throughput per batch size."""
    img = x[0]
    for _ in range(cfg.warmup):
        clf.predict(img)
    floor = clf.interpreter_call()  # runs on the input the last predict left in place
    ours: list[int] = []
    bare: list[int] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()  # like timeit: a collection inside one call would be charged to it
    try:
        for done in range(0, cfg.runs, _BLOCK):
            n = min(_BLOCK, cfg.runs - done)
            ours += _timed(lambda: clf.predict(img), n)
            bare += _timed(floor, n)
        throughput, per_cpu = {}, {}
        for b in BATCHES:
            batch = np.resize(x, (b, 28, 28)) if len(x) < b else x[:b]
            clf.predict(batch)  # re-plans the interpreter for this batch size
            calls: list[int] = []
            cpu: list[int] = []
            end = time.perf_counter() + cfg.seconds_per_batch
            while len(calls) < 3 or time.perf_counter() < end:
                c0 = time.process_time_ns()
                calls += _timed(functools.partial(clf.predict, batch), 1)
                cpu.append(time.process_time_ns() - c0)
            throughput[str(b)] = round(b / (float(np.median(calls)) / 1e9), 1)
            per_cpu[str(b)] = round(b / (max(float(np.median(cpu)), 1.0) / 1e9), 1)
    finally:
        if gc_was_enabled:
            gc.enable()
    latency, floor_us = percentiles(ours), percentiles(bare)
    return {"latency_us": latency, "floor_us": floor_us,
            "overhead": round(latency["p50"] / floor_us["p50"], 4), "throughput": throughput,
            "throughput_cpu": per_cpu}


def bench_model(model: str, cfg: BenchConfig, key: str | None = None) -> Row:
    """Load one model (a file, or a manifest entry by key) and measure it; a JSON-ready dict."""
    from mnist_edge.classifier import Classifier

    x = _images(cfg)
    start = time.perf_counter()
    clf = Classifier.load(model, backend=cfg.backend, threads=cfg.threads, key=key)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    clf.predict(x[0])
    first_s = time.perf_counter() - start
    row = {"schema": SCHEMA, "path": str(clf.path), "key": clf.entry.key if clf.entry else None,
           "format": clf.format, "precision": clf.precision, "backend": clf.backend,
           "runtime": backends.runtime_version(clf.backend), "threads": cfg.threads,
           "size_bytes": clf.path.stat().st_size, "load_ms": round(load_s * 1000, 2),
           "first_inference_ms": round(first_s * 1000, 3), "runs": cfg.runs,
           **measure(clf, cfg, x)}
    if cfg.images is not None:
        row["labels"] = clf.predict(x).labels.tolist()
    row["peak_rss_mb"] = round(peak_rss_mb(), 1)
    row["device"] = device()
    return row


def bench_reader(model: str, strip: np.ndarray, runs: int = 1000, warmup: int = 50,
                 threads: int = 1, backend: str = "auto", key: str | None = None) -> Row:
    """Batch-1 latency of ``LineReader.scores`` on one ``strip`` (float [height, W] in [0, 1] or
    uint8), after loading the line reader of an artifacts folder (``key``: that file); a
    JSON-ready dict."""
    from mnist_edge.linereader import LineReader

    start = time.perf_counter()
    reader = LineReader.load(model, key=key, backend=backend, threads=threads)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    reader.scores(strip)
    first_s = time.perf_counter() - start
    for _ in range(warmup):
        reader.scores(strip)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # as for predict: a collection inside one call would be charged to it
    try:
        ns = _timed(lambda: reader.scores(strip), runs)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {"schema": SCHEMA, "path": str(reader.path), "key": reader.key,
            "format": kind_of_suffix(reader.path.suffix), "precision": reader.precision,
            "backend": reader.backend, "runtime": backends.runtime_version(reader.backend),
            "threads": threads, "size_bytes": reader.path.stat().st_size,
            "strip": list(strip.shape), "load_ms": round(load_s * 1000, 2),
            "first_inference_ms": round(first_s * 1000, 3), "runs": runs,
            "latency_us": percentiles(ns)}


def bench_gate(model: str, image: np.ndarray, runs: int = 1000, warmup: int = 50,
               threads: int = 1, backend: str = "auto", key: str | None = None) -> Row:
    """What the "no digit" gate costs per image, batch 1, next to the classifier file it sits
    beside (``key``): the gate's own file through the same ``predict`` (its ``gate_ratio`` to the
    classifier's p50), and ``predict(image, refuse=True)`` in full (the gate, the blank check and
    the reasons: its ``refuse_ratio``), alternating blocks in one process."""
    from mnist_edge.classifier import Classifier

    clf = Classifier.load(model, key=key, backend=backend, threads=threads)
    gate = clf.gate
    if gate is None:
        raise MnistEdgeError(f"{model}: no \"no digit\" gate to time (its manifest lists none)")
    calls: dict[str, Callable[[], object]] = {
        "classifier": lambda: clf.predict(image), "gate": lambda: gate.model.predict(image),
        "refuse": lambda: clf.predict(image, refuse=True)}
    for _ in range(warmup):
        for call in calls.values():
            call()
    times: dict[str, list[int]] = {name: [] for name in calls}
    gc_was_enabled = gc.isenabled()
    gc.disable()  # as for predict: a collection inside one call would be charged to it
    try:
        for done in range(0, runs, _BLOCK):
            n = min(_BLOCK, runs - done)
            for name, call in calls.items():
                times[name] += _timed(call, n)
    finally:
        if gc_was_enabled:
            gc.enable()
    without, alone, with_gate = (percentiles(times[k]) for k in ("classifier", "gate", "refuse"))
    return {"schema": SCHEMA, "key": clf.entry.key if clf.entry else None,
            "gate": gate.model.path.name, "backend": clf.backend,
            "runtime": backends.runtime_version(clf.backend), "threads": threads, "runs": runs,
            "latency_us": without, "gate_latency_us": alone, "latency_with_gate_us": with_gate,
            "gate_ratio": round(alone["p50"] / without["p50"], 4),
            "refuse_ratio": round((with_gate["p50"] - without["p50"]) / without["p50"], 4)}


def device() -> dict[str, Any]:
    """The machine the figures belong to: architecture, CPU model, cores, Python."""
    import platform

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            info = dict(line.split(":", 1) for line in fh if ":" in line)
        info = {k.strip().lower(): v.strip() for k, v in info.items()}
        # x86 names the CPU in "model name"; a Raspberry Pi names the board in "Model"
        cpu = next((info[k] for k in ("model name", "hardware") if info.get(k)), cpu)
        model = info.get("model", "")
        cpu = f"{model} ({cpu})" if model and not model.isdigit() else cpu
    except (OSError, ValueError):
        pass
    return {"machine": platform.machine(), "cpu": cpu, "cores": os.cpu_count(),
            "python": platform.python_version()}


# ------------------------------------------------------------------------- a whole artifacts folder
def sweep(artifacts: str, cfg: BenchConfig, python: str = sys.executable) -> list[Row]:
    """Every manifest file x every installed backend of its format, each in a fresh process."""
    from mnist_edge.manifest import read_manifest

    manifest = read_manifest(Path(artifacts))  # a folder or its manifest.json
    return [run_child(python, str(manifest.path), key, name, cfg)
            for key, name in plan(manifest, cfg)]


def plan(manifest: Manifest, cfg: BenchConfig) -> list[tuple[str, str]]:
    """(file key, backend) of each run of a sweep; MnistEdgeError if there is none to make."""
    if cfg.backend != "auto":
        fmt = backends.BACKENDS[cfg.backend].format
        if backends.unusable_reason(cfg.backend) is not None:
            raise backends.missing_backend_error(fmt, cfg.backend)
        runs = [(e.key, cfg.backend) for e in manifest.files if e.format == fmt]
        if not runs:
            raise ModelError(f"{manifest.path}: lists no {fmt} file for backend "
                             f"{cfg.backend!r}; use --backend auto")
        return runs
    runs = [(e.key, name) for e in manifest.files for name in backends.available(e.format)]
    if not runs:
        formats = ", ".join(sorted({e.format for e in manifest.files}))
        raise BackendError(f"{manifest.path}: no installed interpreter runs any listed file "
                           f"({formats}); fix: {backends.BACKENDS['litert'].install}")
    return runs


def run_child(python: str, model: str, key: str | None, backend: str, cfg: BenchConfig) -> Row:
    """``mnist-edge bench`` of one file in a fresh process (honest load time and peak RSS)."""
    import subprocess

    # isolated (-I): a folder named mnist_edge or numpy where this runs cannot inject code
    start = (backends.child_python("from mnist_edge.cli import main\nsys.exit(main(sys.argv[1:]))")
             if python == sys.executable else [python, "-I", "-m", "mnist_edge"])
    cmd = [*start, "bench", model, "--backend", backend, "--json",
           "--threads", str(cfg.threads), "--runs", str(cfg.runs), "--warmup", str(cfg.warmup),
           "--seconds-per-batch", str(cfg.seconds_per_batch), "--no-save"]
    cmd += ["--key", key] if key else []
    cmd += ["--images", cfg.images] if cfg.images else []
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=_SWEEP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"key": key, "backend": backend, "threads": cfg.threads,
                "error": f"did not finish in {_SWEEP_TIMEOUT_S} s"}
    if done.returncode != 0:
        text = done.stderr.strip() or done.stdout.strip() or f"exit status {done.returncode}"
        lines = text.splitlines()
        return {"key": key, "backend": backend, "threads": cfg.threads,
                "error": lines[-1].removeprefix("mnist-edge: ")}
    row: Row = json.loads(done.stdout)
    return row


# ------------------------------------------------------------------------- the saved choice
def recommend(rows: list[Row]) -> dict[str, Row]:
    """The fastest configuration by batch-1 p50 latency and by throughput at batch 256.

    Throughput is compared per CPU-second: the wall-clock figure of a long batch call depends
    on what else the machine runs (with one thread the two agree on a quiet device).
    """
    ok = [r for r in rows if "error" not in r]
    if not ok:
        return {}
    big = str(max(BATCHES))
    pick = {"latency": min(ok, key=lambda r: r["latency_us"]["p50"]),
            "throughput": max(ok, key=lambda r: r["throughput_cpu"][big])}
    return {k: {"key": r["key"], "backend": r["backend"], "threads": r["threads"],
                "p50_us": r["latency_us"]["p50"], "images_per_s": r["throughput"][big],
                "images_per_cpu_s": r["throughput_cpu"][big]}
            for k, r in pick.items()}


# ------------------------------------------------------------------------- the CLI subcommand
def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``mnist-edge bench``."""
    d = BenchConfig()
    p.add_argument("model", help="artifacts folder (every file x backend), manifest.json, "
                                 ".tflite or .onnx")
    p.add_argument("--backend", default=d.backend, choices=["auto", *backends.BACKENDS],
                   help="interpreter; with a folder, only this one")
    p.add_argument("--threads", type=int, default=d.threads, help="interpreter threads")
    p.add_argument("--key", type=str, default=None,
                   help="with a folder: benchmark only this file "
                        f"({', '.join(f.key for f in FORMATS)})")
    p.add_argument("--runs", type=int, default=d.runs, help="timed batch-1 predictions")
    p.add_argument("--warmup", type=int, default=d.warmup, help="untimed predictions first")
    p.add_argument("--seconds-per-batch", type=float, default=d.seconds_per_batch,
                   help="seconds of throughput timing per batch size (1, 8, 32, 256)")
    p.add_argument("--images", type=str, default=None,
                   help=".npy of uint8 [N,28,28] images to time (None: random pixels); "
                        "their labels go into --json")
    p.add_argument("--quick", action="store_true",
                   help="a short run: 200 runs, 0.05 s per batch size")
    p.add_argument("--no-save", action="store_true",
                   help="with a folder: do not save the recommendation for "
                        "Classifier.load(prefer=...)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")


def run(args: argparse.Namespace) -> int:
    """``mnist-edge bench``: one model in this process, or a folder swept file by file."""
    from mnist_edge.manifest import manifest_path

    # flags are checked once, here: in a sweep a bad one would fail every row in its child
    if not (1 <= args.runs <= MAX_RUNS and 0 <= args.warmup <= MAX_RUNS
            and 0 < args.seconds_per_batch <= MAX_SECONDS_PER_BATCH):  # also refuses inf and nan
        raise MnistEdgeError(f"--runs must be 1..{MAX_RUNS}, --warmup 0..{MAX_RUNS} and "
                             f"--seconds-per-batch above 0 and at most {MAX_SECONDS_PER_BATCH}")
    if not 1 <= args.threads <= MAX_THREADS:
        raise MnistEdgeError(f"--threads must be between 1 and {MAX_THREADS}, got {args.threads}")
    cfg = BenchConfig(runs=args.runs, warmup=args.warmup, threads=args.threads,
                      backend=args.backend, seconds_per_batch=args.seconds_per_batch,
                      images=args.images)
    if args.quick:
        cfg.runs, cfg.warmup, cfg.seconds_per_batch = min(cfg.runs, 200), min(cfg.warmup, 10), 0.05
    path = Path(args.model).expanduser()
    mpath = manifest_path(path) if path.exists() else None
    if mpath is None or args.key is not None:
        row = bench_model(args.model, cfg, key=args.key)
        print(json.dumps(row) if args.json else _table([row]))
        return 0
    _images(cfg)  # a bad --images: one line here, not an error in every row
    rows = sweep(str(mpath), cfg)  # checks the backend against the files before starting any
    choice = recommend(rows)
    saved, not_saved = None, None
    if choice and not args.no_save:
        try:
            saved = choice_mod.save_choice(mpath, choice, device())
        except MnistEdgeError as exc:  # the figures stand: print them, then say what failed
            not_saved = str(exc)
    if args.json:
        print(json.dumps({"rows": rows, "recommended": choice,
                          "saved": str(saved) if saved else None, "config": asdict(cfg)}))
    else:
        print(_table(rows))
        for pref, c in choice.items():
            print(f"fastest by {pref}: {c['key']} on {c['backend']} ({c['p50_us']:.1f} us p50, "
                  f"{c['images_per_s']:.0f} images/s at batch {max(BATCHES)})")
        if saved:
            print(f"saved to {saved}; Classifier.load('{args.model}', prefer='latency') uses it")
    if not_saved:
        sys.stdout.flush()  # the results first, then the warning
        print(f"mnist-edge: {not_saved}", file=sys.stderr)
    return 0 if choice else 1


def _table(rows: list[Row]) -> str:
    head = (f"{'file':<22}{'backend':<16}{'thr':>4}{'size':>9}{'load':>9}{'p50':>9}{'p99':>9}"
            f"{'floor':>9}{'ovh':>7}{'b=1/s':>9}{'b=256/s':>10}{'rss':>7}")
    units = (f"{'':<22}{'':<16}{'':>4}{'KB':>9}{'ms':>9}{'us':>9}{'us':>9}{'us':>9}{'x':>7}"
             f"{'img':>9}{'img':>10}{'MB':>7}")
    lines = [head, units]
    for r in rows:
        name = r.get("key") or Path(r.get("path", "?")).name
        if "error" in r:
            lines.append(f"{name:<22}{r['backend']:<16}{r['threads']:>4}  error: {r['error']}")
            continue
        lat, fl, tp = r["latency_us"], r["floor_us"], r["throughput"]
        lines.append(f"{name:<22}{r['backend']:<16}{r['threads']:>4}{r['size_bytes'] / 1024:>9.0f}"
                     f"{r['load_ms']:>9.1f}{lat['p50']:>9.1f}{lat['p99']:>9.1f}{fl['p50']:>9.1f}"
                     f"{r['overhead']:>7.3f}{tp['1']:>9.0f}{tp[str(max(BATCHES))]:>10.0f}"
                     f"{r['peak_rss_mb']:>7.1f}")
    return "\n".join(lines)
