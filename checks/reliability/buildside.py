"""The build side under hostile conditions: does a train or export run ever lose or mix a set?

Every case starts from a complete set (a quick training and an int8 export) copied into its own
folder, does something a careless user or a hostile machine does (foreign files in the folder,
two runs at once, a symlinked or file target, SIGINT or SIGTERM in every phase, a resume with
other flags or data, hostile data files, a diverging training), and then judges the folder: it
must hold the previous set, or a complete consistent new one, and never lose the user's files.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from checks.reliability.interrupt import snapshot
from common.artifacts import (
    CONFIG_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
    MODEL_FILE,
    ROOT,
    TRAIN_FILES,
    exported_from,
    problems,
    read_export,
)
from common.publish import allowed_names
from mnist_edge.digest import sha256_file
from mnist_edge.formats import TFLITE_INT8

QUICK_TRAIN = ["--epochs", "2", "--limit", "3000"]  # enough for int8 to pass its rule
QUICK_EXPORT = ["--formats", TFLITE_INT8.key, "--calibration-samples", "100"]
TIMEOUT_S = 300
SET_FILES = allowed_names()


@dataclass
class Case:
    """One case: its class, what it did, and what the folder held afterwards ("ok" or why not)."""

    kind: str
    name: str
    verdict: str

    @property
    def lost(self) -> bool:
        return self.verdict != "ok"


def _cmd(stage: str, folder: Path, args: list[str], data: str) -> list[str]:
    flag = "--out" if stage == "train" else "--artifacts"
    return [sys.executable, "-m", stage, flag, str(folder), *args, "--data", data]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=TIMEOUT_S)


def consistent(folder: Path) -> str | None:
    """Why ``folder`` is not one complete, consistent mnist-edge set; None when it is."""
    names = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    if not names >= TRAIN_FILES:
        return f"training files missing: {sorted(TRAIN_FILES - names)}"
    if names - SET_FILES:
        return f"unexpected entries: {sorted(names - SET_FILES)}"
    seeds = {json.loads((folder / f).read_text()).get("seed") for f in (CONFIG_FILE, METRICS_FILE)}
    if len(seeds) != 1:
        return f"config.json and metrics.json describe different runs (seeds {sorted(seeds)})"
    if MANIFEST_FILE in names:
        manifest = read_export(folder)
        if manifest is None:
            return "manifest.json unreadable"
        if exported_from(manifest) != sha256_file(folder / MODEL_FILE):
            return "manifest.json describes another model.keras"
        if problems(manifest):
            return problems(manifest)[0]
    leftovers = [p.name for p in folder.parent.iterdir() if p.name.startswith(".staging-")]
    return f"staging leftovers: {leftovers}" if leftovers else None


def _same_or_new(folder: Path, before: dict[str, str]) -> str:
    """'ok' if the folder holds the previous set or a complete consistent one."""
    if snapshot(folder) == before:
        return "ok"
    return consistent(folder) or "ok"


def build_side(workdir: Path, data: str, log=print) -> list[Case]:
    """Run every case; returns them with their verdicts."""
    template = workdir / "template" / "artifacts"
    template.parent.mkdir(parents=True)
    for cmd in (_cmd("train", template, QUICK_TRAIN, data), _cmd("export", template, QUICK_EXPORT,
                                                                  data)):
        done = _run(cmd)
        if done.returncode != 0:
            raise RuntimeError(f"setting up the template set failed: {done.stderr[-800:]}")
    count = 0

    def fresh() -> Path:
        nonlocal count
        count += 1
        folder = workdir / f"case-{count}" / "artifacts"
        shutil.copytree(template, folder)
        return folder

    cases: list[Case] = []
    for stage in ("train", "export"):  # a folder with the user's own files in it
        folder = fresh()
        (folder / "notes").mkdir()
        (folder / "notes" / "run1.txt").write_text("mine")
        (folder / "keep.txt").write_text("also mine")
        before = snapshot(folder)
        done = _run(_cmd(stage, folder, QUICK_TRAIN if stage == "train" else QUICK_EXPORT, data))
        verdict = "ok" if snapshot(folder) == before else "the folder changed"
        if done.returncode == 0:
            verdict = "published into a folder holding foreign files"
        cases.append(Case("foreign content", f"{stage} into a folder with the user's files",
                          verdict))
    for a, b in (("train", "train"), ("export", "export"), ("train", "export")):
        folder = fresh()
        procs = [subprocess.Popen(_cmd(s, folder, (QUICK_TRAIN if s == "train" else QUICK_EXPORT)
                                       + ["--seed", str(10 + i)], data), cwd=ROOT, env=_env(),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for i, s in enumerate((a, b))]
        codes = [p.wait(timeout=TIMEOUT_S) for p in procs]
        verdict = consistent(folder) or ("ok" if codes == [0, 0] else f"exit statuses {codes}")
        cases.append(Case("concurrent runs", f"{a} + {b} on one folder", verdict))
    cases += _odd_targets(workdir, template, data, log)
    cases += _signals(fresh, data)
    cases += _changed_resume(fresh, data)
    cases += _hostile_data(fresh, workdir, data)
    folder = fresh()
    before = snapshot(folder)
    done = _run(_cmd("train", folder, QUICK_TRAIN + ["--learning-rate", "1e30"], data))
    verdict = "ok" if done.returncode != 0 and snapshot(folder) == before else \
        f"exit {done.returncode}, folder {'unchanged' if snapshot(folder) == before else 'changed'}"
    cases.append(Case("non-finite training", "--learning-rate 1e30", verdict))
    for c in cases:
        log(f"  {c.kind}: {c.name}: {c.verdict}")
    return cases


# Each phase of a run: the line that starts it on stdout (its n-th occurrence; None: the start of
# the process) and how long after it the signal goes. Together they cover start-up, data loading,
# an epoch, the checkpoint between epochs, evaluation, plotting, publishing and shutdown.
PHASES = {
    "train": (("start-up", None, 1, 1.0), ("start-up", None, 1, 3.0),
              ("first epoch", r"^Epoch 1/", 1, 0.3), ("checkpoint", r"val_loss", 1, 0.0),
              ("evaluation", r"val_loss", 2, 0.1), ("plots", r"val_loss", 2, 0.5),
              ("plots or publishing", r"val_loss", 2, 0.9),
              ("after publishing", r"^artifacts in ", 1, 0.0)),
    "export": (("start-up", None, 1, 1.0), ("start-up", None, 1, 3.0),
               ("converting", r"^exporting ", 1, 0.1), ("verifying", r"^exporting ", 1, 0.4),
               ("publishing", rf"^  {TFLITE_INT8.key} .* ok$", 1, 0.0),
               ("after publishing", r"^published in ", 1, 0.0)),
}


def _signals(fresh, data: str) -> list[Case]:
    """SIGINT and SIGTERM in every phase of train and export (see PHASES)."""
    cases = []
    for stage, phases in PHASES.items():
        args = (QUICK_TRAIN if stage == "train" else QUICK_EXPORT) + ["--seed", "7"]
        for phase, pattern, nth, delay in phases:
            for sig in (signal.SIGINT, signal.SIGTERM):
                folder = fresh()
                before = snapshot(folder)
                code, stderr, hit = _signal_after(_cmd(stage, folder, args, data), sig, pattern,
                                                  nth, delay)
                verdict = _same_or_new(folder, before)
                changed = snapshot(folder) != before
                if verdict == "ok" and sig == signal.SIGINT:
                    verdict = _interrupt_message(code, stderr, changed)
                where = f"{phase}: {'at' if hit else 'never reached:'} {pattern or 'start'}"
                outcome = "new set" if changed else "previous set"
                cases.append(Case("signals", f"{signal.Signals(sig).name} to {stage}, {where} "
                                             f"+{delay:.1f} s ({outcome})", verdict))
    return cases


def _signal_after(cmd: list[str], sig: int, pattern: str | None, nth: int,
                  delay: float) -> tuple[int, str, bool]:
    """Run ``cmd``, send ``sig`` ``delay`` s after the ``nth`` stdout line matching ``pattern``.

    Returns (exit status, stderr, whether the signal was sent before the run ended).
    """
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**_env(), "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
    reader.start()
    seen = 0
    if pattern is None:
        seen = nth
    else:
        for line in proc.stdout:
            seen += bool(re.search(pattern, line))
            if seen >= nth:
                break
    hit = False
    if seen >= nth:
        time.sleep(delay)
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            hit = True
    proc.stdout.read()
    code = proc.wait(timeout=TIMEOUT_S)
    reader.join(timeout=TIMEOUT_S)
    return code, "".join(err), hit


def _interrupt_message(code: int, stderr: str, changed: bool) -> str:
    """'ok' if a Ctrl-C's exit status and message say what happened to the folder."""
    if "Traceback" in stderr:
        return f"traceback: {stderr.strip().splitlines()[-1]}"
    if code == 0:
        return "ok" if changed else "exit 0 but nothing was published"
    said_new = "the new set is in place" in stderr
    if code != 130 or said_new != changed:
        return f"exit {code}, {'new' if changed else 'previous'} set, said: {stderr.strip()[-120:]}"
    return "ok"


