"""The ways people run such models today, timed the same way as ``mnist-edge bench``.

Each baseline runs as a ``baseline`` job of a fresh worker (checks/worker.py: honest load time
and peak RSS), under .venv-tflite's Python for tflite-runtime. Imports only numpy and
mnist_edge's timing helpers at the top, so it runs in the device venvs.
"""

from __future__ import annotations

import gc
import time

import numpy as np

from mnist_edge.backends import runtime_version
from mnist_edge.bench import peak_rss_mb, percentiles


def _timed_per_image(step, images: np.ndarray, runs: int) -> tuple[list[int], list[int]]:
    """(nanoseconds per call, label per call) over ``runs`` images, cycling through the set."""
    pc = time.perf_counter_ns
    ns, labels = [], []
    gc.disable()
    for i in range(runs):
        img = images[i % len(images)]
        start = pc()
        labels.append(step(img))
        ns.append(pc() - start)
    gc.enable()
    return ns, labels


def textbook(model: str, backend: str, threads: int, images: np.ndarray, runs: int) -> dict:
    """The TensorFlow tutorials' loop: set_tensor / invoke / get_tensor, quantized in numpy per
    call."""
    start = time.perf_counter()
    if backend == "litert":
        from ai_edge_litert.interpreter import Interpreter
    elif backend == "tflite-runtime":
        from tflite_runtime.interpreter import Interpreter
    else:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    interp = Interpreter(model_path=model, num_threads=threads)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    load_s = time.perf_counter() - start

    def step(img: np.ndarray) -> int:
        x = img.astype(np.float32) / 255.0
        if inp["dtype"] != np.float32:  # as in the post-training quantization tutorial
            scale, zero_point = inp["quantization"]
            x = x / scale + zero_point
        x = np.expand_dims(x, axis=(0, -1)).astype(inp["dtype"])
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        y = interp.get_tensor(out["index"])[0]
        if out["dtype"] != np.float32:
            scale, zero_point = out["quantization"]
            y = (y.astype(np.float32) - zero_point) * scale
        return int(np.argmax(y))

    step(images[0])
    ns, labels = _timed_per_image(step, images, runs)
    return {"baseline": "textbook", "backend": backend, "runtime": runtime_version(backend),
            "threads": threads, "load_ms": round(load_s * 1000, 2), "latency_us": percentiles(ns),
            "throughput": {"1": round(1e9 / float(np.median(ns)), 1)}, "labels": labels}


def ort_default(model: str, images: np.ndarray, runs: int) -> dict:
    """A default onnxruntime InferenceSession called per image (its default thread count)."""
    start = time.perf_counter()
    import onnxruntime as ort

    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    load_s = time.perf_counter() - start

    def step(img: np.ndarray) -> int:
        x = (img.astype(np.float32) / 255.0)[None, :, :, None]
        return int(np.argmax(sess.run(None, {name: x})[0][0]))

    step(images[0])
    ns, labels = _timed_per_image(step, images, runs)
    return {"baseline": "ort-default", "backend": "onnxruntime",
            "runtime": runtime_version("onnxruntime"), "threads": "default",
            "load_ms": round(load_s * 1000, 2), "latency_us": percentiles(ns),
            "throughput": {"1": round(1e9 / float(np.median(ns)), 1)}, "labels": labels}


def keras_baseline(model: str, images: np.ndarray, runs: int, repeats: int = 3) -> dict:
    """Keras ``model.predict`` on the whole image set and a direct ``model(x)`` call per image."""
    start = time.perf_counter()
    import keras

    net = keras.models.load_model(model)
    load_s = time.perf_counter() - start
    x = images.astype(np.float32)[..., None] / 255.0
    net.predict(x[:256], verbose=0)  # builds the predict function
    seconds, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        probs = net.predict(x, verbose=0)
        seconds.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)

    def step(img: np.ndarray) -> int:
        return int(np.argmax(net(img.astype(np.float32)[None, :, :, None] / 255.0,
                                 training=False)[0]))

    step(images[0])
    ns, _ = _timed_per_image(step, images, runs)
    import tensorflow as tf

    return {"baseline": "keras", "backend": "keras", "runtime": f"keras {keras.__version__}, "
            f"tensorflow {tf.__version__}", "threads": "default",
            "load_ms": round(load_s * 1000, 2), "latency_us": percentiles(ns),
            "throughput": {"predict": round(len(x) / float(np.median(seconds)), 1),
                           "1": round(1e9 / float(np.median(ns)), 1)},
            "throughput_cpu": {"predict": round(len(x) / float(np.median(cpu)), 1)},
            "labels": probs.argmax(axis=1).tolist()}


def run(kind: str, model: str, images: str, runs: int, backend: str = "litert",
        threads: int = 1) -> dict:
    """One baseline's figures (a worker job: checks/worker.py), with this process's peak RSS."""
    x = np.load(images, allow_pickle=False)
    if kind == "textbook":
        row = textbook(model, backend, threads, x, runs)
    elif kind == "ort-default":
        row = ort_default(model, x, runs)
    elif kind == "keras":
        row = keras_baseline(model, x, runs)
    else:
        raise ValueError(f"unknown baseline {kind!r}; choose textbook, ort-default or keras")
    row["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return row
