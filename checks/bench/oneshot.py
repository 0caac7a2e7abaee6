"""One image from a cold start: `mnist-edge predict` against a bare ai-edge-litert script and
Keras.

Each command is a fresh process classifying one PNG, measured by checks/measure.py (wall time
around the whole process, peak RSS from the kernel), so both include Python's start-up and every
import, as a user would see them. Commands alternate; medians are reported.
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

import numpy as np

from checks.measure import Measured, measure
from common.artifacts import MODEL_FILE, ROOT
from mnist_edge.formats import TFLITE_INT8

# What a user writes without the runtime: decode, resize, quantize, invoke, argmax.
BARE_LITERT = """
import sys
import numpy as np
from PIL import Image
from ai_edge_litert.interpreter import Interpreter
interp = Interpreter(model_path=sys.argv[1])
interp.allocate_tensors()
inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
x = np.asarray(Image.open(sys.argv[2]).convert("L").resize((28, 28)), dtype=np.float32) / 255.0
scale, zero_point = inp["quantization"]
if inp["dtype"] != np.float32:
    x = np.round(x / scale + zero_point)
interp.set_tensor(inp["index"], x.reshape(1, 28, 28, 1).astype(inp["dtype"]))
interp.invoke()
print(sys.argv[2], int(np.argmax(interp.get_tensor(out["index"])[0])))
"""

KERAS = """
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
from PIL import Image
import keras
model = keras.models.load_model(sys.argv[1])
x = np.asarray(Image.open(sys.argv[2]).convert("L").resize((28, 28)), dtype=np.float32) / 255.0
print(sys.argv[2], int(np.argmax(model.predict(x.reshape(1, 28, 28, 1), verbose=0)[0])))
"""


def one_image(python: str, repeats: int, manifest, image: np.ndarray, tmp: Path) -> dict:
    """Median wall time and peak RSS of each way to classify one PNG, keyed by a readable name.

    ``python`` runs the runtime and the bare script (a device-like venv); Keras runs in this one.
    """
    from PIL import Image

    png = tmp / "digit.png"
    Image.fromarray(image).save(png)
    int8 = next((e for e in manifest.files if e.key == TFLITE_INT8.key), None)
    keras_file = manifest.path.parent / MODEL_FILE
    commands = {"mnist-edge predict": [python, "-m", "mnist_edge", "predict",
                                       str(manifest.path.parent), str(png), "--backend", "litert"]}
    if int8 is not None:
        commands["bare ai-edge-litert script"] = [python, "-c", BARE_LITERT, str(int8.path),
                                                  str(png)]
    if keras_file.is_file():
        commands["TensorFlow+Keras script"] = [sys.executable, "-c", KERAS, str(keras_file),
                                               str(png)]
    runs: dict[str, list[Measured]] = {name: [] for name in commands}
    for i in range(repeats):
        for name, cmd in commands.items():
            if name.startswith("TensorFlow") and i >= max(1, repeats // 2):
                continue  # ~4 s and 500 MB per run: fewer repeats
            runs[name].append(measure(cmd))
    out = {}
    for name, results in runs.items():
        ok = [r for r in results if r.error is None]
        if not ok:
            out[name] = {"error": results[0].error, "command": _show(commands[name], ROOT)}
            continue
        printed = ok[0].stdout.strip()
        out[name] = {"wall_s": round(statistics.median(r.wall_s for r in ok), 3),
                     "peak_rss_mb": round(statistics.median(r.peak_rss_mb for r in ok), 1),
                     "runs": len(ok), "python": _show([commands[name][0]], ROOT),
                     "output": printed.split("\t")[1:2] or printed.split()[-1:]}
    return out


def _show(cmd: list[str], root: Path) -> str:
    return " ".join(os.path.relpath(c, root) if c.startswith(str(root)) else c for c in cmd)


def self_test(python: str, repeats: int, manifest) -> dict:
    """Median wall time and peak RSS of ``mnist-edge verify`` on the artifacts folder (every file
    on the golden set) from a cold start in ``python``, and the files it passed."""
    cmd = [python, "-m", "mnist_edge", "verify", str(manifest.path.parent)]
    runs = [measure(cmd) for _ in range(repeats)]
    ok = [r for r in runs if r.error is None]
    if not ok:
        return {"error": runs[0].error, "command": _show(cmd, ROOT)}
    return {"wall_s": round(statistics.median(r.wall_s for r in ok), 3),
            "peak_rss_mb": round(statistics.median(r.peak_rss_mb for r in ok), 1),
            "runs": len(ok), "python": _show([python], ROOT),
            "files_passed": sum(line.startswith("OK") for line in ok[0].stdout.splitlines())}