def _odd_targets(workdir: Path, template: Path, data: str, log=print) -> list[Case]:
    cases = []
    real = workdir / "linked-target"
    shutil.copytree(template, real)
    link = workdir / "linked" / "artifacts"
    link.parent.mkdir()
    link.symlink_to(real)
    done = _run(_cmd("train", link, QUICK_TRAIN, data))
    verdict = ("the symlink was replaced" if not link.is_symlink() else
               consistent(real) or ("ok" if done.returncode == 0 else f"exit {done.returncode}"))
    cases.append(Case("odd targets", "train through a symlinked folder", verdict))
    target = workdir / "a-file"
    target.write_text("not a folder")
    done = _run(_cmd("train", target, QUICK_TRAIN, data))
    verdict = ("ok" if done.returncode != 0 and target.read_text() == "not a folder"
               and "Traceback" not in done.stderr else f"exit {done.returncode}")
    cases.append(Case("odd targets", "--out naming a file", verdict))
    for options, name in (("size=2m", "a full disk (2 MB tmpfs)"),
                          ("ro,size=1m", "a read-only file system")):
        mount = workdir / f"mount-{len(cases)}"
        mount.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)],
                          capture_output=True).returncode != 0:
            log(f"  odd targets: {name}: not run (mounting a tmpfs needs root)")
            continue
        try:
            done = _run(_cmd("train", mount / "artifacts", QUICK_TRAIN, data))
            # the checkpoint folder may stay (a resume would continue from it); nothing else
            left = sorted(p.name for p in mount.iterdir() if not p.name.endswith("-checkpoint"))
            verdict = ("ok" if done.returncode == 1 and not left
                       and len(done.stderr.strip().splitlines()) == 1
                       else f"exit {done.returncode}, left {left}: {done.stderr.strip()[-200:]}")
            cases.append(Case("odd targets", f"train onto {name}", verdict))
        finally:
            subprocess.run(["umount", str(mount)], capture_output=True)
    return cases


