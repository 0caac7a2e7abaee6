"""Kill `make train` and `make export` at random moments and check what artifacts/ holds.

Each stage runs on a temporary artifacts folder (ARTIFACTS=...), never the real one. Every
killed run uses a configuration different from the set it would replace (another --seed for
training, another calibration for export), so every file a run rewrites differs from the previous
set's. After each SIGKILL (of the whole process group: make, python and its children) the folder
must hold exactly the previous set, or a complete new set: every file the run rewrites is new,
and the set is consistent (config and metrics name the run's seed; the manifest's sizes and
sha256 match the files and the model it was exported from). `make train` publishes two sets one
after the other, the CNN's and then the line reader's, so a kill between them may also leave the
new CNN beside the previous reader, each set whole. Then a last run must succeed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.artifacts import (
    CONFIG_FILE,
    GATE_CONFIG_FILE,
    GATE_METRICS_FILE,
    GATE_TRAIN_FILES,
    MANIFEST_FILE,
    METRICS_FILE,
    MODEL_FILE,
    READER_CONFIG_FILE,
    READER_METRICS_FILE,
    READER_TRAIN_FILES,
    ROOT,
    TRAIN_FILES,
    exported_from,
    problems,
    read_export,
)
from common.formats import FORMATS, GATE_FORMATS, READER_FORMATS
from common.publish import allowed_names
from mnist_edge.digest import sha256_file

TRAIN_QUICK = "--epochs 2 --limit 3000"
READER_QUICK = "--lines 150 --test-lines 30 --epochs 1 --workers 1"
GATE_QUICK = "--nondigits 600 --validation-nondigits 200 --epochs 1 --workers 1"
# the export stage exports the CNN's formats only (the briefly trained line reader would not pass
# its rules), so no reader files are exported
EXPORT_ONLY = "--formats " + ",".join(f.key for f in FORMATS)
EXPORT_FILES = allowed_names() - {f.filename for f in READER_FORMATS + GATE_FORMATS}
# a kill between the publishes of make train (the CNN, the line reader, the gate, in that
# order): the models published so far new, the others previous
HALF = "new models beside previous ones"
# what a re-export with another calibration rewrites: the manifest and the int8 files
EXPORT_REWRITES = {MANIFEST_FILE} | {f.filename for f in FORMATS if f.precision == "int8"}


@dataclass
class KillResult:
    """One kill: when, whether the run had already finished, and what the folder held after."""

    stage: str
    after_s: float
    finished_first: bool
    verdict: str            # previous, new, or what is wrong


@dataclass
class StageReport:
    stage: str
    full_run_s: float
    kills: list[KillResult] = field(default_factory=list)
    final_run_ok: bool = False
    final_verdict: str = ""

    @property
    def lost(self) -> int:
        """Kill points after which the folder held neither complete set."""
        return (sum(k.verdict not in ("previous", "new", HALF) for k in self.kills)
                + (not self.final_run_ok))


def snapshot(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under ``folder`` ({} if it does not exist)."""
    if not folder.is_dir():
        return {}
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*"))
            if p.is_file()}


def make_stage(stage: str, artifacts: Path, args: str, data: str | None,
               reader_args: str = "") -> list[str]:
    """The make command line for one stage on ``artifacts`` (``reader_args``: the line reader's
    and the gate's extra training flags, for the train stage)."""
    var = "TRAIN_ARGS" if stage == "train" else "EXPORT_ARGS"
    extra = f"{args} --data {data}" if data else args
    cmd = ["make", "--no-print-directory", "-s", stage, f"ARTIFACTS={artifacts}", f"{var}={extra}"]
    if stage == "train":
        reader = f"{READER_QUICK} {reader_args} --data {data}" if data else \
            f"{READER_QUICK} {reader_args}"
        cmd.append(f"READER_ARGS={reader}")
        gate = f"{GATE_QUICK} {reader_args}" + (f" --data {data}" if data else "")
        cmd.append(f"GATE_ARGS={gate}")
    return cmd


def run_killed(cmd: list[str], after_s: float) -> tuple[bool, float]:
    """Start ``cmd`` in its own process group, SIGKILL the group after ``after_s``.

    Returns (True, seconds it ran) if it ended first, else (False, after_s).
    """
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        proc.wait(timeout=after_s)
        return True, time.perf_counter() - start
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(0.2)  # let the group's other members be reaped
        return False, after_s


def run_full(cmd: list[str]) -> tuple[bool, float, str]:
    """(succeeded, seconds, last output lines)."""
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    return done.returncode == 0, time.perf_counter() - start, (done.stdout + done.stderr)[-1500:]


