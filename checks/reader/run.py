"""Score the number reader and the single-digit path on the reader sets, and time both.

    from checks.reader.run import ReaderConfig, run
    result = run(ReaderConfig(n_numbers=200, n_singles=400))
    result["numbers"]["exact_rate"], result["singles"]["read_accuracy"], result["targets"]

Numbers go through ``Classifier.read`` (as decoded numpy photos); single digits through
``Classifier.read`` and ``Classifier.predict_files`` (as files), and the same digits' MNIST
images through ``Classifier.predict``. The timing reads files on both sides, in one process, one
thread, alternating the two calls. The line reader's own figures (lines of test digits, Keras
and each exported file) come from the manifest's verification. When the classifier loads the
"no digit" gate, these figures are measured without it (``refuse=False``) and the gate's own
(``checks/reader/gate.py``) beside them.
"""

from __future__ import annotations

import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from checks.reader import gate as gate_mod
from common import photo_score as score
from common import photos as sets
from common.flags import option, positive_int
from common.flags import seed as seed_type

# Targets (docs/reader.md): the report marks each met or missed; the floors (common/floors.py)
# gate.
EXACT_GOAL = 0.92      # numbers read exactly
TOUCHING_GOAL = 0.88   # ...when neighbours touch
SINGLES_GOAL = 0.95    # thin/broken single digits read right by read
SPEED_GOAL = 1.5       # read (4-digit 640x480 photo) / predict_files (one-digit 640x480 photo)
# The reader that cut lines into pieces and classified each with the digit CNN, measured by this
# report on the same sets (int8 TFLite, seed 1234, 1,000 numbers, 2,000 singles) before the
# line reader took its place: shown beside today's figures.
SEGMENTING = {"numbers read exactly": 0.453, "... when neighbours touch": 0.211,
              "thin/broken single digits read right": 0.826,
              "read / predict_files time, 640x480": 2.96}
TIMING_FRAME = (640, 480)
TIMING_DIGITS = 4
TIMING_PHOTOS = 4      # different photos of each kind, cycled through the repetitions
TIMING_INDEX = 10**6   # timing photos are made at indices past any set's own
FILE_CHUNK = 256       # single-digit files written and classified per batch
PROGRESS_EVERY = 100


@dataclass
class ReaderConfig:
    """Options of one reader report (the flags of python -m checks.reader)."""

    artifacts: str = option("artifacts", "folder with manifest.json (its first file, the int8 "
                                         "TFLite model, is used), or a .tflite/.onnx file")
    data: str | None = option(None, "MNIST npz or IDX folder (default: $MNIST_DATA, else Keras's "
                                    "download)")
    out: str = option("reports", "folder for reader.json, reader.md and reader_failures.png")
    split: str = option("test", "MNIST split the sets are made from: 'test' for the report, "
                                "'train' for tuning the reader (never tune on test)",
                        choices=sets.SPLITS)
    seed: int = option(1234, "seed of both sets (sample i is the same for any set size)",
                       type=seed_type)
    n_numbers: int = option(1000, "number photos read with Classifier.read", type=positive_int)
    n_singles: int = option(2000, "single thin/broken digit photos classified with "
                                  "predict_files", type=positive_int)
    repeats: int = option(40, "timed calls of read and of predict_files each (medians; 30 or "
                              "more for the report)", type=positive_int)
    failures: int = option(24, "hardest failures drawn in reader_failures.png", type=positive_int)
    gate_nondigits: int = option(1000, "held-out generated non-digits the \"no digit\" gate is "
                                       "measured on, as crops and as photo files each",
                                 type=positive_int)
    gate_numbers: int = option(200, "number photos (the first of the set) read again with the "
                                    "gate", type=positive_int)
    save_sets: str | None = option(None, "write both sets' photos and truth.json into this "
                                         "folder and stop: no model, no report (default: off)",
                                  metavar="DIR")


@dataclass
class ReaderResult:
    """A run's figures (``data``: what reader.json holds), one row per number photo, and the
    digits the sets were made from (to redraw failures)."""

    data: dict
    rows: list[dict]
    digits: sets.Digits


