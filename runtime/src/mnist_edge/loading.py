"""Which model file and interpreter a Classifier runs, and the checks before any of it runs.

A model file is checked by its header (and, when asked, run once in a child process first); an
artifacts folder's manifest picks the first listed file an installed backend runs (or the one
``key`` names, or the one ``mnist-edge bench`` saved for ``prefer``) and checks its size and
sha256 before an interpreter sees it. The model's input is checked to be MNIST's, quantized as
the file or the manifest says.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mnist_edge import backends
from mnist_edge.choice import PREFERENCES
from mnist_edge.errors import BackendError, InputError, MnistEdgeError, ModelError
from mnist_edge.formats import FORMATS, READER_FORMATS
from mnist_edge.manifest import (
    MANIFEST_NAME,
    FileEntry,
    Manifest,
    ReaderSection,
    manifest_path,
    read_manifest,
)
from mnist_edge.modelfile import check_model_bytes, format_of, read_model_bytes

# More interpreter threads are refused: 100,000 crashed litert and made onnxruntime start 32,449
# threads (16.8 GB). Up to this many, a request above the machine's cores gets the cores.
MAX_THREADS = 64
_INT8_QUANT_MARKERS = (b"QuantizeLinear", b"QLinear", b"ConvInteger", b"MatMulInteger")
# Float input and output do not tell a float16 or dynamic-range TFLite file from a float32 one:
# the format key the export writes into each file's metadata does (export/contract.py)
_EMBEDDED_PRECISION = tuple((f'"mnist_edge.format": "{f.key}"'.encode(), f.precision)
                            for f in FORMATS if f.kind == "tflite"
                            and f.precision not in ("int8", "float32"))


@dataclass(frozen=True)
class Loaded:
    """A model file on its interpreter, and the manifest entry that vouched for it, if any."""

    backend: backends.Backend
    path: Path
    precision: str
    manifest: Manifest | None = None
    entry: FileEntry | None = None


def load_model(path: str | os.PathLike[str], backend: str, threads: int, key: str | None,
               probe: bool | None, prefer: str | None) -> Loaded:
    """The file and interpreter ``Classifier.load`` uses (its arguments, its errors)."""
    path, threads = _check_request(path, backend, threads, key, "tflite_int8")
    mpath = manifest_path(path) if path.exists() else None
    if prefer is not None and (not isinstance(prefer, str) or prefer not in PREFERENCES):
        raise MnistEdgeError(f"prefer must be 'latency' or 'throughput', got {prefer!r}")
    if probe is not None and not isinstance(probe, bool):
        raise MnistEdgeError(f"probe must be True, False or None, got {probe!r}")
    if mpath is not None:
        if prefer is not None and key is None:
            key, backend = _preferred(mpath, prefer, key, backend)
        return _from_manifest(read_manifest(mpath), backend, threads, key)
    if key is not None or prefer is not None:
        raise ModelError(f"{path}: key= and prefer= need an artifacts folder or manifest.json")
    data = read_model_bytes(path)
    fmt = format_of(path, data)
    check_model_bytes(path, data, fmt)
    name = _pick_backend(fmt, backend)
    if probe is None and name not in backends.VERIFYING:
        raise ModelError(f"{path}: {name} does not verify model files, so a damaged one can "
                         "crash it or give wrong answers; load the file through its artifacts "
                         "folder (sizes and sha256 checked), or pass probe=True (mnist-edge "
                         "--unverified) to try it in a separate process first")
    impl = _create(path, name, data, threads, bool(probe))
    return Loaded(impl, path, _precision_of(fmt, data, impl))


def load_reader(path: str | os.PathLike[str], backend: str, threads: int,
                key: str | None) -> tuple[Loaded, ReaderSection]:
    """The line reader's file and interpreter, from an artifacts folder or its manifest
    (``LineReader.load``'s arguments and errors)."""
    path, threads = _check_request(path, backend, threads, key, "reader_tflite_int8")
    mpath = manifest_path(path) if path.exists() else None
    if mpath is None:
        raise ModelError(f"{path}: the line reader loads from an artifacts folder or its "
                         f"{MANIFEST_NAME}")
    manifest = read_manifest(mpath)
    section = manifest.reader
    if section is None or not section.files:
        raise ModelError(f"{mpath.parent}: no line reader ({READER_FORMATS[0].filename} or another "
                         f"reader file) in its {MANIFEST_NAME}; run make train export")
    return _from_manifest(manifest, backend, threads, key, section.files), section


def load_gate(model: Loaded, threads: int) -> Loaded:
    """The "no digit" gate's file beside ``model`` (loaded from a manifest with a gate): the
    gate file of the model's format and precision on the model's backend when listed, else the
    first one an installed backend runs; checked like any listed file."""
    manifest = model.manifest
    assert manifest is not None and manifest.gate is not None
    files = manifest.gate.files
    same = f"gate_{model.entry.key}" if model.entry is not None else ""
    if same in {e.key for e in files}:
        return _from_manifest(manifest, model.backend.name, threads, same, files)
    return _from_manifest(manifest, "auto", threads, None, files)


def load_entry(manifest: Manifest, entry: FileEntry, backend: str) -> Loaded:
    """The file of ``entry`` (any section's) on ``backend``, checked like any listed file."""
    return _from_manifest(manifest, backend, 1, entry.key, (entry,))


def _check_request(path: object, backend: object, threads: object, key: object,
                   example: str) -> tuple[Path, int]:
    """The path and thread count of a load request, once its arguments are checked."""
    if not isinstance(backend, str) or (backend != "auto" and backend not in backends.BACKENDS):
        raise BackendError(f"unknown backend {backend!r}; choose auto, "
                           f"{', '.join(backends.BACKENDS)}")
    threads, path = usable_threads(threads), one_path(path, "path")
    if key is not None and not isinstance(key, str):
        raise MnistEdgeError(f"key must be a format key such as {example!r}, got {key!r}")
    return path, threads


def _from_manifest(manifest: Manifest, backend: str, threads: int, key: str | None,
                   listed: tuple[FileEntry, ...] | None = None) -> Loaded:
    """The first of ``listed`` (default: the classifier's files) an installed backend runs."""
    listed = manifest.files if listed is None else listed
    entries = list(listed)
    if key is not None:
        entries = [e for e in entries if e.key == key]
        if not entries:
            keys = ", ".join(e.key for e in listed)
            raise ModelError(f"{manifest.path}: no file with key {key!r}; it lists {keys}")
    if backend != "auto":
        fmt = backends.BACKENDS[backend].format
        entries = [e for e in entries if e.format == fmt]
        if not entries:
            raise ModelError(f"{manifest.path}: lists no {fmt} file for backend {backend!r}")
    for entry in entries:
        if backend == "auto" and not backends.available(entry.format):
            continue
        name = _pick_backend(entry.format, backend)
        data = manifest.read_verified(entry)  # size, sha256 and header, before any interpreter
        impl = _create(entry.path, name, data, threads, probe=False)
        return Loaded(impl, entry.path,
                      entry.precision or _precision_of(entry.format, data, impl), manifest, entry)
    formats = sorted({e.format for e in entries})
    raise backends.missing_backend_error(formats[0]) if len(formats) == 1 else BackendError(
        f"{manifest.path}: no installed interpreter runs any listed file "
        f"({', '.join(formats)}); fix: {backends.BACKENDS['litert'].install}")


def _pick_backend(fmt: str, backend: str) -> str:
    if backend == "auto":
        names = backends.available(fmt)
        if not names:
            raise backends.missing_backend_error(fmt)
        return names[0]
    if backends.BACKENDS[backend].format != fmt:
        raise BackendError(f"backend {backend!r} runs {backends.BACKENDS[backend].format} "
                           f"models, not {fmt}; use --backend auto or a {fmt} backend")
    return backend


def usable_threads(threads: object) -> int:
    """The interpreter threads to use for a request: 1..MAX_THREADS, at most the machine's cores."""
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise MnistEdgeError(f"threads must be a positive integer, got {threads!r}")
    if threads > MAX_THREADS:
        raise MnistEdgeError(f"threads must be at most {MAX_THREADS}, got {threads}; "
                             "more threads than cores only slow a small model down")
    return min(threads, os.cpu_count() or 1)


def one_path(path: object, what: str) -> Path:
    """``path`` as a Path (str, bytes or os.PathLike); InputError for anything else."""
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise InputError(f"{what} must be a non-empty str or os.PathLike, got {path!r:.60}")
    if "\x00" in str(path):
        raise InputError(f"{what} contains a NUL character: {path!r:.60}")
    return Path(path).expanduser()


def _preferred(mpath: Path, prefer: str, key: str | None, backend: str) -> tuple[str | None, str]:
    """(key, backend) saved by ``mnist-edge bench`` for this export and device, if still usable."""
    from mnist_edge.choice import load_choice

    choice = load_choice(mpath, prefer)
    if choice is None or choice["backend"] not in backends.BACKENDS:
        return key, backend
    if backend == "auto" and backends.unusable_reason(choice["backend"]) is None:
        return choice["key"], choice["backend"]
    if backend == choice["backend"]:
        return choice["key"], backend
    return key, backend


def _create(path: Path, name: str, data: bytes, threads: int, probe: bool) -> backends.Backend:
    """The backend on checked bytes; its errors name the file."""
    try:
        if probe:
            backends.probe(name, data)
        return backends.create(name, data, threads)
    except ModelError as exc:
        raise ModelError(f"{path}: {exc}") from None


def input_spec(backend: backends.Backend, entry: FileEntry | None,
               dims: tuple[tuple[int | None, ...], ...] = ((28, 28, 1), (None, None, None)),
               takes: str = "an mnist-edge model takes [N,28,28,1]") -> backends.TensorSpec:
    """The model's input, checked to have one of the shapes ``dims`` after its batch dimension
    (else ModelError: shape and ``takes``); quantized as the manifest says if the file does
    not."""
    spec = backend.input
    if spec.shape[1:] not in dims:
        raise ModelError(f"the model's input has shape {list(spec.shape)}; {takes}")
    if spec.dtype.kind in "iu" and spec.scale is None:
        quant = (entry.input.get("quantization") if entry else None) or {}
        if "scale" not in quant:
            raise ModelError(f"the model's {spec.dtype.name} input has no quantization parameters "
                             "and the manifest gives none")
        spec = backends.TensorSpec(spec.name, spec.shape, spec.dtype, float(quant["scale"]),
                                   int(quant.get("zero_point", 0)))
    if spec.dtype.kind not in "iuf":
        raise ModelError(f"the model's input dtype {spec.dtype} is not supported")
    return spec


def _tflite_precision(impl: backends.Backend, data: bytes) -> str:
    if impl.input.scale is not None or impl.output.scale is not None:
        return "int8"
    return next((p for marker, p in _EMBEDDED_PRECISION if marker in data), "float32")


def _precision_of(fmt: str, data: bytes, impl: backends.Backend) -> str:
    if fmt == "tflite":
        return _tflite_precision(impl, data)
    return "int8" if any(m in data for m in _INT8_QUANT_MARKERS) else "float32"
