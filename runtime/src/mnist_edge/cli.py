"""The ``mnist-edge`` command line.

    mnist-edge predict artifacts/ digit.jpg scans/ t10k-images-idx3-ubyte.gz batch.npy
    mnist-edge predict artifacts/model_int8.tflite seven.png --top-k 3 --json
    mnist-edge read artifacts/ meter.jpg --json      # whole numbers: every digit, in order
    mnist-edge read artifacts/ --camera 0            # ...each time a camera's reading changes
    mnist-edge info artifacts/
    mnist-edge verify artifacts/
    mnist-edge bench artifacts/          # time every file here; saves the fastest (see bench.py)

Expected problems (a missing model, an unreadable image) print one line on stderr, never a
traceback. Exit status: 0 when every input was answered, 1 when some were not (each gets
a stderr line and a count is printed at the end), 2 when the command could not run at all.
With a "no digit" gate in the manifest, an input that is not a digit (a letter, a symbol, a
shape, a scene, a blank image) is answered "no digit" with the reason: an answer, not a failure.

One line per input: control characters in file names and manifest text (tab, newline, terminal
escapes) are printed as Python escapes (\\t, \\n, \\x1b); --json keeps names exact, in JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import sys
from typing import TYPE_CHECKING, Any, Callable, NoReturn, TextIO, cast

from mnist_edge import backends
from mnist_edge.errors import MnistEdgeError

if TYPE_CHECKING:  # imported where used: `mnist-edge --help` stays fast
    from pathlib import Path

    import numpy as np

    from mnist_edge.classifier import Classifier, Prediction

EXIT_OK, EXIT_SOME_FAILED, EXIT_FATAL = 0, 1, 2
FILE_BATCH = 256  # image files decoded and classified together
DIGITS = 10       # classes of the model: the largest --top-k
STABLE_FRAMES = 3  # read --stable: the default of mnist_edge.live.STABLE
SAME_NAME_TRIES = 1000  # --crops: name~2.png, name~3.png, ... when a name is taken
# C0 and C1 controls (tab, newline, ESC, CSI, ...) and Unicode's line and paragraph separators
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: object) -> str:
    """``text`` with control characters as Python escapes (\\t, \\n, \\x1b, \\u2028): a file
    name or a manifest value can neither split an output line nor drive the terminal."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="artifacts folder, manifest.json, .tflite or .onnx file")
    p.add_argument("--backend", default="auto", choices=["auto", *backends.BACKENDS],
                   help="interpreter to use (default: %(default)s: litert, tflite-runtime, "
                        "tensorflow for TFLite; onnxruntime for ONNX)")
    p.add_argument("--threads", type=int, default=1,
                   help="interpreter threads (default: %(default)s)")
    p.add_argument("--unverified", action="store_true",
                   help="run a model file that no manifest vouches for on tflite-runtime, which "
                        "does not verify files: it is tried once in a child process first")
    p.add_argument("--no-gate", action="store_true",
                   help="give a digit for every input: do not load the manifest's \"no digit\" "
                        "gate")