def run(cfg: ReaderConfig, command: str = "", log: Callable[[str], None] = print
        ) -> ReaderResult:
    """Build the sets, score them and time the reader; everything the reports show."""
    from common.data import load_mnist
    from mnist_edge import Classifier
    from mnist_edge.digest import sha256_file
    from mnist_edge.errors import ModelError

    start = time.perf_counter()
    clf = Classifier.load(cfg.artifacts, threads=1)
    if clf.kind != "digits" and clf.manifest is not None:
        raise ModelError(f"{cfg.artifacts}: the reader report reads photos of handwritten digits; "
                         f"this model classifies {clf.manifest.dataset_name} ({clf.kind})")
    mnist = load_mnist(cfg.data)
    digits = sets.split_digits(mnist, cfg.split)
    off = {"refuse": False} if gate_mod.has_gate(clf) else {}  # the figures without the gate
    log(f"model {clf.path} on {clf.backend} ({clf.precision}); {digits.split} split of "
        f"{mnist.source}; seed {cfg.seed}")
    result: dict = {
        "schema_version": 1,
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command, "config": asdict(cfg),
        "model": {"file": str(clf.path), "backend": clf.backend, "precision": clf.precision,
                  "sha256": sha256_file(clf.path)},
        "data": mnist.source, "split": digits.split, "seed": cfg.seed,
        "n_numbers": cfg.n_numbers, "n_singles": cfg.n_singles,
        "reader": hasattr(clf, "read"),
        "line_reader": line_reader_figures(clf),
    }
    with tempfile.TemporaryDirectory(prefix="mnist-edge-reader-") as tmp:
        if result["reader"]:
            result["numbers"], rows = score_numbers(clf, digits, cfg, log, off)
            result["failures"] = failures(rows)
            result["timing"] = time_read(clf, digits, cfg, Path(tmp), log)
        else:
            log("Classifier has no read(): numbers and timing are not measured")
            rows = []
        result["singles"] = score_singles(clf, digits, cfg, Path(tmp), log, off)
        if off and result["reader"]:
            n = min(cfg.gate_numbers, len(rows))
            result["gate"] = gate_mod.measure(
                clf, mnist.x_test, rows[:n],
                lambda: [s.image for s in sets.numbers(digits, cfg.seed, n)],
                cfg.gate_nondigits, cfg.seed, Path(tmp), log)
            result["gate"]["targets"] = gate_mod.targets(result["gate"], result["singles"])
        else:
            result["gate"] = gate_mod.absent(clf)
            log(f"\"no digit\" gate: not measured ({result['gate']['why']})")
    result["targets"] = targets(result)
    result["wall_time_s"] = round(time.perf_counter() - start, 1)
    return ReaderResult(result, rows, digits)


def _progress(log: Callable[[str], None], what: str, done: int, total: int,
              start: float) -> None:
    """One progress line every PROGRESS_EVERY samples (and at the end)."""
    if done % PROGRESS_EVERY == 0 or done == total:
        rate = done / max(1e-9, time.perf_counter() - start)
        log(f"  {what}: {done}/{total} ({rate:.0f}/s)")


# ------------------------------------------------------------------ numbers

def score_numbers(clf, digits: sets.Digits, cfg: ReaderConfig, log: Callable[[str], None],
                  options: dict | None = None) -> tuple[dict, list[dict]]:
    """Read every number photo (``read(image, **options)``); the summary and one row per
    photo."""
    rows: list[dict] = []
    start = time.perf_counter()
    tag_list = []
    for s in sets.numbers(digits, cfg.seed, cfg.n_numbers):
        t0 = time.perf_counter()
        try:
            r = clf.read(s.image, **(options or {}))
            read, error = r.number, None
            found = [{"box": [int(v) for v in d.box], "label": int(d.label),
                      "confidence": round(float(d.confidence), 4)} for d in r.digits]
        except Exception as exc:  # a reader failure on one photo is a result, not a crash
            read, error, found = None, f"{type(exc).__name__}: {exc}"[:300], []
        ms = (time.perf_counter() - t0) * 1000
        rows.append({"index": s.index, "truth": s.truth, "read": read, "error": error,
                     "found": found, "tags": s.tags, "ms": ms, **score.compare(s.truth, read)})
        tag_list.append(s.tags)
        _progress(log, "numbers read", len(rows), cfg.n_numbers, start)
    return summarise_numbers(rows, score.shares(tag_list)), rows


