"""Classify MNIST test images with the mnist-edge Python API; run on the emulated Pi and on the host.

Standalone on purpose: the device has only the standard library, numpy, the runtime and one
backend, so this file imports nothing from the repository. pi-check writes a plan and runs

    python3.11 device_run.py plan.json

which writes each job's labels/probabilities/raw outputs to an .npz and a summary to plan["result"].
"""

import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
import time

import numpy as np


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment():
    """What this interpreter is and what it can import: the facts the report shows per target."""
    import mnist_edge

    return {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "libc": "-".join(platform.libc_ver()),
        "numpy": np.__version__,
        "mnist_edge": os.path.dirname(mnist_edge.__file__),
        "versions": {d: _version(d) for d in ("mnist-edge", "ai-edge-litert", "onnxruntime",
                                              "tflite-runtime", "numpy")},
        "tensorflow_importable": importlib.util.find_spec("tensorflow") is not None,
    }


def run_job(job, images, batch):
    """Load one exported file through the manifest and classify ``job['count']`` images."""
    from mnist_edge import Classifier

    clf = Classifier.load(job["manifest"], backend=job["backend"], threads=1, key=job["key"])
    x = images[: job["count"]]
    clf.predict(x[:batch])  # warm-up: the first call sizes the interpreter's tensors
    labels, probs, raws = [], [], []
    start = time.perf_counter()
    for i in range(0, len(x), batch):
        p = clf.predict(x[i:i + batch])
        labels.append(np.array(p.labels))  # copies: results must not alias interpreter memory
        probs.append(np.array(p.probabilities))
        raws.append(np.array(p.raw))
    seconds = time.perf_counter() - start
    tmp = job["out"] + ".partial.npz"
    np.savez(tmp, labels=np.concatenate(labels), probabilities=np.concatenate(probs),
             raw=np.concatenate(raws))
    os.replace(tmp, job["out"])
    return {"backend": clf.backend, "format": clf.format, "precision": clf.precision,
            "images": int(len(x)), "seconds": seconds}


def main(plan_path):
    with open(plan_path) as fh:
        plan = json.load(fh)
    images = np.load(plan["images"])
    results = []
    for job in plan["jobs"]:
        try:
            res = run_job(job, images, plan["batch"])
        except Exception as exc:  # reported per job; the host side turns it into a failed check
            res = {"error": f"{type(exc).__name__}: {exc}"}
        results.append(dict(job, **res))
    summary = {"environment": environment(), "jobs": results,
               "tensorflow_imported": "tensorflow" in sys.modules}
    tmp = plan["result"] + ".partial"
    with open(tmp, "w") as fh:
        json.dump(summary, fh, indent=1)
    os.replace(tmp, plan["result"])


if __name__ == "__main__":
    main(sys.argv[1])
