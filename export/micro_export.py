"""The microcontroller part of an export run: package model_int8.tflite for TensorFlow Lite Micro
(export/micro_files.py), measure its tensor arena and verify it through TFLM, and build the
manifest's ``micro`` section.

Runs whenever ``tflite_int8`` is exported and passes, with TFLM's Python interpreter (the
``tflite-micro`` package, reference kernels, Linux x86-64 only). Without that package the export
goes on and says so in one line; the manifest then has no ``micro`` section.

The arena is the smallest (in 16-byte steps) with which TFLM allocates and invokes the model;
the header's constant adds ARENA_MARGIN, rounded up to ARENA_ROUND, for optimized kernels'
scratch buffers. Verification runs TFLM and ai-edge-litert (through ``mnist_edge.Classifier``,
the code users run) on the same int8 inputs, the runtime's own quantization of each test image:
TFLM must give litert's top-1 digit on MIN_AGREEMENT of them, and the digit of litert's reference
kernels on every image those answer with a margin of at least MARGIN_STEPS output steps. The
margin rule is held against the reference kernels because litert's default kernels round
differently from the reference arithmetic TFLM implements: on the reference CNN's test images
they flip one image that they answer with a 28-step margin and the reference kernels with a tie.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from common.artifacts import MICRO_FILES
from export.micro_files import Arena, MicroError, Tensor, operators, resolver_methods, write
from export.verify import Verdict
from mnist_edge.digest import sha256_file, sha256_hex
from mnist_edge.formats import TFLITE_INT8
from mnist_edge.quiet import silenced

DISTRIBUTION = "tflite-micro"
INSTALL = "pip install -r requirements.txt (tflite-micro, Linux x86-64 only)"
ARENA_STEP = 16            # TFLM aligns its allocations to 16 bytes
ARENA_MARGIN = 0.25        # the header's arena over the measured one, for kernels' scratch buffers
ARENA_ROUND = 1024         # ... rounded up to a multiple of this
ARENA_LIMIT = 16 << 20     # give up measuring above this (a model this small needs far less)
MIN_AGREEMENT = 0.999      # TFLM's top-1 digit against litert's on the same int8 input
MARGIN_STEPS = 2           # litert's top-1 minus top-2, in output steps, from which TFLM must agree
_RECORDED = re.compile(r"Arena allocation total (\d+) bytes")


@dataclass(frozen=True)
class Agreement:
    """TFLM's raw int8 outputs next to another interpreter's on the same inputs."""

    agreement: float       # share of images with the other's top-1 digit
    at_margin: float       # ... among those the other answers with >= MARGIN_STEPS
    images_at_margin: int
    max_abs_diff_steps: int  # max |TFLM - other| over all raw outputs

    @classmethod
    def of(cls, tflm: np.ndarray, other: np.ndarray) -> Agreement:
        """Compare raw outputs [N, classes] (int16)."""
        top = np.sort(other, axis=1)
        at_margin = top[:, -1] - top[:, -2] >= MARGIN_STEPS
        same = tflm.argmax(axis=1) == other.argmax(axis=1)
        return cls(float(same.mean()), float(same[at_margin].mean()) if at_margin.any() else 1.0,
                   int(at_margin.sum()), int(np.abs(tflm - other).max(initial=0)))

    def fields(self) -> dict:
        """The manifest's form."""
        return {"agreement": round(self.agreement, 6),
                "agreement_at_margin_2_steps": round(self.at_margin, 6),
                "images_at_margin": self.images_at_margin,
                "max_abs_diff_steps": self.max_abs_diff_steps}