def summarise_numbers(rows: list[dict], shares: dict) -> dict:
    """Exact rate overall and per tag value, per-digit accuracy, length errors, errors."""
    n = len(rows)
    same = [r for r in rows if r["same_length"]]
    digits = sum(r["digits"] for r in rows)
    by_tag = score.by_tag([r["tags"] for r in rows], {
        "exact_rate": (np.array([r["exact"] for r in rows]), np.ones(n)),
        "digit_accuracy": (np.array([r["digits"] - r["distance"] for r in rows]),
                           np.array([r["digits"] for r in rows]))})
    return {
        "n": n, "exact": sum(r["exact"] for r in rows),
        "exact_rate": score.rate(sum(r["exact"] for r in rows), n),
        "same_length_rate": score.rate(len(same), n),
        "too_few_digits_rate": score.rate(sum(r["length_error"] < 0 for r in rows), n),
        "too_many_digits_rate": score.rate(sum(r["length_error"] > 0 for r in rows), n),
        "digit_accuracy_same_length": score.rate(sum(r["right_in_place"] for r in same),
                                                 sum(r["digits"] for r in same)),
        "digit_accuracy_edit": score.rate(digits - sum(r["distance"] for r in rows), digits),
        "line_count_right_rate": score.rate(sum(r["lines_right"] for r in rows), n),
        "errors": sum(r["error"] is not None for r in rows),
        "error_examples": sorted({r["error"] for r in rows if r["error"]})[:5],
        "read_ms_mean_all_sizes": round(statistics.fmean(r["ms"] for r in rows), 2) if rows
        else None,
        "by_tag": by_tag, "set_shares": shares,
    }


def failures(rows: list[dict]) -> list[dict]:
    """Every misread number, hardest first: most digits wrong, then most confident."""
    bad = [r for r in rows if not r["exact"]]

    def hardness(r: dict) -> tuple:
        conf = min((d["confidence"] for d in r["found"]), default=0.0)
        return (-r["distance"], -conf, r["index"])

    return [{"index": r["index"], "truth": r["truth"], "read": r["read"], "error": r["error"],
             "distance": r["distance"], "found": r["found"], "tags": r["tags"]}
            for r in sorted(bad, key=hardness)]


# ------------------------------------------------------------------ single digits

def score_singles(clf, digits: sets.Digits, cfg: ReaderConfig, tmp: Path,
                  log: Callable[[str], None], options: dict | None = None) -> dict:
    """predict_files on every single-digit photo (``**options``), and predict on the same MNIST
    digits; with ``options`` (a gate), predict_files with the gate too."""
    folder = tmp / "singles"
    folder.mkdir()
    labels, sources, tag_list, photo, read, no_label, gate_refused = [], [], [], [], [], 0, 0
    start = time.perf_counter()
    samples = sets.singles(digits, cfg.seed, cfg.n_singles)
    done = 0
    while done < cfg.n_singles:
        batch = [next(samples) for _ in range(min(FILE_CHUNK, cfg.n_singles - done))]
        paths = [s.write(folder / f"{s.index:05d}") for s in batch]
        results = clf.predict_files(paths, **(options or {}))
        if options:
            gate_refused += gate_mod.singles_refused(clf.predict_files(paths, refuse=True))
        for s, res, p in zip(batch, results, paths, strict=True):
            labels.append(s.glyphs[0].label)
            sources.append(s.glyphs[0].source)
            tag_list.append(s.tags)
            photo.append(-1 if res.label is None else res.label)
            no_label += res.label is None
            read.append(_read_one(clf, s.image, options))
            p.unlink()
        done += len(batch)
        log(f"  single digits classified: {done}/{cfg.n_singles} "
            f"({done / max(1e-9, time.perf_counter() - start):.0f}/s)")
    y = np.array(labels)
    photo_ok = np.array(photo) == y
    read_ok = np.array(read) == np.array([str(v) for v in labels])
    clean_ok = clf.predict(digits.x[np.array(sources)]).labels == y
    ones = np.ones(len(y))
    by_tag = score.by_tag(tag_list, {"read_accuracy": (read_ok, ones),
                                     "photo_accuracy": (photo_ok, ones),
                                     "clean_accuracy": (clean_ok, ones)})
    gate = {"gate_refused": gate_refused,
            "gate_false_refusal_rate": score.rate(gate_refused, len(y))} if options else {}
    return {"n": len(y), "read_accuracy": score.rate(int(read_ok.sum()), len(y)),
            "photo_accuracy": score.rate(int(photo_ok.sum()), len(y)),
            "clean_accuracy": score.rate(int(clean_ok.sum()), len(y)), "no_label": no_label,
            **gate, "by_tag": by_tag, "set_shares": score.shares(tag_list)}


def _read_one(clf, image: np.ndarray, options: dict | None = None) -> str | None:
    """What read makes of a single-digit photo (None when it raises)."""
    try:
        return str(clf.read(image, **(options or {})).number)
    except Exception:  # counted as wrong; the numbers' errors say why
        return None


