"""Registered classifiers side by side: each artifacts set's model against the first one's (the
reference), on accuracy, size, work per image and int8 speed, with the edge model's targets.

    from checks.bench.models import compare
    compare(["artifacts", "artifacts-edge"], ".venv-runtime/bin/python", test_images,
            runs=2000, rounds=7, tmp=Path("/tmp"))

Everything but the speed comes from what the sets recorded (metrics.json through the manifest's
``training`` section, the files' sizes and verified accuracy). The speed is the int8 TFLite
files' bare ``invoke()`` on ai-edge-litert, one thread, batch 1, timed in one fresh worker
process that alternates between the files for ``rounds`` rounds: a ratio taken within one run,
as the two cores are shared. The functions at the top import only numpy and ai-edge-litert (they
run in the device venv).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from common.artifacts import MODEL_FILE

INT8_KEY = "tflite_int8"
TIME_BACKEND = "litert"
# the edge model's targets, each against the reference measured in the same run
MIN_ACCURACY = 0.993           # Keras test accuracy
MAX_INT8_GAP = 0.001           # |int8 file's test accuracy - Keras's|
MAX_PARAMETERS = 50_000
MAX_MULTIPLY_ADDS_RATIO = 1.0  # of the reference's
MAX_TIME_RATIO = 0.5           # int8 invoke() p50, one thread, of the reference's
MAX_INT8_KB = 64


def invoke_side_by_side(models: list[str], images: str, runs: int, rounds: int) -> dict:
    """Bare batch-1 ``invoke()`` p50 (µs) of each int8 TFLite file on ai-edge-litert, one thread:
    the median over ``rounds`` rounds, each timing ``runs`` calls of every file in turn (order
    alternating), on the test images of an .npy cycled through. A worker job."""
    from ai_edge_litert.interpreter import Interpreter

    x = np.load(images, allow_pickle=False)
    interps = []
    for path in models:
        it = Interpreter(model_path=path, num_threads=1)
        it.allocate_tensors()
        inp = it.get_input_details()[0]
        scale, zero = inp["quantization"]
        # the file's own input encoding, prepared outside the timed call
        q = np.clip(np.round(x.astype(np.float32) / 255.0 / scale + zero),
                    np.iinfo(inp["dtype"]).min, np.iinfo(inp["dtype"]).max).astype(inp["dtype"])
        interps.append((it, inp["index"], q[..., None]))
    per_round: list[list[float]] = [[] for _ in models]
    pc = time.perf_counter_ns
    for r in range(rounds):
        order = range(len(models)) if r % 2 == 0 else range(len(models) - 1, -1, -1)
        for i in order:
            it, index, q = interps[i]
            ns = []
            for k in range(runs):
                it.set_tensor(index, q[k % len(q)][None])
                start = pc()
                it.invoke()
                ns.append(pc() - start)
            per_round[i].append(float(np.median(ns)) / 1000.0)
    return {"p50_us": [round(float(np.median(p)), 2) for p in per_round],
            "rounds_us": [[round(v, 2) for v in p] for p in per_round]}


def describe(folder: str | Path) -> dict:
    """One set's recorded figures: the model's name, size of work, accuracy, training time."""
    from mnist_edge.manifest import manifest_path, read_manifest

    path = manifest_path(Path(folder))
    if path is None:
        raise ValueError(f"{folder}: no manifest.json; export it first (make export "
                         "MODEL=NAME, or python -m export --artifacts FOLDER)")
    manifest = read_manifest(path)
    training = manifest.data.get("training")
    training = training if isinstance(training, dict) else {}  # null, or a hand-edited value
    int8 = next((f for f in manifest.data.get("files", []) if f.get("key") == INT8_KEY), None)
    if int8 is None:
        raise ValueError(f"{folder}: its manifest lists no {INT8_KEY} file; export it with the "
                         "default formats")
    keras_acc = _number(training, "test_accuracy", folder)
    macs = _number(training, "multiply_adds", folder)
    if macs is None and (path.parent / MODEL_FILE).is_file():  # a set trained before the count
        macs = _count_multiply_adds(path.parent / MODEL_FILE)
    int8_acc = _number(int8.get("verification") or {}, "accuracy", folder)
    return {"folder": str(folder), "model": training.get("model", "reference"),
            "parameters": _number(training, "parameters", folder),
            "multiply_adds": macs,
            "keras_accuracy": None if keras_acc is None else round(keras_acc, 4),
            "int8_accuracy": int8_acc,
            "int8_gap": None if keras_acc is None or int8_acc is None
            else round(abs(int8_acc - keras_acc), 4),
            "int8_kb": round(int8["size"] / 1024, 1), "int8_file": str(path.parent / int8["path"]),
            "epochs": training.get("epochs"), "train_images": training.get("train_images"),
            "augment": training.get("augment", False),
            "train_wall_s": training.get("wall_time_s")}


def _number(section: dict, key: str, folder: str | Path):
    """``section[key]`` when it is a number, None when absent; a ValueError naming the figure
    for anything else (a hand-edited manifest)."""
    value = section.get(key)
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    raise ValueError(f"{folder}: manifest.json's {key} is {value!r}, not a number; export the "
                     "set again (make export MODEL=NAME)")


def _count_multiply_adds(model_file: Path) -> int:
    """The multiply-adds of a saved Keras model (TensorFlow; the bench's own venv)."""
    from common.tf import import_tensorflow

    import_tensorflow(False)
    import keras

    from common.work import multiply_adds

    return multiply_adds(keras.models.load_model(model_file, compile=False))


def compare(folders: list[str], python: str, images: np.ndarray, runs: int, rounds: int,
            tmp: Path) -> dict:
    """The sets of ``folders`` side by side (the first is the one the others are held against):
    each one's figures, its int8 time and ratios to the first, and the targets of the others."""
    from checks.worker import job_name, run_once

    sets = [describe(f) for f in folders]
    npy = tmp / "compare-images.npy"
    np.save(npy, images)
    timed = run_once(python, {"job": job_name(invoke_side_by_side),
                              "models": [s["int8_file"] for s in sets], "images": str(npy),
                              "runs": runs, "rounds": rounds})
    if not timed.get("ok"):
        raise ValueError(f"timing the int8 files failed: {timed.get('error')}")
    base = sets[0]
    for s, p50, per_round in zip(sets, timed["p50_us"], timed["rounds_us"], strict=True):
        s["int8_p50_us"], s["int8_rounds_us"] = p50, per_round
        s["time_ratio"] = round(p50 / timed["p50_us"][0], 3)
        s["size_ratio"] = round(s["int8_kb"] / base["int8_kb"], 3)
        s["multiply_adds_ratio"] = (None if not s["multiply_adds"] or not base["multiply_adds"]
                                    else round(s["multiply_adds"] / base["multiply_adds"], 3))
    return {"present": True, "reference": base["model"], "backend": TIME_BACKEND, "threads": 1,
            "runs": runs, "rounds": rounds, "sets": sets,
            "targets": [t for s in sets[1:] for t in targets(s)]}


def targets(s: dict) -> list[dict]:
    """The device-model targets for one set, each with its value and whether it is met (None:
    not measured)."""
    def row(what: str, value, goal: str, met) -> dict:
        return {"target": f"{s['model']}: {what}", "value": value, "goal": goal,
                "met": None if value is None else bool(met(value))}

    return [
        row("Keras test accuracy", s["keras_accuracy"], f">= {MIN_ACCURACY:.1%}",
            lambda v: v >= MIN_ACCURACY),
        row("int8 vs Keras test accuracy, gap", s["int8_gap"], f"<= {MAX_INT8_GAP * 100:.1f} pt",
            lambda v: v <= MAX_INT8_GAP),
        row("parameters", s["parameters"], f"<= {MAX_PARAMETERS:,}",
            lambda v: v <= MAX_PARAMETERS),
        row("multiply-adds / the reference's", s["multiply_adds_ratio"],
            f"<= {MAX_MULTIPLY_ADDS_RATIO}x", lambda v: v <= MAX_MULTIPLY_ADDS_RATIO),
        row(f"int8 invoke() p50 / the reference's ({TIME_BACKEND}, one thread)",
            s["time_ratio"], f"<= {MAX_TIME_RATIO}x", lambda v: v <= MAX_TIME_RATIO),
        row("int8 file (KB)", s["int8_kb"], f"<= {MAX_INT8_KB}", lambda v: v <= MAX_INT8_KB),
    ]