def _changed_resume(fresh, data: str) -> list[Case]:
    """Interrupt a training after its first checkpoint, then resume it with changed flags/data."""
    cases = []
    for change in ("epochs", "data"):
        folder = fresh()
        before = snapshot(folder)
        proc = subprocess.Popen(_cmd("train", folder, ["--epochs", "3", "--limit", "600"], data),
                                cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        state = folder.parent / f".{folder.name}-checkpoint" / "state.json"
        deadline = time.monotonic() + TIMEOUT_S
        while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if not state.exists():
            cases.append(Case("changed resume", change, "no checkpoint to resume from"))
            continue
        if change == "epochs":
            args, other = ["--epochs", "6", "--limit", "600", "--resume"], data
        else:
            other = str(folder.parent / "other.npz")
            with np.load(data) as npz:
                arrays = {k: npz[k] for k in npz.files}
            arrays["y_train"] = (arrays["y_train"] + 1) % 10  # other labels: other data
            np.savez(other, **arrays)
            args = ["--epochs", "3", "--limit", "600", "--resume"]
        done = _run(_cmd("train", folder, args, other))
        verdict = ("ok" if done.returncode != 0 and snapshot(folder) == before
                   else f"resumed with other {change} (exit {done.returncode})")
        cases.append(Case("changed resume", f"resume with other {change}", verdict))
    return cases


def _hostile_data(fresh, workdir: Path, data: str) -> list[Case]:
    """Data that blocks, never ends or declares huge sizes: one line, quickly, nothing touched."""
    fifo = workdir / "data.fifo.npz"
    os.mkfifo(fifo)
    bomb = workdir / "bomb"
    bomb.mkdir()
    with np.load(data) as npz:
        for key, stem in (("x_train", "train-images-idx3-ubyte"), ("y_train",
                                                                   "train-labels-idx1-ubyte"),
                          ("x_test", "t10k-images-idx3-ubyte"), ("y_test",
                                                                 "t10k-labels-idx1-ubyte")):
            a = npz[key]
            dims = (2_000_000_000, *a.shape[1:]) if key == "x_train" else a.shape
            header = bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
            with gzip.open(bomb / f"{stem}.gz", "wb") as fh:
                fh.write(header + a.tobytes())
    cases = []
    for name, source in (("a FIFO", str(fifo)), ("/dev/zero", "/dev/zero"),
                         ("an IDX header declaring 2e9 images", str(bomb))):
        folder = fresh()
        before = snapshot(folder)
        start = time.monotonic()
        try:
            done = _run(_cmd("train", folder, QUICK_TRAIN, source))
            verdict = ("ok" if done.returncode == 1 and snapshot(folder) == before
                       and len(done.stderr.strip().splitlines()) == 1
                       else f"exit {done.returncode}: {done.stderr.strip()[-200:]}")
        except subprocess.TimeoutExpired:
            verdict = f"no answer in {TIMEOUT_S} s"
        cases.append(Case("hostile data", f"--data {name} ({time.monotonic() - start:.1f} s)",
                          verdict))
    return cases


def summary(cases: list[Case]) -> dict[str, dict[str, int]]:
    """{class: {"cases": n, "lost": m}} in the order the classes ran."""
    out: dict[str, dict[str, int]] = {}
    for c in cases:
        row = out.setdefault(c.kind, {"cases": 0, "lost": 0})
        row["cases"] += 1
        row["lost"] += c.lost
    return out