def line_reader_figures(clf) -> dict | None:
    """The line reader's exact-number rate on lines of test digits: Keras's and each exported
    file's, as the export verified them (None without a manifest or a line reader)."""
    data = clf.manifest.data.get("line_reader") if clf.manifest is not None else None
    if not isinstance(data, dict):
        return None
    files = [{"key": f.get("key"), "size": f.get("size"),
              "exact_rate": (f.get("verification") or {}).get("exact_rate"),
              "digit_accuracy": (f.get("verification") or {}).get("digit_accuracy")}
             for f in data.get("files", []) if isinstance(f, dict)]
    return {"keras": data.get("keras_reference"), "files": files}


# ------------------------------------------------------------------ timing

def time_read(clf, digits: sets.Digits, cfg: ReaderConfig, tmp: Path,
              log: Callable[[str], None]) -> dict:
    """Median time of read (a 640x480 photo of a 4-digit number) and of predict_files (a
    640x480 photo of one digit), both from files, alternating, one thread."""
    folder = tmp / "timing"
    folder.mkdir()
    numbers = [sets.number_sample(digits, cfg.seed, TIMING_INDEX + k, frame=TIMING_FRAME,
                                  n_digits=TIMING_DIGITS).write(folder / f"number{k}")
               for k in range(TIMING_PHOTOS)]
    singles = [sets.single_sample(digits, cfg.seed, TIMING_INDEX + k, frame=TIMING_FRAME)
               .write(folder / f"single{k}") for k in range(TIMING_PHOTOS)]
    try:
        for n, s in zip(numbers, singles, strict=True):  # warm-up: imports, caches
            clf.read(n)
            clf.predict_files([s])
    except Exception as exc:  # a reader that fails is a finding (not timed), not a crash
        log(f"  timing: not measured, read failed: {type(exc).__name__}: {exc}")
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}
    read_s: list[float] = []
    files_s: list[float] = []
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for i in range(cfg.repeats):
            calls = [(clf.read, numbers[i % TIMING_PHOTOS], read_s),
                     (clf.predict_files, [singles[i % TIMING_PHOTOS]], files_s)]
            for call, arg, into in calls[::-1] if i % 2 else calls:  # alternate which goes first
                t0 = time.perf_counter()
                call(arg)
                into.append(time.perf_counter() - t0)
    finally:
        if gc_was:
            gc.enable()
    read_ms = statistics.median(read_s) * 1000
    files_ms = statistics.median(files_s) * 1000
    log(f"  timing: read {read_ms:.1f} ms, predict_files {files_ms:.1f} ms "
        f"(median of {cfg.repeats} each)")
    return {"read_ms_median": round(read_ms, 3), "predict_files_ms_median": round(files_ms, 3),
            "ratio": round(read_ms / files_ms, 3), "repeats": cfg.repeats,
            "photos": TIMING_PHOTOS, "frame": list(TIMING_FRAME), "number_digits": TIMING_DIGITS,
            "threads": 1, "read_ms_p90": round(float(np.percentile(read_s, 90)) * 1000, 3),
            "predict_files_ms_p90": round(float(np.percentile(files_s, 90)) * 1000, 3),
            "python": sys.version.split()[0]}


# ------------------------------------------------------------------ targets

def targets(result: dict) -> list[dict]:
    """Each target with its value, goal, whether it is met (None: not measured) and the
    segmenting reader's figure on the same sets."""
    numbers, timing, singles = result.get("numbers"), result.get("timing"), result["singles"]
    exact = numbers["exact_rate"] if numbers else None
    touching = (numbers["by_tag"].get("touching", {}).get("yes", {}).get("exact_rate")
                if numbers else None)
    ratio = timing.get("ratio") if timing else None
    rows = [("numbers read exactly", exact, EXACT_GOAL, True),
            ("... when neighbours touch", touching, TOUCHING_GOAL, True),
            ("thin/broken single digits read right", singles["read_accuracy"], SINGLES_GOAL,
             True),
            ("read / predict_files time, 640x480", ratio, SPEED_GOAL, False)]
    return [{"target": name, "value": value,
             "goal": f">= {goal:.0%}" if at_least else f"<= {goal:g}x",
             "met": None if value is None else value >= goal if at_least else value <= goal,
             "segmenting": SEGMENTING[name]}
            for name, value, goal, at_least in rows]