def _predict_args(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files, folders (walked recursively), .npy arrays or IDX files")
    p.add_argument("--top-k", type=int, default=1,
                   help="also list the K most likely digits with their probabilities "
                        "(default: %(default)s)")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per line, for machines (file names exact; tab-separated "
                        "lines print control characters in names escaped: \\t, \\n, \\x1b)")


def _load(args: argparse.Namespace) -> Classifier:
    from mnist_edge.classifier import Classifier
    from mnist_edge.loading import usable_threads

    threads = usable_threads(args.threads)
    if threads < args.threads:
        print(f"mnist-edge: note: --threads {args.threads} is more than this machine's "
              f"{threads} cores; using {threads}", file=sys.stderr)
    return Classifier.load(args.model, backend=args.backend, threads=threads,
                           probe=True if getattr(args, "unverified", False) else None,
                           gate=not getattr(args, "no_gate", False))


class _Reporter:
    """Prints one line per input (stdout) or per failure (stderr), counting both. A model whose
    class names are not its digits (Fashion-MNIST: "Sneaker") gets the name beside the label."""

    def __init__(self, top_k: int, as_json: bool, names: list[str] | None = None):
        self.top_k, self.as_json = top_k, as_json
        self.names = names or [str(d) for d in range(DIGITS)]
        self.named = self.names != [str(d) for d in range(DIGITS)]
        self.done = self.failed = 0

    def prediction(self, names: list[str], pred: Prediction) -> None:
        """One line per image of ``pred``: the API's label, the top k in ``Prediction.top_k``."""
        order, _ = pred.top_k(self.top_k)
        for name, label, probabilities, top, why in zip(names, pred.labels, pred.probabilities,
                                                        order, pred.reasons):
            if why is None:
                self.result(name, int(label), probabilities, top)
            else:
                self.no_digit(name, why)

    def no_digit(self, name: str, reason: str) -> None:
        """An input answered "no digit": an answer, not a failure."""
        self.done += 1
        if self.as_json:
            print(json.dumps({"input": name, "label": None, "no_digit": reason}))
        else:
            print(f"{printable(name)}\tno digit\t{printable(reason)}")

    def result(self, name: str, label: int, probabilities: np.ndarray, order: np.ndarray) -> None:
        self.done += 1
        conf = float(probabilities[label])
        if self.as_json:
            row: dict[str, Any] = {"input": name, "label": label, "name": self.names[label],
                                   "confidence": round(conf, 6)}
            if self.top_k > 1:
                row["top_k"] = [[int(i), round(float(probabilities[i]), 6)] for i in order]
            print(json.dumps(row))
        else:
            extra = "".join(f"\t{int(i)}:{probabilities[i]:.4f}" for i in order[1:])
            named = f"\t{printable(self.names[label])}" if self.named else ""
            print(f"{printable(name)}\t{label}{named}\t{conf:.4f}{extra}")

    def error(self, name: str, message: str) -> None:
        self.failed += 1
        print(f"mnist-edge: {printable(name)}: {printable(message)}", file=sys.stderr)
        if self.as_json:
            print(json.dumps({"input": name, "error": message}))


def _classify(clf: Classifier, out: _Reporter, images: np.ndarray, names: list[str]) -> None:
    """Answer images [n,28,28(,1)] named ``names``; only the images predict refuses fail.

    A refused batch (a NaN, a pixel out of range) is split in halves until the bad images are
    alone: the rest keep the batched speed.
    """
    from mnist_edge.errors import InputError

    try:
        pred = clf.predict(images, refuse=clf.gate is not None)
    except InputError as exc:
        if len(names) == 1:
            out.error(names[0], str(exc))
            return
        half = len(names) // 2
        _classify(clf, out, images[:half], names[:half])
        _classify(clf, out, images[half:], names[half:])
        return
    out.prediction(names, pred)


def _predict(args: argparse.Namespace) -> int:
    from mnist_edge.arrays import read_array_chunks
    from mnist_edge.discover import expand
    from mnist_edge.errors import InputError

    if not 1 <= args.top_k <= DIGITS:
        raise MnistEdgeError(f"--top-k must be between 1 and {DIGITS}, got {args.top_k}")
    clf = _load(args)
    out = _Reporter(args.top_k, args.json, clf.labels)
    files: list[Path] = []

    def flush_files() -> None:
        for r in clf.predict_files(files):
            if r.label is not None and r.probabilities is not None:
                # the order of Prediction.top_k: ties go to the lower digit
                order = (-r.probabilities).argsort(kind="stable")[:out.top_k]
                out.result(r.path, r.label, r.probabilities, order)
            elif r.no_digit is not None:
                out.no_digit(r.path, r.no_digit)
            else:
                out.error(r.path, r.error or "could not be classified")
        files.clear()
        sys.stdout.flush()

    for source in expand(args.inputs):
        if source.kind == "image":
            files.append(source.path)
            if len(files) >= FILE_BATCH:
                flush_files()
            continue
        flush_files()
        name = str(source.path)
        if source.kind == "error":
            out.error(name, source.error or "cannot be read")
            continue
        index = 0
        try:
            for chunk in read_array_chunks(source.path, source.kind):
                if chunk.ndim == 2 or chunk.shape == (28, 28, 1):  # one image: named by its file
                    _classify(clf, out, chunk[None], [name])
                    continue
                _classify(clf, out, chunk, [f"{name}[{index + i}]" for i in range(len(chunk))])
                index += len(chunk)
        except InputError as exc:  # the file itself: unreadable, wrong shape, truncated
            out.error(name, str(exc).removeprefix(f"{name}: "))
    flush_files()
    if out.failed:
        print(f"mnist-edge: {out.failed} of {out.done + out.failed} inputs failed", file=sys.stderr)
        return EXIT_SOME_FAILED
    return EXIT_OK


def _read_args(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="image files or folders (walked recursively) of handwritten numbers "
                        "(or --camera / --video instead)")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per input: input, number, digits [{box, label, "
                        "confidence, with a gate digit_score}], with a gate no_digit (why "
                        "nothing was read, or null) and "
                        "refused [{boxes, reason}]; boxes are [left, top, right, bottom] in the "
                        "image's pixels. With --camera/--video: one object per change (time, "
                        "frame, number, confidence, no_digit, digits, fps), then {\"summary\"}")
    live = p.add_argument_group(
        "live input", "read a camera's or a video's frames instead of files, and print a line "
        "each time the reading changes (time, number or \"no digit\", confidence, frames/s); "
        "Ctrl-C or the end of the video stops with a summary on stderr; needs OpenCV: pip "
        "install \"mnist-edge[video]\" (or Picamera2 on a Raspberry Pi)")
    live.add_argument("--camera", type=int, nargs="?", const=0, metavar="N",
                      help="read camera N (default when given alone: 0); a slow model skips "
                           "frames rather than falling behind")
    live.add_argument("--video", metavar="FILE", help="read a video file, frame by frame")
    live.add_argument("--every", type=int, default=1, metavar="K",
                      help="read every K-th frame only")
    live.add_argument("--stable", type=int, default=STABLE_FRAMES, metavar="N",
                      help="frames in a row a reading must hold to be reported: a frame or "
                           "two misread while the number moves is not a change")
    live.add_argument("--camera-api", choices=["auto", "picamera2", "opencv"], default="auto",
                      help="auto: Picamera2 when installed (a Pi camera module), else OpenCV")
    p.add_argument("--crops", metavar="DIR",
                   help="also write each digit as the model saw it (28x28 PNG) into DIR, to "
                        "debug a wrong answer; only new files: a name already taken (a file or a "
                        "link) gets ~2, ~3, ..., and DIR is never read as an input")


def _read(args: argparse.Namespace) -> int:
    """Print each input's number: path, number (lines separated by spaces), least confidence."""
    from pathlib import Path

    from mnist_edge.discover import expand
    from mnist_edge.errors import InputError

    sources = bool(args.inputs) + (args.camera is not None) + (args.video is not None)
    if sources != 1:
        raise MnistEdgeError("read: give image files, or --camera N, or --video FILE (one of "
                             "them); see mnist-edge read --help")
    for flag, value in (("--every", args.every), ("--stable", args.stable)):
        if value < 1:
            raise MnistEdgeError(f"read: {flag} must be at least 1, got {value}")
    if not args.inputs:
        if args.crops:
            raise MnistEdgeError("read: --crops writes the digits of image files; it does not "
                                 "take --camera or --video")
        return _read_live(args)
    clf = _load(args)
    crops = _crops_folder(Path(args.crops)) if args.crops else None
    out = _Reporter(1, args.json)
    for n, source in enumerate(expand(args.inputs, outputs=[crops] if crops else [])):
        name = str(source.path)
        if source.kind != "image":
            out.error(name, source.error or "not an image file; read takes photos and scans")
            continue
        try:
            reading = clf.read(source.path)
        except InputError as exc:
            out.error(name, str(exc).removeprefix(f"{name}: "))
            continue
        out.done += 1
        if crops is not None:
            _write_crops(crops, n, source.path, reading.digits)
        if args.json:
            from mnist_edge.answers import reading_json

            print(json.dumps({"input": name, **reading_json(reading, clf.gate is not None)}))
        elif reading.no_digit is not None:
            print(f"{printable(name)}\tno digit\t{printable(reading.no_digit)}")
        else:
            number = reading.number.replace("\n", " ") or "-"
            print(f"{printable(name)}\t{number}\t{reading.confidence:.4f}")
        sys.stdout.flush()
    if out.failed:
        print(f"mnist-edge: {out.failed} of {out.done + out.failed} inputs failed", file=sys.stderr)
        return EXIT_SOME_FAILED
    return EXIT_OK


def _read_live(args: argparse.Namespace) -> int:
    """Print each change of a camera's or video's reading, then a summary on stderr."""
    from mnist_edge.live import SourceError, StreamStats

    clf = _load(args)
    source = args.video if args.video is not None else args.camera
    stream = clf.watch(source, every=args.every, stable=args.stable, camera_api=args.camera_api)
    name = stream.source.name
    stats: StreamStats = stream.stats
    try:
        with stream:
            for r in stream:
                _print_change(r, args.json)
    except KeyboardInterrupt:
        stats.stopped_by = "interrupted"
    except SourceError as exc:
        stats.stopped_by = "error"
        print(f"mnist-edge: {printable(exc)}", file=sys.stderr)
        if args.json:
            print(json.dumps({"error": str(exc), "summary": {"source": name,
                                                             **stats.as_dict()}}))
        return EXIT_SOME_FAILED
    if args.json:
        print(json.dumps({"summary": {"source": name, **stats.as_dict()}}))
    dropped = f", {stats.frames_dropped} dropped while the model was busy" if stream.source.live \
        else ""
    skipped = f", {stats.frames_skipped} passed over (--every)" if stats.frames_skipped else ""
    print(f"mnist-edge: {printable(name)}: {stats.frames_read} frames read in "
          f"{stats.seconds:.1f} s ({stats.fps:.1f} frames/s){skipped}{dropped}, "
          f"{stats.changes} readings; {stats.stopped_by}", file=sys.stderr)
    return EXIT_OK


def _print_change(r: Any, as_json: bool) -> None:
    """One line for a change of reading (a LiveReading)."""
    if as_json:
        print(json.dumps({"time": round(r.time, 3), "frame": r.frame, "number": r.number,
                          "confidence": round(r.confidence, 6), "no_digit": r.no_digit,
                          "digits": [{"box": list(d.box), "label": d.label,
                                      "confidence": round(d.confidence, 6)}
                                     for d in r.reading.digits],
                          "fps": round(r.fps, 2)}))
    elif r.no_digit is not None:
        why = r.no_digit.removeprefix("no digit: ")
        print(f"{r.time:.2f}s\tno digit\t{printable(why)}\t{r.fps:.1f} fps")
    else:
        print(f"{r.time:.2f}s\t{r.number.replace(chr(10), ' ')}\t{r.confidence:.4f}\t"
              f"{r.fps:.1f} fps")
    sys.stdout.flush()


def _crops_folder(folder: Path) -> Path:
    """The --crops folder, created if missing."""
    if folder.exists() and not folder.is_dir():
        raise MnistEdgeError(f"--crops {printable(folder)}: exists and is not a folder; name a "
                             "folder (it is created if missing)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MnistEdgeError(f"--crops {printable(folder)}: cannot create the folder "
                             f"({exc.strerror or exc})") from None
    return folder


def _write_crops(folder: Path, n: int, path: Path, digits: Any) -> None:
    """DIR/<input number>-<file stem>-<digit index>-<label>.png for each digit read."""
    from PIL import Image

    for i, d in enumerate(digits):
        png = io.BytesIO()
        Image.fromarray(d.crop).save(png, format="PNG")
        _save_new(folder, f"{n:05d}-{path.stem[:60]}-{i}-{d.label}", ".png", png.getvalue())


def _save_new(folder: Path, stem: str, suffix: str, data: bytes) -> Path:
    """Write ``data`` as a new file in ``folder``, atomically: never over an existing file or
    link, never through a link (a taken name becomes stem~2, stem~3, ...)."""
    import secrets

    # O_EXCL: a name that exists, even as a link, is refused rather than opened
    flags = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
             | getattr(os, "O_BINARY", 0))
    tmp = folder / f".{stem[:20]}.{secrets.token_hex(8)}.tmp"
    target = folder / f"{stem}{suffix}"
    try:
        with open(os.open(tmp, flags, 0o666), "wb") as fh:
            fh.write(data)
        for k in range(1, SAME_NAME_TRIES + 1):
            target = folder / f"{stem}{f'~{k}' if k > 1 else ''}{suffix}"
            try:
                os.link(tmp, target)  # fails on a taken name (a link too), never replaces it
                return target
            except FileExistsError:
                continue
            except OSError:  # a file system without hard links (FAT): claim the name, rename
                try:
                    os.close(os.open(target, flags, 0o666))
                except FileExistsError:
                    continue
                os.replace(tmp, target)
                return target
        raise MnistEdgeError(f"--crops: {SAME_NAME_TRIES} files named {printable(stem)}~N"
                             f"{suffix} already exist in {printable(folder)}; empty the folder")
    except OSError as exc:
        raise MnistEdgeError(f"--crops: cannot write {printable(target)} "
                             f"({exc.strerror or exc})") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _info(args: argparse.Namespace) -> int:
    info = _load(args).info()
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return EXIT_OK
    for key in ("path", "format", "precision", "backend", "size", "sha256"):
        print(f"{key:<16}{printable(info[key])}")
    for key in ("input", "output"):
        spec = info[key]
        q = spec["quantization"]
        quant = f"scale={q['scale']:.6g} zero_point={q['zero_point']}" if q else "none (float)"
        print(printable(f"{key:<16}{spec['name']} {spec['shape']} {spec['dtype']}, "
                        f"quantization {quant}"))
    manifest = info.get("manifest")
    if manifest:
        print(printable(f"{'manifest':<12}{manifest['path']} "
                        f"(file {manifest['key']}, size and sha256 verified)"))
        dataset = manifest.get("dataset") or {"name": "MNIST", "kind": "digits"}
        print(printable(f"{'dataset':<16}{dataset.get('name')} ({dataset.get('kind')}), "
                        f"classes {', '.join(manifest['labels'])}"))
        for key in ("created_utc", "verification", "training", "keras_reference", "versions"):
            if key in manifest:
                value = manifest[key]
                print(f"{key:<16}"
                      f"{printable(json.dumps(value) if isinstance(value, dict) else value)}")
    gate = info.get("gate")
    if gate:
        print(printable(f"{'gate':<16}{gate['path']} ({gate['format']} {gate['precision']} on "
                        f"{gate['backend']}): \"no digit\" below a digit score of "
                        f"{gate['threshold']:.3f}, {gate['calibration'].get('method', '')}"))
    return EXIT_OK


def _info_args(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    p.add_argument("--json", action="store_true", help="print the details as JSON")


def _verify_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("artifacts", help="artifacts folder or its manifest.json")
    p.add_argument("--backend", default="auto", choices=["auto", *backends.BACKENDS],
                   help="run the files on this backend (default: each file's first installed "
                        "one); files of the other format are not run")
    p.add_argument("--no-run", action="store_true",
                   help="check sizes and sha256 only; do not run the files on the golden set")


def _verify(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mnist_edge import selftest
    from mnist_edge.errors import IntegrityError
    from mnist_edge.golden import SelfTest
    from mnist_edge.manifest import verify_all

    folder = Path(args.artifacts)
    results = verify_all(folder)
    runs: dict[str, SelfTest | str] = {}
    golden_damaged = False
    if not args.no_run:
        try:
            runs = {entry.key: outcome for entry, outcome in
                    selftest.verify_folder(folder, args.backend)}
        except MnistEdgeError as exc:  # no golden set (an older export), or a damaged one
            print(printable(f"mnist-edge: files not run on the golden set: {exc}"),
                  file=sys.stderr)
            golden_damaged = isinstance(exc, IntegrityError)
    width = max([16] + [len(entry.key) + 1 for entry, _ in results])  # the reader's keys are longer
    copied = answered = 0  # files unlike the manifest; files answering unlike the export
    for entry, problem in results:
        run = runs.get(entry.key)
        if problem is not None:
            copied += 1
            print(printable(f"FAIL  {entry.key:<{width}}{entry.path}: {problem}"))
            continue
        passed = not isinstance(run, SelfTest) or run.passed
        answered += not passed
        shown = f"  {run.summary() if isinstance(run, SelfTest) else run}" if run else ""
        print(printable(f"{'OK  ' if passed else 'FAIL'}  {entry.key:<{width}}{entry.path}  "
                        f"{entry.size} bytes  sha256 {entry.sha256[:12]}...{shown}"))
    if copied:
        print(f"mnist-edge: {copied} of {len(results)} files do not match the manifest; "
              "copy the artifacts folder again", file=sys.stderr)
    if answered:
        print(f"mnist-edge: {answered} of {len(results)} files answer the golden set unlike at "
              "export on this device: do not trust their answers here; try another backend "
              "(--backend) or file, and report the interpreter and CPU", file=sys.stderr)
    return EXIT_SOME_FAILED if copied or answered or golden_damaged else EXIT_OK


def _bench_args(p: argparse.ArgumentParser) -> None:
    from mnist_edge import bench

    bench.add_arguments(p)


def _bench(args: argparse.Namespace) -> int:
    from mnist_edge import bench

    return bench.run(args)


def _serve_args(p: argparse.ArgumentParser) -> None:
    from mnist_edge import serve

    _model_args(p)
    serve.add_arguments(p)


def _serve(args: argparse.Namespace) -> int:
    from mnist_edge import serve

    return serve.run(args, lambda: _load(args))


def _commands() -> dict[str, tuple[str, Callable[[argparse.ArgumentParser], None],
                                   Callable[[argparse.Namespace], int]]]:
    """Subcommand table: name -> (help, add_arguments, run). A new subcommand is one row."""
    return {
        "predict": ("classify digits (or the model's classes) in images, folders, .npy arrays "
                    "or IDX files",
                    _predict_args, _predict),
        "read": ("read whole handwritten numbers in photos: every digit with its box, in "
                 "reading order", _read_args, _read),
        "info": ("show a model's format, backend, tensors, quantization and manifest data",
                 _info_args, _info),
        "verify": ("check every file of an artifacts folder against its manifest, and run each "
                   "on the golden set its export wrote (answers and outputs as at export)",
                   _verify_args, _verify),
        "serve": ("answer reads and predictions over HTTP (a JSON API) for other machines: "
                  "POST /read, POST /predict, GET /info; needs pip install "
                  "\"mnist-edge[serve]\"", _serve_args, _serve),
        "bench": ("time a model (or every file of an artifacts folder) on this device: latency, "
                  "throughput, load time, memory", _bench_args, _bench),
    }


class _Parser(argparse.ArgumentParser):
    """argparse, with a mistake on the command line reported in one line (then exit 2)."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.partition(" ")[2]  # "predict" in "mnist-edge predict"
        where = f"{command}: " if command else ""
        self.exit(EXIT_FATAL, f"mnist-edge: {where}{message}; see {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mnist-edge",
        description="Classify handwritten digits with exported mnist-edge models.",
        epilog="exit status: 0 all inputs classified, 1 some failed, 2 the command could not run. "
               "Output is one line per input: control characters in file names are printed "
               "escaped (a tab as \\t, a newline as \\n, ESC as \\x1b); --json keeps them "
               "exact")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add_arguments, run) in _commands().items():
        p = sub.add_parser(name, help=help_text, description=help_text,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        add_arguments(p)
        p.set_defaults(run=run)
    return parser


def _version() -> str:
    from mnist_edge import __version__

    return __version__


class _OutputError(Exception):
    """Standard output cannot take what the command writes (a full disk, a closed descriptor).

    Not a MnistEdgeError: code that handles bad inputs or models must not catch it.
    """


class _GuardedStdout:
    """``sys.stdout`` while a command runs: a failed write or flush, wherever it happens, is an
    _OutputError (one line, exit 2); a broken pipe (``| head``) stays a BrokenPipeError."""

    def __init__(self, stream: TextIO):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise _OutputError(f"cannot write output ({exc.strerror or exc})") from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise _OutputError(f"cannot write output ({exc.strerror or exc})") from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _any_name_printable(stream: TextIO | None) -> None:
    """Escape what the stream's encoding cannot carry instead of raising.

    A file name that is not valid UTF-8 reaches Python as lone surrogates ("caf\\udce9.png"),
    which the strict handler Python picks under a UTF-8 locale refuses with a traceback.
    """
    if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
        # a descriptor closed under Python's feet: the first write reports it, in one line
        with contextlib.suppress(OSError, ValueError):
            stream.reconfigure(errors="backslashreplace")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mnist-edge`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    stdout = sys.stdout
    if stdout is None:  # started with stdout closed (`>&-`): no answer could be delivered
        print("mnist-edge: cannot write output (standard output is closed)", file=sys.stderr)
        return EXIT_FATAL
    _any_name_printable(stdout)
    _any_name_printable(sys.stderr)
    sys.stdout = cast(TextIO, _GuardedStdout(stdout))
    try:
        status: int = args.run(args)
        sys.stdout.flush()  # here, not at exit, where a failure is a traceback and status 120
        return status
    except _OutputError as exc:
        print(f"mnist-edge: {exc}", file=sys.stderr)
        stdout = None  # drop what it still holds, or Python's flush at exit fails again
        return EXIT_FATAL
    except MnistEdgeError as exc:
        print(f"mnist-edge: {printable(exc)}", file=sys.stderr)
        return EXIT_FATAL
    except KeyboardInterrupt:
        print("mnist-edge: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `mnist-edge predict ... | head`
        sys.stderr.close()
        return EXIT_OK
    finally:
        sys.stdout = stdout


if __name__ == "__main__":
    sys.exit(main())
