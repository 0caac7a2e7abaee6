"""Run exported files on one backend through the runtime API; also a CLI for another venv.

The parity tool calls ``predict`` in-process for backends its own Python can load, and runs
this module under .venv-tflite's Python (numpy<2, tflite-runtime) for the rest:

    .venv-tflite/bin/python -m parity.worker --artifacts artifacts --backend tflite-runtime \\
        --keys tflite_int8,tflite_float32 --images /tmp/x/images.npy --out /tmp/x

which writes ``<key>.npz`` (labels, probabilities) per file and ``results.json`` (runtime
version, seconds, or the error) into --out. Imports only numpy and mnist_edge.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

RESULTS_FILE = "results.json"


def predict(artifacts: str | Path, key: str, backend: str, images: np.ndarray) -> dict:
    """Labels and probabilities of file ``key`` of the manifest in ``artifacts`` on ``backend``.

    Returns {"labels", "probabilities", "seconds", "runtime"}; raises MnistEdgeError.
    """
    from mnist_edge import Classifier, backends

    start = time.perf_counter()
    clf = Classifier.load(artifacts, backend=backend, key=key)
    pred = clf.predict(images)
    return {"labels": np.asarray(pred.labels, dtype=np.int64),
            "probabilities": np.asarray(pred.probabilities, dtype=np.float32),
            "seconds": time.perf_counter() - start, "runtime": backends.runtime_version(backend)}


def main(argv: list[str] | None = None) -> int:
    """Predict each key into --out; a file that fails gets its error in results.json."""
    from mnist_edge import MnistEdgeError

    p = argparse.ArgumentParser(prog="python -m parity.worker",
                                description="Run exported files on one backend (used by python -m parity).",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--artifacts", type=str, required=True, help="folder holding manifest.json")
    p.add_argument("--backend", type=str, required=True, help="runtime backend name")
    p.add_argument("--keys", type=str, required=True, help="comma-separated manifest keys")
    p.add_argument("--images", type=str, required=True, help=".npy of uint8 images [N,28,28]")
    p.add_argument("--out", type=str, required=True, help="folder for <key>.npz and results.json")
    args = p.parse_args(argv)
    images = np.load(args.images, allow_pickle=False)
    out = Path(args.out)
    results = {}
    for key in args.keys.split(","):
        try:
            r = predict(args.artifacts, key, args.backend, images)
        except MnistEdgeError as exc:
            results[key] = {"error": str(exc)}
            continue
        np.savez(out / f"{key}.npz", labels=r["labels"], probabilities=r["probabilities"])
        results[key] = {"seconds": r["seconds"], "runtime": r["runtime"]}
    (out / RESULTS_FILE).write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
