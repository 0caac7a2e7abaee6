"""Interpreters behind one small interface: load bytes, ``forward`` a prepared batch, tensor specs.

One table (``BACKENDS``) names every backend, the format it runs, the module it needs and the
pip command that installs it; selection, error messages and ``mnist-edge info`` all read it.
Interpreter modules are imported only when a backend is created, so importing mnist_edge
stays fast and never loads TensorFlow.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from mnist_edge import quiet
from mnist_edge.errors import BackendError, ModelError
from mnist_edge.formats import backend_order


@dataclass(frozen=True)
class BackendInfo:
    """A row of the backend table."""

    name: str
    format: str
    module: str        # import name, probed with importlib.util.find_spec (no import)
    install: str       # the pip command that makes it available
    dists: tuple[str, ...]  # distributions whose version names the runtime (the first installed)


BACKENDS = {
    "litert": BackendInfo("litert", "tflite", "ai_edge_litert", "pip install 'mnist-edge[litert]'",
                          ("ai-edge-litert",)),
    "tflite-runtime": BackendInfo("tflite-runtime", "tflite", "tflite_runtime",
                                  "pip install 'mnist-edge[tflite]' "
                                  "(tflite-runtime 2.14 needs numpy<2)", ("tflite-runtime",)),
    "tensorflow": BackendInfo("tensorflow", "tflite", "tensorflow", "pip install tensorflow",
                              ("tensorflow-cpu", "tensorflow")),
    "onnxruntime": BackendInfo("onnxruntime", "onnx", "onnxruntime",
                               "pip install 'mnist-edge[onnx]'", ("onnxruntime",)),
}
IMAGE_DIMS = (28, 28, 1)  # one classifier input, without the batch dimension

# Interpreters that run the FlatBuffer verifier themselves; tflite-runtime 2.14 does not and
# segfaults on a truncated file, so unverified files are first loaded in a child process.
VERIFYING = {"litert", "tensorflow", "onnxruntime"}


@dataclass(frozen=True)
class TensorSpec:
    """A model input or output: name, shape (None for a dynamic size), dtype, quantization."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype[Any]
    scale: float | None = None       # real = scale * (q - zero_point); None for float tensors
    zero_point: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The manifest's form of the spec: name, shape, dtype name, quantization or None."""
        quant = None if self.scale is None else {"scale": self.scale, "zero_point": self.zero_point}
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype.name,
                "quantization": quant}


def unusable_reason(name: str) -> str | None:
    """Why backend ``name`` cannot run here (not installed, wrong numpy), or None if it can."""
    info = BACKENDS[name]
    if importlib.util.find_spec(info.module) is None:
        return f"{info.module} is not installed"
    if name == "tflite-runtime" and int(np.__version__.split(".")[0]) >= 2:
        return f"tflite-runtime 2.14 crashes with numpy {np.__version__}; it needs numpy<2"
    return None


def runtime_version(name: str) -> str:
    """'ai-edge-litert 2.3.0'-style name and version of the library behind backend ``name``."""
    from importlib.metadata import PackageNotFoundError, version

    for dist in BACKENDS[name].dists if name in BACKENDS else ():
        try:
            return f"{dist} {version(dist)}"
        except PackageNotFoundError:
            continue
    return name


def available(fmt: str) -> list[str]:
    """Backends that can run format ``fmt`` here, in auto-selection order."""
    return [name for name in backend_order(fmt) if unusable_reason(name) is None]


def missing_backend_error(fmt: str, backend: str = "auto") -> BackendError:
    """The error for 'nothing here runs this format', naming the pip install that fixes it."""
    if backend != "auto":
        info = BACKENDS[backend]
        return BackendError(f"backend {backend!r} cannot run here ({unusable_reason(backend)}); "
                            f"fix: {info.install}, or use --backend auto")
    first = BACKENDS[backend_order(fmt)[0]]
    return BackendError(f"no installed interpreter runs {fmt} models; fix: {first.install}")


def create(name: str, content: bytes, threads: int) -> Backend:
    """Instantiate backend ``name`` on the model bytes (already checked by the caller)."""
    reason = unusable_reason(name)
    if reason:
        raise missing_backend_error(BACKENDS[name].format, name)
    if BACKENDS[name].format == "onnx":
        return OnnxBackend(content, threads)
    return TfliteBackend(name, content, threads)


