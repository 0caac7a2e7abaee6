"""Write reports/reliability.md and reliability.json from the figures the run just measured."""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from pathlib import Path

from checks import reports
from checks.reliability.hostile import CLASSES


def write_report(out: Path, fuzz: dict, interrupts: list, repro: dict | None, memory: list,
                 threads: list, command: str, build_side: list | None = None) -> Path:
    """reports/reliability.md (+ .json); returns the markdown path."""
    data = {"created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": command, "machine": f"{platform.machine()}, {platform.python_version()}",
            "fuzz": fuzz, "interruptions": interrupts, "reproducibility": repro,
            "memory": memory, "threads": threads, "build_side": build_side or []}
    return reports.write(out, "reliability", data, "\n".join(_markdown(data)))["md"]


def _markdown(d: dict) -> list[str]:
    lines = [f"# Reliability ({d['created_utc']})", "",
             f"Written by `{d['command']}` on {d['machine']}; every figure below was measured by "
             "that run.", ""]
    lines += ["## Fuzzing (property: a result or a one-line MnistEdgeError, the process never "
              "dies)", "",
              "| class | target | cases | result | refused (one-line error) | failures | crashes | "
              "hangs | interpreter crashes contained by the probe |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    total = fails = 0
    per_class: dict[str, int] = {}
    for target, t in d["fuzz"].items():
        total, fails = total + t["tried"], fails + t["failures"]
        kind = CLASSES.get(target, "other")
        per_class[kind] = per_class.get(kind, 0) + t["tried"]
        lines.append(f"| {kind} | {target} | {t['tried']} | {t['ok']} | {t['error']} | "
                     f"{t['failures']} | {t['crash']} | {t['hang']} | {t['contained_crashes']} |")
    lines += ["", f"**{total} cases, {fails} failures.** Cases per class: "
              + ", ".join(f"{k} {n:,}" for k, n in per_class.items()) + "."]
    for target, t in d["fuzz"].items():
        for e in t["examples"]:
            lines.append(f"- {target} {e['outcome']}: {e['detail']} "
                         f"(spec `{json.dumps(e['spec'])}`)")
    lines += ["", "## Interrupted runs (SIGKILL of the whole `make` process group, temp artifacts "
              "folder)", "",
              "| stage | full run s | kill after s | had finished | artifacts/ held |",
              "|---|---:|---:|---|---|"]
    lost = 0
    for s in d["interruptions"]:
        lost += s["lost"]
        for k in s["kills"]:
            lines.append(f"| make {s['stage']} | {s['full_run_s']:.0f} | {k['after_s']} | "
                         f"{'yes' if k['finished_first'] else 'no'} | {k['verdict']} set |")
        lines.append(f"| make {s['stage']} (next run, not killed) | | | | "
                     + ("succeeded: new set" if s["final_run_ok"]
                        else "FAILED: " + s["final_verdict"][-200:]) + " |")
    points = sum(len(s["kills"]) for s in d["interruptions"])
    lines += ["", f"**{points} kill points, {lost} artifact sets lost.**", ""]
    r = d["reproducibility"]
    if r:
        a, b, c = r["runs"]
        eq = r["same_seed_equal"]
        lines += [f"## Reproducibility (`python -m train {r['config']} --seed S`, then int8 TFLite "
                  "export)", "",
                  "| run | seed | test accuracy | test loss | int8 accuracy | int8 sha256 |",
                  "|---|---:|---:|---:|---:|---|"]
        for name, run in zip("ABC", (a, b, c), strict=True):
            lines.append(f"| {name} | {run['seed']} | {run['test_accuracy']:.4f} | "
                         f"{run['test_loss']:.6f} | {run['int8_accuracy']:.4f} | "
                         f"{run['int8_sha256'][:16]}... |")
        accuracy = ("equal" if eq["test_accuracy"]
                    else f"differs by {r['accuracy_diff_same_seed']:.4g}")
        sizes = ("" if eq["int8_sha256"]
                 else "; the int8 files are {} and {} bytes, {} bytes differ"
                 .format(*r["int8_sizes"], r["int8_bytes_differing"]))
        other = ("gives another int8 file" if r["other_seed_differs"]
                 else "gives the SAME int8 file (check the seed is used)")
        lines += ["", f"Same seed (A vs B): test accuracy {accuracy}, int8 file hash "
                  f"{'equal' if eq['int8_sha256'] else 'differs'}, weights "
                  f"{'bit-identical' if r['weights_equal'] else 'differ'}{sizes}. Another seed (C) "
                  f"{other}.", ""]
    lines += ["## Memory: `mnist-edge predict ARTIFACTS images.npy` (the test set repeated)", "",
              "| images | .npy MiB | peak RSS MiB | seconds | exit |", "|---:|---:|---:|---:|---:|"]
    for m in d["memory"]:
        lines.append(f"| {m['images']} | {m['npy_mib']} | {m['peak_rss_mib']} | {m['seconds']} | "
                     f"{m['exit_status']} |")
    if len(d["memory"]) >= 2:
        lo, hi = d["memory"][0], d["memory"][-1]
        lines += ["", f"Peak RSS grows by {hi['peak_rss_mib'] - lo['peak_rss_mib']:+.1f} MiB from "
                  f"{lo['images']} to {hi['images']} images."]
    lines += ["", "## Thread safety: N threads share one Classifier, each answer vs the serial "
              "answer", "",
              "| file | backend | threads | calls | answers differing |",
              "|---|---|---:|---:|---:|"]
    for t in d["threads"]:
        lines.append(f"| {t['key']} | {t['backend']} | {t['threads']} | {t['calls']} | "
                     f"{t['mismatches']} |")
    lines += _build_side(d["build_side"])
    lines += ["", *THREAT_MODEL]
    return lines


def _build_side(cases: list) -> list[str]:
    """The build side's classes: cases tried and sets lost, then each case."""
    if not cases:
        return []
    kinds: dict[str, list[int]] = {}
    for c in cases:
        kinds.setdefault(c["kind"], [0, 0])
        kinds[c["kind"]][0] += 1
        kinds[c["kind"]][1] += c["lost"]
    lines = ["", "## The build side under hostile conditions (train and export, quick settings)",
             "", "| class | cases | sets lost or mixed |", "|---|---:|---:|"]
    lines += [f"| {k} | {n} | {lost} |" for k, (n, lost) in kinds.items()]
    lines += ["", "| class | case | the folder afterwards |", "|---|---|---|"]
    lines += [f"| {c['kind']} | {c['name']} | {c['verdict']} |" for c in cases]
    return lines


THREAT_MODEL = [
    "## Threat model",
    "",
    "What the runtime trusts:",
    "- `manifest.json` in an artifacts folder: the sizes and sha256 it lists are the reference. "
    "A file that differs from them never reaches an interpreter; a manifest itself is read as "
    "a bounded regular file and its fields are type-checked.",
    "- The installed interpreters (ai-edge-litert, onnxruntime, tflite-runtime) and Pillow, run on "
    "files that passed those checks.",
    "",
    "What it refuses, with one line and without a traceback:",
    "- model or manifest paths that are devices, pipes or sockets, larger than their limits, or "
    "that resolve outside the artifacts folder (symlinks included);",
    "- image formats other than PNG, JPEG, BMP, GIF, TIFF, WebP and PPM/PGM/PBM, whatever the "
    "file name (so no external decoder such as Ghostscript is started), and images whose declared "
    "size would decode beyond the memory budget;",
    "- on tflite-runtime, which has no FlatBuffer verifier, a model file no manifest vouches for, "
    "unless the user opts in (`--unverified`, `probe=True`);",
    "- thread counts above 64, wrong types in every public call, unwritable output (exit 2);",
    "- ONNX models that keep tensor data in external files (never looked for in the current "
    "folder); links out of a walked folder; any existing name in the `--crops` folder (a crop "
    "takes the next free name, never writes through a link); control characters in printed "
    "names and manifest text (escaped). docs/reliability.md gives the limits of each.",
    "",
    "What it cannot protect against:",
    "- a malicious model with a matching manifest: whoever can write the artifacts folder can "
    "write both, and the sha256 check proves only that the file is the one exported;",
    "- bugs in the interpreters and decoders themselves on files that pass every check "
    "(`--unverified` files on tflite-runtime above all: the child-process try is best effort);",
    "- a user who points the CLI at any file they can read: inputs are theirs to choose, so "
    "symlinks named on the command line and links to image files are followed;",
    "- code in the environment the runtime runs in (site-packages, the interpreter itself); "
    "children it starts are isolated from the current folder and PYTHON* variables only.",
]
