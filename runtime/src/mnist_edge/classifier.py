"""The public Classifier: load an exported model once, predict digits from arrays or image files.

    from mnist_edge import Classifier
    clf = Classifier.load("artifacts")            # int8 TFLite via ai-edge-litert, if installed
    p = clf.predict(x_test_uint8)                 # uint8 [N,28,28] -> Prediction
    p.labels, p.probabilities                     # int64 [N], float32 [N,10]
    p.names                                       # the class names: ['7', '2', ...]
    clf.predict_files(["seven.jpg", "scan.png"])  # photos and scans, MNIST-style preprocessing

A model trained on another dataset (Fashion-MNIST, say) says so in its manifest: ``labels``
and ``names`` give its class names ("Sneaker"), ``kind`` is "items", and ``predict_files``
normalises photos with the generic path (``mnist_edge.items``); ``read``, ``watch`` and the
gate are for digit models only.

When the manifest lists a "no digit" gate (``mnist_edge.gate``) it is loaded beside the model:
``predict_files`` and ``read`` then answer "no digit" with the reason for letters, symbols,
shapes, scenes and blank images, and ``predict(..., refuse=True)`` does so for arrays.

Thread safety: a Classifier may be shared between threads. Calls to ``predict`` are
serialised by a lock around the interpreter (one interpreter per Classifier, reused across
calls); for parallel throughput give each thread its own Classifier.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from mnist_edge import backends
from mnist_edge.arrays import FLOAT_TOLERANCE
from mnist_edge.errors import InputError, MnistEdgeError, ModelError
from mnist_edge.loading import input_spec, load_gate, load_model, one_path
from mnist_edge.modelfile import read_model_bytes

if TYPE_CHECKING:  # annotations only: importing numpy.typing costs start-up time
    import numpy.typing as npt
    from PIL.Image import Image as PILImage

    from mnist_edge.gate import Gate
    from mnist_edge.golden import SelfTest
    from mnist_edge.images import Decoded
    from mnist_edge.linereader import LineReader
    from mnist_edge.live import FrameSource, LiveStream
    from mnist_edge.manifest import FileEntry, Manifest
    from mnist_edge.reader import Reading

IMAGE_SHAPE = (28, 28)
# Images per interpreter call. Larger batches reuse the weights more, but past ~32 images the
# activations (26x26x32 per image after the convolution) leave the caches: `make bench` measured
# 32 at or near the best images/s for every file and backend, and the arena is 8x smaller than at
# 256.
CHUNK = 32
_SMALL_BATCH = 8       # up to this many images, int8 input is made with bytes.translate
_XOR_TABLE = bytes(i ^ 0x80 for i in range(256))


DIGIT_NAMES = tuple(str(d) for d in range(10))


class Prediction:
    """Results for N images: ``labels`` int64 [N] (class indices), ``names`` (class names),
    ``probabilities`` float32 [N,10], ``raw``.

    With ``predict(..., refuse=True)``: ``refused`` bool [N] (True: not a digit), ``reasons``
    (why, or None) and ``digit_scores`` (the gate's digit probability; None without a gate).
    """

    def __init__(self, raw: np.ndarray, scale: float | None = None, zero_point: int | None = None,
                 class_names: tuple[str, ...] = DIGIT_NAMES):
        self.raw = raw                      # the output tensor as the model produced it
        self.labels = raw.argmax(axis=1)    # argmax of quantized values = argmax of probabilities
        self.class_names = class_names      # the name of each output, in order
        self._scale, self._zero_point = scale, zero_point
        self.refused = np.zeros(len(raw), dtype=bool)
        self.reasons: list[str | None] = [None] * len(raw)
        self.digit_scores: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.raw)

    @property
    def names(self) -> list[str]:
        """The class name of each label: '7' for a digit model, 'Sneaker' for Fashion-MNIST."""
        return [self.class_names[i] for i in self.labels.tolist()]

    @cached_property
    def probabilities(self) -> np.ndarray:
        """float32 [N,classes], dequantized for int8 models, each row normalised to sum to 1."""
        p = self.raw.astype(np.float32)
        if self._scale is not None:
            p = (p - np.float32(self._zero_point)) * np.float32(self._scale)
        np.clip(p, 0.0, None, out=p)
        total = p.sum(axis=1, keepdims=True)
        empty = total[:, 0] <= 0
        if empty.any():  # a row quantized to all zeros carries no information
            p[empty], total[empty] = 1.0, float(p.shape[1])
        normalised: np.ndarray = p / total
        return normalised

    @property
    def confidences(self) -> np.ndarray:
        """float32 [N]: the probability of each predicted label."""
        picked: np.ndarray = self.probabilities[np.arange(len(self.raw)), self.labels]
        return picked

    def top_k(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(labels int64 [N,k], probabilities float32 [N,k]), most likely first.

        Ties go to the lower label, as in ``labels``; k is clipped to 1..10.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise InputError(f"k must be a whole number, got {type(k).__name__}")
        k = max(1, min(int(k), self.raw.shape[1]))
        order = np.argsort(-self.probabilities, axis=1, kind="stable")[:, :k]
        return order, np.take_along_axis(self.probabilities, order, axis=1)


@dataclass(frozen=True)
class FileResult:
    """One image file: its label and probabilities, or why it has none: ``no_digit`` (refused by
    the gate or blank, an answer) or ``error`` (the file could not be classified)."""

    path: str
    label: int | None
    probabilities: np.ndarray | None
    error: str | None = None
    no_digit: str | None = None
    name: str | None = None        # the label's class name

    @property
    def ok(self) -> bool:
        """True when the file was answered: a label, or "no digit"."""
        return self.error is None


class Classifier:
    """An exported mnist-edge model on one interpreter; see the module docstring for an example."""

    def __init__(self, backend: backends.Backend, path: Path, precision: str,
                 manifest: Manifest | None = None, entry: FileEntry | None = None,
                 classes: int = 10):
        self._backend = backend
        self._classes = classes
        self.gate: Gate | None = None  # the "no digit" gate, when the manifest lists one
        self.path = path
        self.precision = precision
        self.manifest = manifest
        self.entry = entry
        self._reader: LineReader | None = None
        self._lock = threading.Lock()
        self._names = (tuple(manifest.labels) if manifest is not None and classes == 10
                       else tuple(str(i) for i in range(classes)))
        self._in = input_spec(backend, entry)
        self._out = backend.output
        self._lut = pixel_lut(self._in)
        spec = self._in
        self._xor = (spec.dtype == np.int8 and spec.zero_point == -128
                     and spec.scale is not None
                     and abs(spec.scale * 255.0 - 1.0) < 1e-6)  # x - 128 == x ^ 0x80 on the bytes
        # A model whose batch size is fixed gets whole batches of that size, padded at the end.
        self._fixed = spec.shape[0]
        self._step = self._fixed or CHUNK

    # ----------------------------------------------------------------------------- loading
    @classmethod
    def load(cls, path: str | os.PathLike[str], backend: str = "auto", threads: int = 1,
             key: str | None = None, probe: bool | None = None,
             prefer: str | None = None, gate: bool = True, self_test: bool = False
             ) -> Classifier:
        """Load a model for prediction.

        Args:
            path: a ``.tflite`` or ``.onnx`` file, an artifacts folder, or its ``manifest.json``.
                Through a manifest the first listed file (int8 TFLite first) that an installed
                backend runs is chosen, and its size and sha256 are checked before loading.
            backend: "auto", "litert", "tflite-runtime", "tensorflow" or "onnxruntime".
            threads: interpreter threads (1 is the fastest for single images on small devices).
            key: with a manifest, pick this file (tflite_int8, tflite_float32, onnx_float32,
                onnx_int8).
            probe: for a model file that no manifest vouches for. True: load it and run it once
                in a child process first, so a malformed file that crashes the interpreter there
                gives a ModelError (best effort: a damaged file may pass once and fail later).
                False: load it as it is. None (default): backends with their own FlatBuffer
                verifier load it as it is; on tflite-runtime, which has none, the file is
                refused (always the same answer) unless probe is True or False. Files loaded
                through a manifest are checked by size and sha256 instead.
            prefer: with an artifacts folder, "latency" or "throughput": use the file and backend
                that ``mnist-edge bench FOLDER`` found fastest on this device (saved in
                ~/.cache/mnist-edge, keyed by the manifest's sha256). Without a saved choice, or
                if its backend is no longer installed, the manifest's order applies.
            gate: load the "no digit" gate the manifest lists (its file of the same format and
                precision, on the same backend, checked like the model), so that
                ``predict_files``, ``read`` and ``predict(..., refuse=True)`` answer "no digit".
                False, or a manifest without a gate: no refusals but blank arrays with refuse.
            self_test: run the loaded file (and its gate's) on the golden set the export wrote
                into the artifacts folder, and raise SelfTestError unless it answers every
                golden digit as at export with outputs within the manifest's rule: proof that
                this device's interpreter computes this file right (a few ms; ``mnist-edge
                verify`` does it for every file).

        Returns:
            A Classifier holding one interpreter, reused by every call.

        Raises:
            ModelError, IntegrityError, BackendError, SelfTestError: one-line messages saying
            what to do.
        """
        loaded = load_model(path, backend, threads, key, probe, prefer)
        clf = cls(loaded.backend, loaded.path, loaded.precision, loaded.manifest, loaded.entry)
        if gate and loaded.manifest is not None and loaded.manifest.gate is not None:
            from mnist_edge.gate import Gate

            clf._digits_only("the \"no digit\" gate")

            section = loaded.manifest.gate
            g = load_gate(loaded, threads)
            clf.gate = Gate(cls(g.backend, g.path, g.precision, g.manifest, g.entry,
                                classes=len(section.classes)),
                            section.threshold, section.calibration,
                            section.classes.index("digit"))
        if self_test is True:
            from mnist_edge.golden import raise_on_failure

            raise_on_failure(clf.self_test())
        elif self_test is not False:
            raise MnistEdgeError(f"self_test must be True or False, got {self_test!r}")
        return clf

    def self_test(self) -> list[SelfTest]:
        """Run the loaded file, and its gate's file when it has one, on the golden set its export
        wrote (docs/self-test.md): one result each, ``passed`` when it answers every golden digit
        as at export with outputs within the manifest's rule. ModelError when the Classifier was
        not loaded through an artifacts folder with a golden set."""
        from mnist_edge import golden

        manifest, entry = self.manifest, self.entry
        if manifest is None or entry is None:
            raise ModelError(f"{self.path}: the self-test needs the file's artifacts folder (its "
                             "manifest lists the golden set); load the folder instead of the file")
        gold = golden.read_golden(manifest)
        results = [golden.compare(entry, self.backend, *golden.classifier_outputs(self, gold),
                                  gold, golden.expected_answers(entry, manifest, gold))]
        gate = self.gate
        if gate is not None and manifest.gate is not None:
            model = gate.model
            if isinstance(model, Classifier) and model.entry is not None:
                results.append(golden.compare(
                    model.entry, model.backend,
                    *golden.gate_outputs(model, gate.threshold,
                                         manifest.gate.classes.index("digit"), gold),
                    gold, golden.expected_answers(model.entry, manifest, gold)))
        return results

    @property
    def threshold(self) -> float | None:
        """The gate's threshold on its digit probability (None without a gate)."""
        return self.gate.threshold if self.gate is not None else None

    # ----------------------------------------------------------------------------- metadata
    @property
    def backend(self) -> str:
        return self._backend.name

    @property
    def format(self) -> str:
        return self._backend.format

    @property
    def input_spec(self) -> backends.TensorSpec:
        return self._in

    @property
    def output_spec(self) -> backends.TensorSpec:
        return self._out

    @property
    def labels(self) -> list[str]:
        """The class names, in output order ('0'..'9' for a digit model or a lone file)."""
        return list(self._names)

    @property
    def kind(self) -> str:
        """What the model's images are, from its manifest: "digits" (a lone file too) or
        another kind such as "items" (Fashion-MNIST); see the module docstring."""
        return self.manifest.kind if self.manifest is not None else "digits"

    def _digits_only(self, what: str) -> None:
        """ModelError unless this is a digit model: ``what`` is for handwritten digits."""
        if self.kind != "digits":
            assert self.manifest is not None
            raise ModelError(f"{self.manifest.path.parent}: {what} is for digit models; this "
                             f"model classifies {self.manifest.dataset_name} ({self.kind}): "
                             "classify photos of one item each with predict_files "
                             "(mnist-edge predict)")

    # ----------------------------------------------------------------------------- prediction
    def predict(self, images: npt.ArrayLike, refuse: bool = False) -> Prediction:
        """Classify images.

        Args:
            images: uint8 [N,28,28] (0..255), float [N,28,28] or [N,28,28,1] in [0, 1], or one
                such image without the N axis; light digit on dark background, like MNIST.
                Other integer dtypes are accepted when their values lie in 0..255.
            refuse: also answer "not a digit" (``Prediction.refused``, ``reasons``,
                ``digit_scores``): blank images, and images the gate scores below its threshold
                when the manifest lists a gate.

        Returns:
            Prediction with labels int64 [N], probabilities float32 [N,10], raw [N,10].

        Raises:
            InputError: wrong type, shape or dtype, NaN or infinite values, values out of range.
        """
        x = _as_batch(images)
        pred = self._predict(x)
        if refuse:
            from mnist_edge.gate import blank_images, blank_reason

            if self.gate is not None:
                pred.digit_scores, pred.reasons = self.gate.refusals(x)
            else:
                pred.reasons = [blank_reason() if b else None for b in blank_images(x).tolist()]
            pred.refused = np.array([r is not None for r in pred.reasons], dtype=bool)
        return pred

    def _predict(self, x: np.ndarray) -> Prediction:
        n = len(x)
        step = self._step
        if 0 < n <= step and (self._fixed is None or n == step):  # the common case: no copy
            with self._lock:
                self._fill(self._backend.prepare(n), x)
                return Prediction(self._run(n), self._out.scale, self._out.zero_point,
                                  self._names)
        raw = np.empty((n, self._classes), dtype=self._out.dtype)
        with self._lock:
            for start in range(0, n, step):
                chunk = x[start:start + step]
                m = len(chunk)
                if self._fixed is not None and m < step:  # pad the last batch to the fixed size
                    chunk = np.concatenate([chunk, np.zeros((step - m, *chunk.shape[1:]),
                                                            chunk.dtype)])
                self._fill(self._backend.prepare(len(chunk)), chunk)
                raw[start:start + m] = self._run(len(chunk))[:m]
        return Prediction(raw, self._out.scale, self._out.zero_point, self._names)

    def interpreter_call(self) -> Callable[[], object]:
        """The interpreter's own call on the input the last ``predict`` left in place.

        No input conversion, no output copy (``invoke()``, ``session.run``): what the benchmark
        times next to ``predict`` to measure the runtime's overhead.
        """
        return self._backend.bare_call()

    def _fill(self, buf: np.ndarray, x: np.ndarray) -> None:
        """Write [n,28,28] uint8, or float32 in [0,1], into the model's input buffer [n,28,28,1]."""
        if self._xor and len(x) <= _SMALL_BATCH and x.dtype == np.uint8 and x.flags.c_contiguous:
            # int8 input, scale 1/255, zero point -128: q = pixel - 128, i.e. the byte ^ 0x80.
            # bytes.translate is plain C: unlike a ufunc it leaves the interpreter's caches warm
            buf.data.cast("B")[:] = x.tobytes().translate(_XOR_TABLE)
            return
        x = x.reshape(buf.shape)
        spec = self._in
        if x.dtype == np.uint8:
            if self._xor:
                np.bitwise_xor(x, 0x80, out=buf.view(np.uint8))
            elif spec.scale is None and buf.dtype == np.float32:  # the LUT's float32 division
                np.divide(x, np.float32(255.0), out=buf, dtype=np.float32)
            else:
                np.take(self._lut, x, out=buf)
        elif spec.scale is None:
            np.copyto(buf, x, casting="unsafe")
        else:
            info = np.iinfo(spec.dtype)
            q = np.rint(x / np.float32(spec.scale))
            q += spec.zero_point
            np.copyto(buf, np.clip(q, info.min, info.max, out=q), casting="unsafe")

    def _run(self, n: int) -> np.ndarray:
        try:
            out = self._backend.run()
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"{self.path}: the interpreter failed "
                             f"({backends.first_line(exc)})") from None
        if out.shape != (n, self._classes):
            raise ModelError(f"{self.path}: the model returned shape {out.shape}, expected "
                             f"({n}, {self._classes}); not an mnist-edge "
                             f"{'classifier' if self._classes == 10 else 'gate'}")
        return out

    def predict_files(self, paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
                      refuse: bool = True) -> list[FileResult]:
        """Classify image files (PNG, JPEG, BMP, ...; any size, polarity, colour), in order.

        Each file is decoded and normalised like MNIST (see ``preprocess_image``), or for a
        model of another kind (``kind``, e.g. Fashion-MNIST's "items") by the generic path
        (``mnist_edge.items.preprocess_item``). With the
        manifest's gate (and ``refuse``), a file it refuses, or that holds no ink, gets
        ``no_digit`` (the reason) and no label: an answer. A file that cannot be read (or holds
        no ink, without a gate) gets ``error`` and no label.
        One path (a str or os.PathLike) is one file; a path that is not a str, bytes or
        os.PathLike raises InputError.
        """
        from functools import partial

        from mnist_edge.images import load_image

        results: list[FileResult] = []
        pending: list[tuple[int, np.ndarray]] = []
        gated = refuse and self.gate is not None

        def flush() -> None:
            if pending:
                pred = self.predict(np.stack([img for _, img in pending]), refuse=gated)
                for row, (i, _) in enumerate(pending):
                    results[i] = self._answer(results[i].path, pred, row)
                pending.clear()

        for p in _paths(paths):
            img = self._prepared(partial(load_image, p), str(p), gated)
            if isinstance(img, FileResult):  # blank, or not an image: answered already
                results.append(img)
                continue
            results.append(FileResult(str(p), None, None))
            pending.append((len(results) - 1, img))
            if len(pending) >= CHUNK:
                flush()
        flush()
        return results

    def predict_image(self, image: np.ndarray | PILImage | Decoded, name: str = "image",
                      refuse: bool = True) -> FileResult:
        """Classify one picture already in memory as ``predict_files`` classifies a file.

        Args:
            image: a numpy image (see ``preprocess_image``), a PIL image, or a
                ``mnist_edge.images.Decoded`` (``decode_bytes`` of an upload).
            name: the picture's name in the result (``FileResult.path``).
            refuse: as in ``predict_files``: with the gate, "no digit" is an answer.

        Returns:
            A FileResult: the label and probabilities, or ``no_digit`` (refused by the gate, or
            blank), or ``error`` (an array that is not an image; blank without a gate).
        """
        from mnist_edge.images import Decoded, decode_pil

        gated = refuse and self.gate is not None
        if isinstance(image, Decoded):
            pixels = image.pixels
        elif hasattr(image, "mode") and hasattr(image, "getbands"):  # PIL, without importing it
            pixels = decode_pil(image).pixels  # type: ignore[arg-type]  # a PIL image, as checked
        else:
            pixels = image  # an array, or refused by the normalising step
        img = self._prepared(lambda: pixels, name, gated)
        if isinstance(img, FileResult):
            return img
        return self._answer(name, self.predict(img[None], refuse=gated), 0)

    def _prepared(self, load: Callable[[], np.ndarray], name: str,
                  gated: bool) -> np.ndarray | FileResult:
        """One picture's 28x28 input (``load`` gives its pixels), normalised for this model's
        kind (MNIST's way for digits, else ``preprocess_item``); or, when it has none, its
        answer: blank (``no_digit`` with the gate, an error without) or unreadable (an error)."""
        from mnist_edge.errors import BlankImageError

        if self.kind == "digits":
            from mnist_edge.normalize import preprocess_image as normalise
        else:
            from mnist_edge.items import preprocess_item as normalise
        try:
            return normalise(load())
        except BlankImageError as exc:
            why = _strip_path(str(exc), name)
            return FileResult(name, None, None, None if gated else why,
                              f"blank: {why}" if gated else None)
        except InputError as exc:
            return FileResult(name, None, None, _strip_path(str(exc), name))

    def _answer(self, name: str, pred: Prediction, row: int) -> FileResult:
        """Row ``row`` of ``pred`` as the FileResult of picture ``name``."""
        why = pred.reasons[row]
        label = None if why else int(pred.labels[row])
        return FileResult(name, label, pred.probabilities[row], no_digit=why,
                          name=None if label is None else self._names[label])

    def read(self, image: str | os.PathLike[str] | np.ndarray | PILImage | Decoded,
             refuse: bool = True) -> Reading:
        """Read every digit in a photo or scan: the number, and each digit's box and label.

        The ink is found and grouped into lines; each line is read whole by the artifacts'
        line reader (``line_reader()``), and each digit's box is the line's ink between its
        neighbours'.

        Args:
            image: an image file's path, a numpy image ([H,W], [H,W,3] or [H,W,4]; see
                ``preprocess_image``), a PIL image, or a ``mnist_edge.images.Decoded``
                (``decode_bytes`` of an upload). Digits on several lines are read top to
                bottom.
            refuse: with the manifest's gate, score each digit's crop and leave out a line most
                of whose marks it refuses (listed in ``Reading.refused`` with the reason).

        Returns:
            A Reading: ``number`` (str, lines joined by newlines, "" when no digit is found,
            with the reason in ``no_digit`` when a gate is loaded) and ``digits`` (box in the
            input's pixels, label, confidence, the 28x28 crop, the gate's digit score).

        Raises:
            InputError: the file cannot be read or the array is not an image.
            ModelError: the model was loaded without a line reader beside it (the message
                names the missing file).
        """
        from mnist_edge.reader import LineModel, read_lines

        self._digits_only("read")
        reader = self.line_reader()
        model = LineModel(reader.scores, reader.height, reader.stride, reader.blank)
        gate = self.gate.refusals if refuse and self.gate is not None else None
        from mnist_edge.images import Decoded

        decoded = image if isinstance(image, Decoded) else None
        if isinstance(image, (str, bytes, os.PathLike)):
            from mnist_edge.images import decode_file

            decoded = decode_file(one_path(image, "image path"))
        elif hasattr(image, "mode") and hasattr(image, "getbands"):  # PIL, without importing it
            from mnist_edge.images import decode_pil

            decoded = decode_pil(image)  # type: ignore[arg-type]  # a PIL image, as checked
        if decoded is None:
            return read_lines(image, model, gate)  # type: ignore[arg-type]  # an array, or refused
        return _in_input_pixels(read_lines(decoded.pixels, model, gate), decoded.scale,
                                decoded.size)

    def watch(self, source: str | os.PathLike[str] | int | FrameSource, every: int = 1,
              stable: int | None = None, camera_api: str = "auto") -> LiveStream:
        """Read the numbers in a video file or a camera's frames; see ``mnist_edge.live``.

        Args:
            source: a video file's path, a camera index (0 for the first), or a FrameSource.
            every: read every k-th frame only (a video's others are passed over undecoded).
            stable: frames in a row a reading must hold before it is reported as a change
                (None: ``mnist_edge.live.STABLE``, 3).
            camera_api: "auto" (Picamera2 when installed, else OpenCV), "picamera2", "opencv".

        Returns:
            A LiveStream: iterate it for one LiveReading per change (time, frame, number or
            ``no_digit``, confidence, the Reading); ``stats`` counts frames read, skipped and
            dropped, and the frame rate. Use it in a ``with`` block to release the camera.

        Raises:
            SourceError: the camera or file cannot be opened (OpenCV missing included), or a
                camera stops delivering frames while iterating.
        """
        from mnist_edge.live import STABLE, LiveStream, check_counts, open_source

        stable = STABLE if stable is None else stable
        check_counts(every, stable)
        self._digits_only("watch")
        self.line_reader()  # a missing line reader is reported before the camera is opened
        return LiveStream(self.read, open_source(source, camera_api), every, stable)

    def line_reader(self) -> LineReader:
        """The line reader beside this model, loaded on first use: the reader file of the same
        format and precision when the manifest lists one (on this model's backend), else the
        first one an installed backend runs.

        Raises:
            ModelError: the model was loaded from a single file, or its manifest lists no line
                reader; the message names the missing file.
        """
        if self._reader is None:
            from mnist_edge.formats import READER_FORMATS
            from mnist_edge.linereader import LineReader

            if self.manifest is None:
                raise ModelError(f"{self.path}: read needs the line reader "
                                 f"({READER_FORMATS[0].filename}) of an artifacts folder; load "
                                 "the folder or its manifest.json instead of one model file")
            listed = {e.key for e in self.manifest.reader.files} if self.manifest.reader else set()
            same = f"reader_{self.entry.key}" if self.entry is not None else ""
            if same in listed:
                self._reader = LineReader.load(self.manifest.path, key=same, backend=self.backend)
            else:
                self._reader = LineReader.load(self.manifest.path)
        return self._reader

    def info(self) -> dict[str, Any]:
        """Format, backend, input and output specs, size, sha256 and the manifest's metadata."""
        from mnist_edge.digest import sha256_hex

        data = read_model_bytes(self.path)
        out: dict[str, Any] = {"path": str(self.path), "format": self.format,
                               "precision": self.precision, "backend": self.backend,
                               "input": self._in.as_dict(), "output": self._out.as_dict(),
                               "size": len(data), "sha256": sha256_hex(data)}
        if self.manifest is not None and self.entry is not None:
            m = self.manifest.data
            out["manifest"] = {"path": str(self.manifest.path), "key": self.entry.key,
                               "verified": True, "labels": self.labels,
                               **{k: m[k] for k in ("created_utc", "dataset", "preprocessing",
                                                    "training",
                                                    "keras_reference", "versions") if k in m},
                               "verification": self.entry.verification}
        if self.gate is not None:
            g = self.gate.model
            out["gate"] = {"path": str(g.path), "format": g.format, "precision": g.precision,
                           "backend": g.backend, "threshold": self.gate.threshold,
                           "calibration": self.gate.calibration}
        return out


def _paths(paths: object) -> list[str | os.PathLike[str]]:
    """The file paths of predict_files' argument: one path, or an iterable of paths."""
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    try:
        items = list(paths)  # type: ignore[call-overload]  # checked item by item below
    except TypeError:
        raise InputError(f"paths must be a file path or a list of them, "
                         f"got {type(paths).__name__}") from None
    out: list[str | os.PathLike[str]] = []
    for p in items:
        if isinstance(p, bytes):
            p = os.fsdecode(p)
        if not isinstance(p, (str, os.PathLike)):
            raise InputError(f"each path must be a str or os.PathLike, got {type(p).__name__}")
        out.append(p)
    return out


def _as_batch(images: npt.ArrayLike) -> np.ndarray:
    """Validate and normalise to uint8 or float32 [N,28,28] (a view when possible)."""
    if type(images) is np.ndarray and images.dtype == np.uint8:  # the common case, first
        if images.shape == IMAGE_SHAPE:
            return images[np.newaxis]
        if images.ndim == 3 and images.shape[1:] == IMAGE_SHAPE:
            return images
    if isinstance(images, (list, tuple)):
        try:
            images = np.asarray(images)
        except (ValueError, TypeError) as exc:
            raise InputError(f"cannot make an array of the images given ({exc})") from None
    if not isinstance(images, np.ndarray):
        raise InputError(f"images must be a numpy array, got {type(images).__name__}")
    x = images
    if x.ndim == 4 and x.shape[1:] == (28, 28, 1):
        x = x[..., 0]
    elif x.ndim == 3 and x.shape == (28, 28, 1):
        x = x[np.newaxis, ..., 0]
    elif x.ndim == 2 and x.shape == IMAGE_SHAPE:
        x = x[np.newaxis]
    elif not (x.ndim == 3 and x.shape[1:] == IMAGE_SHAPE):
        raise InputError(f"images have shape {x.shape}; expected [N,28,28], [N,28,28,1] or one "
                         "[28,28] image (use preprocess_image or predict_files for other sizes)")
    kind = x.dtype.kind
    if x.dtype == np.uint8 or x.size == 0:
        return x if x.dtype == np.uint8 else x.astype(np.uint8)
    if kind in "iu":
        lo, hi = x.min(), x.max()
        if lo < 0 or hi > 255:
            raise InputError(f"integer pixels must lie in 0..255, got {lo}..{hi}")
        return x.astype(np.uint8)
    if kind == "f":
        lo, hi = x.min(), x.max()
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise InputError("images contain NaN or infinite values; every pixel must be a finite "
                             "number in [0, 1]")
        if lo < -FLOAT_TOLERANCE or hi > 1 + FLOAT_TOLERANCE:
            hint = "; divide by 255 or pass uint8" if hi > 1 + FLOAT_TOLERANCE else ""
            raise InputError(f"float pixels must lie in [0, 1], got {lo:.4g}..{hi:.4g}{hint}")
        x = x.astype(np.float32, copy=False)
        return np.clip(x, 0.0, 1.0) if lo < 0 or hi > 1 else x
    raise InputError(f"images have dtype {x.dtype}; pass uint8 pixels 0..255 or floats in [0, 1]")


def pixel_lut(spec: backends.TensorSpec) -> np.ndarray:
    """Model input value for each uint8 pixel 0..255 (pixel / 255, quantized when the input is)."""
    real = np.arange(256, dtype=np.float32) / np.float32(255.0)
    if spec.scale is None:
        return real.astype(spec.dtype)
    info = np.iinfo(spec.dtype)
    lut: np.ndarray = np.clip(np.rint(real / np.float32(spec.scale)) + spec.zero_point,
                              info.min, info.max).astype(spec.dtype)
    return lut


def _in_input_pixels(reading: Reading, scale: int, size: tuple[int, int]) -> Reading:
    """``reading`` with its boxes scaled from the decoded (shrunk) image to the input's pixels."""
    if scale == 1:
        return reading
    w, h = size
    return reading.with_boxes(lambda b: (min(w, b[0] * scale), min(h, b[1] * scale),
                                         min(w, b[2] * scale), min(h, b[3] * scale)))


def _strip_path(message: str, path: object) -> str:
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else message