_PROBE = """
import sys
import numpy as np
from mnist_edge import backends
from mnist_edge.errors import MnistEdgeError
try:
    b = backends.create(sys.argv[1], sys.stdin.buffer.read(), 1)
    for n in (1, 3):  # also resize the input, as predict() does for batches
        b.forward(np.zeros((n, 28, 28, 1), dtype=b.input.dtype))
except (MnistEdgeError, RuntimeError, ValueError) as exc:
    print(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    sys.exit(3)
"""


def child_python(code: str) -> list[str]:
    """The command that runs ``code`` in a child of this Python, isolated from its surroundings.

    ``-I`` ignores the current folder, the PYTHON* variables and the user's site-packages, so a
    folder named ``mnist_edge`` (or ``numpy``) where the command is run cannot inject code; the
    folder this package was imported from is added back so the child finds the same mnist_edge.
    """
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return [sys.executable, "-I", "-c", f"import sys\nsys.path.append({here!r})\n{code}"]


def probe(name: str, content: bytes, timeout: float = 30.0) -> None:
    """Load the model and run one image in a child process; ModelError if that fails or crashes.

    This contains a crash of a native interpreter on a malformed file (the child dies, this
    process does not). It costs one Python start-up, so it is used only for files that no
    manifest vouches for, on backends without their own verifier.
    """
    import subprocess

    try:
        done = subprocess.run([*child_python(_PROBE), name], input=content,
                              capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ModelError(f"loading the model with {name} did not finish in {timeout:.0f} s "
                         "(checked in a child process); the file is probably malformed") from None
    if done.returncode == 0:
        return
    detail = done.stdout.decode(errors="replace").strip().splitlines()
    if done.returncode < 0:
        raise ModelError(f"the {name} interpreter crashed on this file (signal {-done.returncode}, "
                         "contained in a child process); the file is corrupt or truncated, "
                         "copy it again")
    raise ModelError(detail[-1] if detail else f"the {name} interpreter rejected the model "
                     f"(exit status {done.returncode} in a child process)")


class Backend:
    """What the Classifier needs from an interpreter."""

    name: str
    format: str
    input: TensorSpec
    output: TensorSpec

    def prepare(self, n: int, dims: tuple[int, ...] = IMAGE_DIMS) -> np.ndarray:
        """The writable input buffer for ``n`` inputs of shape ``dims``, [n, *dims] in the input's
        dtype (dims other than [28,28,1] for a model with a dynamic size, the line reader's width).

        The caller fills it in place (no extra copy), drops it, then calls ``run``. For TFLite
        it is a view of the interpreter's own tensor memory: never keep it past ``run``.
        """
        raise NotImplementedError

    def run(self) -> np.ndarray:
        """Run the model on the prepared buffer; returns a fresh output array ([n,10] for the
        classifier)."""
        raise NotImplementedError

    def bare_call(self) -> Callable[[], object]:
        """The interpreter's own call on the prepared input (``invoke``, ``session.run``).

        No input conversion, no output copy: the benchmark's floor for this file and backend.
        """
        raise NotImplementedError

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Run one batch already in the input's dtype and shape ([n,28,28,1] for the classifier);
        returns its output ([n,10])."""
        self.prepare(len(batch), batch.shape[1:])[...] = batch
        return self.run()


def _quiet_native_stderr() -> contextlib.AbstractContextManager[None]:
    """The interpreters' C++ log lines hidden, unless MNIST_EDGE_VERBOSE=1."""
    return contextlib.nullcontext() if quiet.verbose() else quiet.silenced((2,))


def _import_interpreter(name: str) -> Any:
    try:
        if name == "litert":
            from ai_edge_litert.interpreter import Interpreter
        elif name == "tflite-runtime":
            from tflite_runtime.interpreter import Interpreter
        else:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
            with _quiet_native_stderr():  # TensorFlow logs while it loads, before any level applies
                import tensorflow as tf
            Interpreter = tf.lite.Interpreter
    except Exception as exc:  # a broken install raises anything from ImportError to AttributeError
        raise BackendError(f"backend {name!r} failed to import ({type(exc).__name__}: {exc}); "
                           f"reinstall it: {BACKENDS[name].install}") from None
    return Interpreter


def _spec(details: dict[str, Any]) -> TensorSpec:
    scale, zero_point = details.get("quantization", (0.0, 0))
    signature = details.get("shape_signature", details["shape"])
    shape = tuple(None if int(d) < 0 else int(d) for d in signature)  # None: resizable
    quantized = scale != 0.0 and np.dtype(details["dtype"]).kind in "iu"
    return TensorSpec(details["name"], shape, np.dtype(details["dtype"]),
                      float(scale) if quantized else None, int(zero_point) if quantized else None)


class TfliteBackend(Backend):
    """ai-edge-litert, tflite-runtime or tf.lite: the same Interpreter API."""

    format = "tflite"

    def __init__(self, name: str, content: bytes, threads: int):
        Interpreter = _import_interpreter(name)
        self.name = name
        try:
            with _quiet_native_stderr():
                self._interp = Interpreter(model_content=content, num_threads=threads)
                self._interp.allocate_tensors()
            inputs, outputs = self._interp.get_input_details(), self._interp.get_output_details()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"the TFLite interpreter rejected the model ({first_line(exc)}); "
                             "the file is corrupt or not an mnist-edge export") from None
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"the model has {len(inputs)} inputs and {len(outputs)} outputs; "
                             "an mnist-edge model has one of each")
        self._in, self._out = inputs[0]["index"], outputs[0]["index"]
        self._shape = tuple(int(d) for d in inputs[0]["shape"])
        self.input, self.output = _spec(inputs[0]), _spec(outputs[0])

    def prepare(self, n: int, dims: tuple[int, ...] = IMAGE_DIMS) -> np.ndarray:
        interp = self._interp
        shape = (n, *dims)
        if shape != self._shape:
            # resizing re-plans the interpreter (and its delegate): done only when the size changes
            interp.resize_tensor_input(self._in, list(shape))
            interp.allocate_tensors()
            self._shape = shape
        # A view of the input tensor's memory, filled in place: no set_tensor checks and copy.
        # It is fetched anew for every call and must be dropped before run(): the interpreter
        # may move its buffers (a delegate re-plans on the first invoke), and invoke() refuses
        # to run while views exist.
        view: np.ndarray = interp.tensor(self._in)()
        return view

    def run(self) -> np.ndarray:
        self._interp.invoke()
        out: np.ndarray = self._interp.get_tensor(self._out)
        return out

    def bare_call(self) -> Callable[[], object]:
        invoke: Callable[[], object] = self._interp.invoke
        return invoke