@dataclass(frozen=True)
class MicroVerification(Verdict):
    """How TFLM ran model_int8.tflite on the test set, next to ai-edge-litert."""

    test_images: int
    litert: Agreement            # litert's default kernels, as mnist_edge runs the file
    reference: Agreement         # litert's reference kernels (the arithmetic TFLM implements)
    accuracy: float              # TFLM against the labels
    ms_per_image: float          # set_input + invoke + get_output, one image at a time
    arena_bytes: int             # the arena it ran with (the header's)
    failures: list[str]
    seconds: float = 0.0         # the whole micro step: measuring, verifying, writing

    def manifest_fields(self) -> dict:
        """The ``verification`` object of the ``micro`` section."""
        litert = self.litert.fields()
        return {
            "test_images": self.test_images,
            "agreement_with_litert": litert.pop("agreement"),
            **litert,
            "reference_kernels": self.reference.fields(),
            "accuracy": round(self.accuracy, 6),
            "ms_per_image": round(self.ms_per_image, 3),
            "arena_bytes": self.arena_bytes,
            "rule": RULE,
            "runtime": f"tflite-micro {tflm_version()} (reference kernels), against "
                       f"ai-edge-litert {_version('ai-edge-litert')}",
        }

    def line(self) -> str:
        """One line for the export log."""
        return (f"  {'micro (TFLM)':<15} arena {self.arena_bytes / 1024:.1f} KB  accuracy "
                f"{self.accuracy:.2%}  as litert {self.litert.agreement:.2%}, as its reference "
                f"kernels {self.reference.at_margin:.2%} of {self.reference.images_at_margin} "
                f"at a margin of >= {MARGIN_STEPS} steps  {self.ms_per_image:.2f} ms/image, "
                f"{self.seconds:.0f} s  {'ok' if self.passed else 'FAILED: ' + str(self.failure)}")


RULE = (f"top-1 as litert on >= {MIN_AGREEMENT:.1%} of the test images, and as litert's reference "
        f"kernels on every image they answer with a margin of >= {MARGIN_STEPS} output steps")


