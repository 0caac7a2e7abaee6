"""Run an exported file in its own runtime (ai-edge-litert or onnxruntime) and describe its I/O.

    runner = open_runner("tflite", "artifacts/model_int8.tflite")
    probs = runner.predict(x)        # x float32 [N,28,28,1] in [0,1] -> float32 [N,10]
    runner.input, runner.output      # manifest-style specs: name, shape, dtype, quantization
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

BATCH = 1000  # images per invoke when running the whole test set


class TfliteRunner:
    """An ai-edge-litert interpreter with quantization handled on both ends."""

    def __init__(self, path: str | Path):
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_path=str(path))
        self._in = self._interpreter.get_input_details()[0]
        self._out = self._interpreter.get_output_details()[0]
        self._batch = None
        self.input = _tflite_spec(self._in)
        self.output = _tflite_spec(self._out)
        self.runtime = f"ai-edge-litert {_version('ai-edge-litert')}"

    def predict(self, x: np.ndarray) -> np.ndarray:
        """float32 [N,28,28,1] in [0,1] -> float32 probabilities [N,10]."""
        return np.concatenate([self._run(x[i: i + BATCH]) for i in range(0, len(x), BATCH)])

    def _run(self, x: np.ndarray) -> np.ndarray:
        it = self._interpreter
        if self._batch != len(x):
            it.resize_tensor_input(self._in["index"], [len(x), *self._in["shape"][1:]])
            it.allocate_tensors()
            self._batch = len(x)
        it.set_tensor(self._in["index"], quantize(x, self._in["dtype"], self.input["quantization"]))
        it.invoke()
        return dequantize(it.get_tensor(self._out["index"]), self.output["quantization"])


class OnnxRunner:
    """An onnxruntime CPU session; the ONNX files take and return float32."""

    def __init__(self, path: str | Path):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._in = self._session.get_inputs()[0]
        self.input = _onnx_spec(self._in)
        self.output = _onnx_spec(self._session.get_outputs()[0])
        self.runtime = f"onnxruntime {_version('onnxruntime')}"

    def predict(self, x: np.ndarray) -> np.ndarray:
        """float32 [N,28,28,1] in [0,1] -> float32 probabilities [N,10]."""
        return np.concatenate([self._session.run(None, {self._in.name: x[i: i + BATCH]})[0]
                               for i in range(0, len(x), BATCH)])


RUNNERS = {"tflite": TfliteRunner, "onnx": OnnxRunner}


def open_runner(kind: str, path: str | Path):
    """A runner for a file of this kind ("tflite" or "onnx")."""
    return RUNNERS[kind](path)


def quantize(x: np.ndarray, dtype, quantization: dict | None) -> np.ndarray:
    """float -> the tensor's dtype, using real = scale * (q - zero_point) when quantized."""
    if quantization is None:
        return x.astype(dtype, copy=False)
    info = np.iinfo(dtype)
    q = np.round(x / quantization["scale"]) + quantization["zero_point"]
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, quantization: dict | None) -> np.ndarray:
    """The tensor's values as float32."""
    if quantization is None:
        return q.astype(np.float32, copy=False)
    return ((q.astype(np.float32) - quantization["zero_point"]) * quantization["scale"]).astype(np.float32)


def _tflite_spec(detail: dict) -> dict:
    scale, zero_point = detail["quantization"]
    shape = [int(d) for d in detail["shape_signature"]]
    return {
        "name": detail["name"],
        "shape": [None if d < 0 else d for d in shape],
        "dtype": np.dtype(detail["dtype"]).name,
        "quantization": {"scale": float(scale), "zero_point": int(zero_point)} if scale else None,
    }


_ONNX_DTYPES = {"tensor(float)": "float32", "tensor(int8)": "int8", "tensor(uint8)": "uint8"}


def _onnx_spec(arg) -> dict:
    return {
        "name": arg.name,
        "shape": [d if isinstance(d, int) else None for d in arg.shape],
        "dtype": _ONNX_DTYPES.get(arg.type, arg.type),
        "quantization": None,
    }


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)
