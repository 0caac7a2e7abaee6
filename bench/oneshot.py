"""One image from a cold start: `mnist-edge predict` against a bare ai-edge-litert script and Keras.

Each command is a fresh process classifying one PNG; wall time is measured around the whole
process and peak RSS comes from the kernel (``os.wait4``'s ru_maxrss, see LAUNCHER), so both
include Python's start-up and every import, as a user would see them. Commands alternate; medians are reported.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common.artifacts import MODEL_FILE, ROOT

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


# The command is started by a small Python that forks and execs it: a child forked from the big
# benchmark process would carry that process's resident size into its own ru_maxrss.
LAUNCHER = """
import json, os, sys, time
out = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
err = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.dup2(out, 1)
    os.dup2(err, 2)
    os.execv(sys.argv[3], sys.argv[3:])
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
print(json.dumps({"wall_s": wall, "status": os.waitstatus_to_exitcode(status), "maxrss": usage.ru_maxrss}))
"""


def timed_process(cmd: list[str]) -> dict:
    """Wall seconds and peak RSS (MB) of one command, or its error."""
    with tempfile.TemporaryDirectory() as tmp:
        out_p, err_p = Path(tmp) / "out", Path(tmp) / "err"
        done = subprocess.run([sys.executable, "-S", "-c", LAUNCHER, str(out_p), str(err_p), *cmd],
                              capture_output=True, text=True)
        if done.returncode != 0:
            return {"error": (done.stderr.strip() or "launcher failed").splitlines()[-1]}
        res = json.loads(done.stdout)
        out, err = out_p.read_text(errors="replace"), err_p.read_text(errors="replace")
    if res["status"] != 0:
        tail = (err.strip() or f"exit status {res['status']}").splitlines()
        return {"error": tail[-1][:300]}
    rss_kb = res["maxrss"] / (1024 if sys.platform == "darwin" else 1)
    return {"wall_s": res["wall_s"], "peak_rss_mb": rss_kb / 1024, "output": out.strip()}


def one_image(python: str, repeats: int, manifest, image: np.ndarray, tmp: Path) -> dict:
    """Median wall time and peak RSS of each way to classify one PNG, keyed by a readable name.

    ``python`` runs the runtime and the bare script (a device-like venv); Keras runs in this one.
    """
    from PIL import Image

    png = tmp / "digit.png"
    Image.fromarray(image).save(png)
    int8 = next((e for e in manifest.files if e.format == "tflite" and e.precision == "int8"), None)
    keras_file = manifest.path.parent / MODEL_FILE
    commands = {"mnist-edge predict": [python, "-m", "mnist_edge", "predict", str(manifest.path.parent),
                                       str(png), "--backend", "litert"]}
    if int8 is not None:
        commands["bare ai-edge-litert script"] = [python, "-c", BARE_LITERT, str(int8.path), str(png)]
    if keras_file.is_file():
        commands["TensorFlow+Keras script"] = [sys.executable, "-c", KERAS, str(keras_file), str(png)]
    runs: dict[str, list[dict]] = {name: [] for name in commands}
    for i in range(repeats):
        for name, cmd in commands.items():
            if name.startswith("TensorFlow") and i >= max(1, repeats // 2):
                continue  # ~4 s and 500 MB per run: fewer repeats
            runs[name].append(timed_process(cmd))
    out = {}
    for name, results in runs.items():
        ok = [r for r in results if "error" not in r]
        if not ok:
            out[name] = {"error": results[0]["error"], "command": _show(commands[name], ROOT)}
            continue
        out[name] = {"wall_s": round(statistics.median(r["wall_s"] for r in ok), 3),
                     "peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in ok), 1),
                     "runs": len(ok), "python": _show([commands[name][0]], ROOT),
                     "output": ok[0]["output"].split("\t")[1:2] or ok[0]["output"].split()[-1:]}
    return out


def _show(cmd: list[str], root: Path) -> str:
    return " ".join(os.path.relpath(c, root) if c.startswith(str(root)) else c for c in cmd)
