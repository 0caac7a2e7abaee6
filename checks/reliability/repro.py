"""Reproducibility: the same --seed twice -> the same test accuracy and int8 file hash?

Two training runs with one seed (and one with another seed, to show the comparison can tell
runs apart), each exported to int8 TFLite; the report lists what was equal and what varied.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from common.artifacts import METRICS_FILE, MODEL_FILE, ROOT, weights_sha256
from mnist_edge.digest import sha256_file
from mnist_edge.formats import TFLITE_INT8
from mnist_edge.manifest import read_manifest

QUICK = ["--epochs", "1", "--limit", "6000"]


def _run(args: list[str]) -> None:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{(done.stdout + done.stderr)[-1500:]}")


def train_and_export(out: Path, seed: int, data: str | None) -> dict:
    """Train (quick config) and export int8 TFLite into ``out``; the figures to compare."""
    extra = ["--data", data] if data else []
    _run(["-m", "train", *QUICK, "--seed", str(seed), "--out", str(out), *extra])
    _run(["-m", "export", "--artifacts", str(out), "--formats", TFLITE_INT8.key, *extra])
    metrics = json.loads((out / METRICS_FILE).read_text())
    manifest = read_manifest(out)
    return {"seed": seed, "test_accuracy": metrics["test_accuracy"],
            "test_loss": metrics.get("test_loss"),
            "int8_sha256": sha256_file(out / TFLITE_INT8.filename),
            "int8_accuracy": manifest.files[0].verification["accuracy"],
            "weights_sha256": weights_sha256(out / MODEL_FILE)}


def reproducibility(workdir: Path, data: str | None, seed: int = 42) -> dict:
    """Runs A and B with ``seed``, C with ``seed + 1``; which figures match."""
    a = train_and_export(workdir / "repro-a", seed, data)
    b = train_and_export(workdir / "repro-b", seed, data)
    c = train_and_export(workdir / "repro-c", seed + 1, data)
    same = {k: a[k] == b[k] for k in ("test_accuracy", "test_loss", "int8_sha256", "int8_accuracy")}
    fa, fb = (np.fromfile(workdir / f"repro-{r}" / TFLITE_INT8.filename, np.uint8) for r in "ab")
    differing = int((fa != fb).sum()) if len(fa) == len(fb) else None
    return {"config": " ".join(QUICK), "runs": [a, b, c], "same_seed_equal": same,
            "int8_sizes": [len(fa), len(fb)], "int8_bytes_differing": differing,
            "accuracy_diff_same_seed": abs(a["test_accuracy"] - b["test_accuracy"]),
            "other_seed_differs": a["int8_sha256"] != c["int8_sha256"],
            "weights_equal": a["weights_sha256"] == b["weights_sha256"] != ""}