def judge(stage: str, before: dict, after: dict, folder: Path, seed: int | None) -> str:
    """'previous', 'new', or what makes the folder a mix / incomplete."""
    if after == before:
        return "previous"
    expected = (TRAIN_FILES | READER_TRAIN_FILES | GATE_TRAIN_FILES if stage == "train"
                else EXPORT_FILES)
    if set(after) != expected:
        return f"files {sorted(set(after) ^ expected)} missing or extra"
    if stage == "train":
        sets = [_train_set(before, after, folder, seed, TRAIN_FILES, CONFIG_FILE, METRICS_FILE),
                _train_set(before, after, folder, seed, READER_TRAIN_FILES, READER_CONFIG_FILE,
                           READER_METRICS_FILE),
                _train_set(before, after, folder, seed, GATE_TRAIN_FILES, GATE_CONFIG_FILE,
                           GATE_METRICS_FILE)]
        if len(set(sets)) == 1:
            return sets[0]
        published = sets.index("previous") if "previous" in sets else len(sets)
        if sets == ["new"] * published + ["previous"] * (len(sets) - published):
            return HALF
        return f"CNN {sets[0]}, line reader {sets[1]}, gate {sets[2]}"
    stale = sorted(n for n in EXPORT_REWRITES if before.get(n) == after[n])
    if stale:
        return f"mix: {stale} from the previous set beside new files"
    manifest = read_export(folder)
    if manifest is None:
        return "manifest.json unreadable"
    if exported_from(manifest) != after[MODEL_FILE]:
        return "mix: manifest made from another model.keras"
    broken = problems(manifest)
    if broken:
        return f"mix: {broken[0]}"
    for name in TRAIN_FILES:
        if before.get(name) != after[name]:
            return f"export changed {name}, a training file"
    return "new"


def _train_set(before: dict, after: dict, folder: Path, seed: int | None, names: frozenset[str],
               config_file: str, metrics_file: str) -> str:
    """'previous', 'new', or why one model's training set is a mix."""
    if all(before.get(n) == after[n] for n in names):
        return "previous"
    stale = sorted(n for n in names if before.get(n) == after[n])
    if stale:
        return f"mix: {stale} from the previous set beside new files"
    config = json.loads((folder / config_file).read_text())
    metrics = json.loads((folder / metrics_file).read_text())
    if config.get("seed") != seed or metrics.get("seed") != seed:
        return (f"mix: config seed {config.get('seed')}, metrics seed {metrics.get('seed')}, "
                f"run seed {seed}")
    return "new"


def interrupt(stage: str, workdir: Path, kills: int, data: str | None, seed: int = 0,
              log=print) -> StageReport:
    """Kill ``make <stage>`` ``kills`` times at random moments on a temp artifacts folder."""
    rng = np.random.default_rng([seed, stage == "export"])
    folder = workdir / f"{stage}-artifacts" / "artifacts"
    folder.parent.mkdir(parents=True, exist_ok=True)
    setup = [make_stage("train", folder, f"{TRAIN_QUICK} --seed 1", data, "--seed 1")]
    if stage == "export":
        setup.append(make_stage("export", folder,
                                f"{EXPORT_ONLY} --calibration-samples 100 --seed 1", data))
    full_s = 0.0
    for cmd in setup:  # the previous complete set
        ok, full_s, tail = run_full(cmd)
        if not ok:
            raise RuntimeError(f"setting up the previous set failed: {' '.join(cmd)}\n{tail}")
    report = StageReport(stage, full_s)

    def command(i: int) -> tuple[list[str], int | None]:  # each run differs from the set it
        if stage == "train":                                 # replaces
            return make_stage("train", folder, f"{TRAIN_QUICK} --seed {10 + i}", data,
                              f"--seed {10 + i}"), 10 + i
        return make_stage("export", folder, f"{EXPORT_ONLY} --calibration-samples {100 + 10 * i} "
                          f"--seed {10 + i}", data), None

    for i in range(kills):
        before = snapshot(folder)
        cmd, run_seed = command(i)
        after_s = float(rng.uniform(0.3, full_s))
        finished, ran_s = run_killed(cmd, after_s)
        verdict = judge(stage, before, snapshot(folder), folder, run_seed)
        report.kills.append(KillResult(stage, round(after_s, 2), finished, verdict))
        log(f"  make {stage}: SIGKILL after {after_s:5.1f} s of ~{full_s:.0f} s"
            f"{f' (had finished in {ran_s:.1f} s)' if finished else ''}: {verdict}")
        if finished:  # the set-up run was slower (cold caches): aim the next kills inside a run
            full_s = min(full_s, ran_s)
    before = snapshot(folder)
    cmd, run_seed = command(kills)
    ok, _, tail = run_full(cmd)
    report.final_verdict = judge(stage, before, snapshot(folder), folder, run_seed) if ok else tail
    leftovers = [p.name for p in folder.parent.iterdir() if p.name != "artifacts"]
    report.final_run_ok = ok and report.final_verdict == "new" and not leftovers
    log(f"  make {stage} after the kills: {'ok' if ok else 'FAILED'}, {report.final_verdict}"
        f"{f', leftovers {leftovers}' if leftovers else ''}")
    return report