_ONNX_TYPES = {"tensor(float)": np.float32, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8,
               "tensor(float16)": np.float16, "tensor(double)": np.float64}


class OnnxBackend(Backend):
    """onnxruntime on the CPU execution provider."""

    name = "onnxruntime"
    format = "onnx"

    def __init__(self, content: bytes, threads: int):
        try:
            import onnxruntime as ort
        except Exception as exc:
            raise BackendError(f"onnxruntime failed to import ({type(exc).__name__}: {exc}); "
                               f"reinstall it: {BACKENDS['onnxruntime'].install}") from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        try:
            self._sess = ort.InferenceSession(content, sess_options=opts,
                                              providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise ModelError(f"onnxruntime rejected the model ({first_line(exc)}); "
                             "the file is corrupt or not an mnist-edge export") from None
        inputs, outputs = self._sess.get_inputs(), self._sess.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"the model has {len(inputs)} inputs and {len(outputs)} outputs; "
                             "an mnist-edge model has one of each")
        self.input, self.output = (self._onnx_spec(inputs[0]), self._onnx_spec(outputs[0]))
        self._in_name, self._out_names = inputs[0].name, [outputs[0].name]
        self._feed: dict[str, np.ndarray] = {}

    @staticmethod
    def _onnx_spec(arg: Any) -> TensorSpec:
        if arg.type not in _ONNX_TYPES:
            raise ModelError(f"tensor {arg.name!r} has type {arg.type}; "
                             "expected a float or int8 tensor")
        shape = tuple(d if isinstance(d, int) else None for d in arg.shape)
        return TensorSpec(arg.name, shape, np.dtype(_ONNX_TYPES[arg.type]))

    def prepare(self, n: int, dims: tuple[int, ...] = IMAGE_DIMS) -> np.ndarray:
        buf = self._feed.get(self._in_name)
        if buf is None or buf.shape != (n, *dims):  # one reused buffer: no allocation per call
            buf = np.empty((n, *dims), dtype=self.input.dtype)
            self._feed = {self._in_name: buf}
        return buf

    def run(self) -> np.ndarray:
        out: np.ndarray = self._sess.run(self._out_names, self._feed)[0]
        return out

    def bare_call(self) -> Callable[[], object]:
        sess, names, feed = self._sess, self._out_names, self._feed
        return lambda: sess.run(names, feed)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (at most 200 characters), or its type's name."""
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