def _version(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def tflm_version() -> str | None:
    """The installed tflite-micro version, None when it is not installed."""
    return _version(DISTRIBUTION)


def import_tflm():
    """TFLM's Python runtime module, or None when tflite-micro is not installed here."""
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        return None
    return runtime


def export(stage: Path, images: np.ndarray, labels: np.ndarray, log: Callable[[str], None],
           verbose: bool = False) -> tuple[MicroVerification | None, dict | None]:
    """Package ``stage``'s model_int8.tflite for TFLM, verify it; (the verification or None when
    TFLM is missing or the file cannot be packaged, the ``micro`` section or None). A file that
    cannot be packaged or fails verification is left out, its reason in the verification."""
    start = time.perf_counter()
    drop(stage)
    tflm = import_tflm()
    if tflm is None:
        log(f"  micro (TFLM)    skipped: tflite-micro is not installed; {INSTALL}")
        return None, None
    path = stage / TFLITE_INT8.filename
    model = path.read_bytes()
    try:
        ops = operators(model)
        resolver_methods(ops)
        with _quiet(verbose):
            inp, out = _tensors(tflm, model)
            arena = measure_arena(tflm, model, np.zeros((1, *inp.shape[1:]), np.int8))
            result = verify(tflm, model, path, images, labels, arena.header)
    except MicroError as exc:
        result = _rejected(str(exc), len(labels))
        log(result.line())
        return result, None
    files = write(stage, model, ops, inp, out, arena, str(tflm_version())) if result.passed \
        else []
    result = replace(result, seconds=time.perf_counter() - start)
    log(result.line())
    return result, section(model, ops, inp, out, arena, files, result) if result.passed else None


def section(model: bytes, ops: list[str], inp: Tensor, out: Tensor, arena: Arena,
            files: list[dict], result: MicroVerification) -> dict:
    """The manifest's ``micro`` section."""
    return {"source": TFLITE_INT8.filename, "source_sha256": sha256_hex(model), "files": files,
            "namespace": "mnist_micro", "ops": ops, "resolver_methods": resolver_methods(ops),
            "arena_bytes": arena.measured, "arena_bytes_recorded": arena.recorded,
            "arena_bytes_header": arena.header,
            "arena_method": f"the smallest arena, in {ARENA_STEP}-byte steps, with which TFLM's "
                            "reference kernels allocate and invoke the model on a 64-bit x86 "
                            f"host; the header adds {arena.margin} for optimized kernels",
            "input": inp.as_dict(), "output": out.as_dict(),
            "verification": result.manifest_fields()}


def carried_over(stage: Path, old: dict | None) -> dict | None:
    """``old`` (the current manifest's ``micro`` section) when it describes ``stage``'s
    model_int8.tflite and its files are intact there; else None, and the files are dropped."""
    try:
        ok = (isinstance(old, dict) and old.get("source_sha256")
              == sha256_file(stage / TFLITE_INT8.filename)
              and {e["path"] for e in old["files"]} == MICRO_FILES
              and all((stage / e["path"]).is_file()
                      and sha256_file(stage / e["path"]) == e["sha256"] for e in old["files"]))
    except (OSError, KeyError, TypeError):
        ok = False
    if not ok:
        drop(stage)
        return None
    return old


def drop(stage: Path) -> None:
    """Remove the micro files from ``stage`` (they would describe another int8 file)."""
    for name in MICRO_FILES:
        (stage / name).unlink(missing_ok=True)


def measure_arena(tflm, model: bytes, x: np.ndarray) -> Arena:
    """The smallest arena, a multiple of ARENA_STEP, with which TFLM allocates and invokes
    ``model`` on ``x``, TFLM's recorded total there, and the header's constant."""
    hi = 64 * 1024
    while not _runs(tflm, model, x, hi):
        hi *= 2
        if hi > ARENA_LIMIT:
            raise MicroError(f"{TFLITE_INT8.filename}: TFLM does not run it with an arena of "
                             f"{ARENA_LIMIT >> 20} MB; rerun with --verbose to see TFLM's error")
    lo = 0  # in steps: lo fails, hi runs
    hi //= ARENA_STEP
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _runs(tflm, model, x, mid * ARENA_STEP):
            hi = mid
        else:
            lo = mid
    measured = hi * ARENA_STEP
    interpreter = tflm.Interpreter.from_bytes(model, arena_size=measured)
    interpreter.set_input(x, 0)
    interpreter.invoke()
    with _captured_stderr() as text:
        interpreter.print_allocations()
    found = _RECORDED.search(text())
    recorded = int(found[1]) if found else measured
    header = -(-int(measured * (1 + ARENA_MARGIN)) // ARENA_ROUND) * ARENA_ROUND
    return Arena(measured, recorded, header,
                 f"{ARENA_MARGIN:.0%}, rounded up to a multiple of {ARENA_ROUND} bytes")


def verify(tflm, model: bytes, path: Path, images: np.ndarray, labels: np.ndarray,
           arena: int) -> MicroVerification:
    """Run ``model`` through TFLM (``arena`` bytes) and ai-edge-litert on ``images`` (uint8
    [N,28,28]), each fed the runtime's int8 input, and hold TFLM to RULE."""
    from mnist_edge import Classifier
    from mnist_edge.classifier import pixel_lut

    clf = Classifier.load(path, backend="litert")
    litert = clf.predict(images).raw.astype(np.int16)
    inputs = pixel_lut(clf.input_spec)[images]
    interpreter = tflm.Interpreter.from_bytes(model, arena_size=arena)
    shape = tuple(interpreter.get_input_details(0)["shape"])
    raw = np.empty_like(litert)
    start = time.perf_counter()
    for i, x in enumerate(inputs):
        interpreter.set_input(x.reshape(shape), 0)
        interpreter.invoke()
        raw[i] = interpreter.get_output(0).reshape(-1)
    ms = (time.perf_counter() - start) * 1000 / max(len(inputs), 1)
    against, reference = Agreement.of(raw, litert), Agreement.of(raw, _reference_kernels(
        model, inputs))
    failures = []
    if against.agreement < MIN_AGREEMENT:
        failures.append(f"micro: TFLM's top-1 agrees with litert on {against.agreement:.2%} of "
                        f"{len(labels)} test images, below {MIN_AGREEMENT:.1%}")
    if reference.at_margin < 1.0:
        wrong = round((1 - reference.at_margin) * reference.images_at_margin)
        failures.append(f"micro: TFLM reads {wrong} of {reference.images_at_margin} test images "
                        "differently from litert's reference kernels although their margin is "
                        f">= {MARGIN_STEPS} output steps")
    return MicroVerification(
        test_images=len(labels), litert=against, reference=reference,
        accuracy=float((raw.argmax(axis=1) == labels).mean()), ms_per_image=ms,
        arena_bytes=arena, failures=failures)


def _reference_kernels(model: bytes, inputs: np.ndarray, batch: int = 500) -> np.ndarray:
    """Raw int8 outputs (as int16) of litert's reference kernels (BUILTIN_REF) on int8 inputs
    [N,28,28]. The runtime runs litert's default kernels only; these are TFLite's reference
    arithmetic, which TFLM's kernels implement too: litert's default kernels round differently
    (up to 15 output steps apart on MNIST's test set)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_content=model,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    inp, out = interpreter.get_input_details()[0]["index"], \
        interpreter.get_output_details()[0]["index"]
    outputs = []
    for start in range(0, len(inputs), batch):
        x = inputs[start:start + batch, :, :, np.newaxis]
        interpreter.resize_tensor_input(inp, list(x.shape))
        interpreter.allocate_tensors()
        interpreter.set_tensor(inp, x)
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(out).astype(np.int16))
    return np.concatenate(outputs) if outputs else np.empty((0, 10), np.int16)


def _rejected(reason: str, images: int) -> MicroVerification:
    none = Agreement(0.0, 0.0, 0, 0)
    return MicroVerification(test_images=images, litert=none, reference=none, accuracy=0.0,
                             ms_per_image=0.0, arena_bytes=0, failures=[reason])


def _tensors(tflm, model: bytes) -> tuple[Tensor, Tensor]:
    """The input and output tensors as TFLM allocates them."""
    interpreter = tflm.Interpreter.from_bytes(model, arena_size=ARENA_LIMIT)
    found = []
    for details in (interpreter.get_input_details(0), interpreter.get_output_details(0)):
        quant = details["quantization_parameters"]
        dtype = np.dtype(details["dtype"]).name
        if dtype != "int8" or len(quant["scales"]) != 1:
            raise MicroError(f"{TFLITE_INT8.filename}: a tensor is {dtype}, not per-tensor int8; "
                             "re-export it with `python -m export --formats tflite_int8`")
        found.append(Tensor(tuple(int(d) for d in details["shape"]), dtype,
                            float(quant["scales"][0]), int(quant["zero_points"][0])))
    return found[0], found[1]


def _runs(tflm, model: bytes, x: np.ndarray, arena: int) -> bool:
    """Whether TFLM allocates and invokes ``model`` on ``x`` with ``arena`` bytes."""
    try:
        interpreter = tflm.Interpreter.from_bytes(model, arena_size=arena)
        interpreter.set_input(x, 0)
        interpreter.invoke()
    except RuntimeError:
        return False
    return True


@contextlib.contextmanager
def _quiet(verbose: bool) -> Iterator[None]:
    """TFLM prints its allocation errors on the C stderr: hidden unless ``verbose``."""
    if verbose:
        yield
        return
    with silenced((1, 2)):
        yield
        _flush_c()


@contextlib.contextmanager
def _captured_stderr() -> Iterator[Callable[[], str]]:
    """What the C library writes to fd 2 meanwhile; yields a function returning it (after)."""
    sys.stderr.flush()
    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            captured: list[str] = []
            yield lambda: "".join(captured)
            _flush_c()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        captured.append(tmp.read().decode(errors="replace"))


def _flush_c() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).fflush(None)
