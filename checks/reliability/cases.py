"""The fuzz cases as the worker runs them (``fuzz`` jobs of checks/worker.py), one per job.

The driver (fuzz.py) writes each case's input (a mutated file, a copied artifacts folder); here
it meets the runtime. The outcome is "ok" (a result), "error" (a one-line MnistEdgeError, a
FileResult error or a CLI stderr line: the expected way to refuse bad input) or "bad" (any other
exception, a traceback or a multi-line message). If the process dies (a native crash), the
driver sees the pipe close and counts a crash. Imports only numpy and mnist_edge, so it also
runs in .venv-tflite.
"""

from __future__ import annotations

import contextlib
import io
import traceback
from pathlib import Path

import numpy as np

CONTAINED = "in a child process"  # the probe turned a crash or a hang into a ModelError
ARRAY_FILLS = ("zeros", "full", "random", "nan", "inf", "-inf", "max", "min", "mixed")


_classifiers: dict = {}


def _classifier(artifacts: str, key: str | None):
    from mnist_edge import Classifier

    if (artifacts, key) not in _classifiers:
        _classifiers[(artifacts, key)] = Classifier.load(artifacts, key=key)
    return _classifiers[(artifacts, key)]


def arrays(artifacts: str, spec: dict):
    """predict() on an array a user might pass."""
    x = make_array(spec)
    shape = spec["shape"]
    n = shape[0] if len(shape) in (3, 4) and shape[1:3] == [28, 28] else 1
    pred = _classifier(artifacts, spec.get("key")).predict(x)
    p = pred.probabilities
    if len(pred) != n or p.shape != (n, 10) or not np.all(np.isfinite(p)) \
            or not np.allclose(p.sum(axis=1), 1, atol=1e-3) \
            or not np.all((pred.labels >= 0) & (pred.labels < 10)):
        return "bad", f"implausible prediction: shape {p.shape} for {n} images"
    return "ok", f"{n} predicted"


def images(artifacts: str, path: str):
    """predict_files() on an image file."""
    results = _classifier(artifacts, None).predict_files([path])
    if len(results) != 1:
        return "bad", f"{len(results)} results for 1 file"
    r = results[0]
    if r.ok:
        valid = r.label in range(10) and np.all(np.isfinite(r.probabilities))
        return ("ok", f"label {r.label}") if valid else ("bad", f"implausible result {r}")
    return one_line(r.error)


def cli(artifacts: str, path: str, args: list[str]):
    """``mnist-edge predict`` on an input file: results, or one ``mnist-edge:`` line per problem."""
    return _cli_run(["predict", artifacts, path, *args])


def _cli_run(argv: list[str]) -> tuple[str, str]:
    """The CLI in this process, judged: results, or one ``mnist-edge:`` line per problem."""
    return _judge_cli(*_cli_capture(argv))


def _cli_capture(argv: list[str]) -> tuple[object, str, str]:
    """(exit status, stdout, stderr) of the CLI run in this process."""
    from mnist_edge import cli as edge_cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code: object = edge_cli.main(argv)
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def _judge_cli(code: object, out: str, err: str, printed: bool = True) -> tuple[str, str]:
    lines = [line for line in err.splitlines() if line.strip()]
    if code not in (0, 1, 2) or "Traceback" in err:
        return "bad", f"exit {code}: {err[-300:]}"
    stray = [line for line in lines if not line.startswith("mnist-edge: ")]
    if stray:
        return "bad", f"stderr line not from mnist-edge: {stray[0][:200]}"
    if code == 0 and printed and not out.strip():
        return "bad", "exit 0 but no result printed"
    return ("ok", "exit 0") if code == 0 else ("error", lines[0] if lines else f"exit {code}")


def model(path: str, backend: str = "auto", probe: bool | None = None):
    """Classifier.load() on a model file, then a prediction."""
    from mnist_edge import Classifier

    return _predict_zero(Classifier.load(path, backend=backend, probe=probe))


def manifest(folder: str, key: str | None):
    """Classifier.load() through a manifest, then a prediction."""
    from mnist_edge import Classifier

    return _predict_zero(Classifier.load(folder, key=key))


def _predict_zero(clf):
    digit = np.zeros((2, 28, 28), np.uint8)
    digit[:, 8:20, 13:15] = 255  # a "1"
    p = clf.predict(digit).probabilities
    if p.shape != (2, 10):
        return "bad", f"loaded, but predict returned shape {p.shape}"
    return "ok", f"loaded and predicted ({clf.backend})"


# ------------------------------------------------------------------------------ hostile classes
def environment(artifacts: str, inputs: list[str], args: list[str], env: dict[str, str],
                stdout: str):
    """``mnist-edge predict`` in a child process: a locale; a closed, full or broken stdout."""
    import os
    import subprocess
    import sys

    code = ("import os, sys\n" + ("os.close(1)\n" if stdout == "closed" else "")
            + "from mnist_edge.cli import main\nsys.exit(main(sys.argv[1:]))")
    cmd = [sys.executable, "-c", code, "predict", artifacts, *inputs, *args]
    sink = {"devnull": subprocess.DEVNULL, "closed": subprocess.DEVNULL,
            "full": "/dev/full", "broken": subprocess.PIPE}[stdout]
    with contextlib.ExitStack() as stack:
        if sink == "/dev/full":
            sink = stack.enter_context(open("/dev/full", "wb"))
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.PIPE,
                                env={**os.environ, **env})
        if proc.stdout is not None:  # a reader that goes away at once, like `| head -0`
            proc.stdout.close()
        _, err = proc.communicate(timeout=120)
    text = err.decode(errors="replace")
    outcome = _judge_cli(proc.returncode, "", text, printed=False)
    if outcome[0] == "ok" and stdout in ("closed", "full"):
        return "bad", "exit 0 although nothing could be written"
    return outcome


def filesystem(artifacts: str, inputs: list[str], folder: str | None = None,
               refuse: bool = False):
    """The CLI on special files, symlinks and odd names, or a model folder that must be refused."""
    if folder is not None:
        from mnist_edge import Classifier

        outcome, detail = _predict_zero(Classifier.load(folder))
        return ("bad", f"loaded a hostile export: {detail}") if refuse else (outcome, detail)
    return _cli_run(["predict", artifacts, *inputs])


def decoders(artifacts: str, path: str, fmt: str, supported: bool):
    """An image file in one of Pillow's formats, whatever its name: decoded only if supported."""
    outcome, detail = images(artifacts, path)
    if outcome == "ok" and not supported:
        return "bad", f"decoded a {fmt} file, a format the runtime does not support"
    return outcome, detail


def resources(artifacts: str, threads: object, top_k: object, n: int, via: str):
    """Thread counts, --top-k values and batch sizes, through the API or the CLI."""
    import tempfile

    x = np.random.default_rng(n).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    if via == "api":
        from mnist_edge import Classifier

        pred = Classifier.load(artifacts, threads=threads).predict(x)  # type: ignore[arg-type]
        labels, _ = pred.top_k(top_k)  # type: ignore[arg-type]
        return "ok", f"{len(pred)} predicted, top-{labels.shape[1]}"
    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/x.npy", x)
        return _cli_run(["predict", artifacts, f"{tmp}/x.npy", "--threads", str(threads),
                         "--top-k", str(top_k)])


def _value(kind: str, artifacts: str) -> object:
    """A value a careless caller might pass anywhere."""
    values = {"none": None, "int": 3, "negative": -1, "float": 2.5, "nan": float("nan"),
              "bool": True, "empty-str": "", "missing": "/nonexistent/x.png", "text": "digit",
              "bytes": b"x.png", "dict": {"a": 1}, "set": {1}, "list-none": [None],
              "list-str": ["/nonexistent/a.png"], "tuple": (1, 2), "object": object(),
              "folder": artifacts, "huge": 10 ** 30, "array-object": np.array([None, 1]),
              "array-str": np.array(["a", "b"]), "generator": (i for i in range(2))}
    return values[kind]


def api(artifacts: str, call: str, kind: str):
    """One public entry point called with a wrong-typed argument: a result or a clear error."""
    from mnist_edge import Classifier, preprocess_image

    value = _value(kind, artifacts)
    if call.startswith("load-"):
        arg = call.removeprefix("load-")
        clf = Classifier.load(value if arg == "path" else artifacts,  # type: ignore[arg-type]
                              **({} if arg == "path" else {arg: value}))
        return _predict_zero(clf)
    clf = _classifier(artifacts, None)
    if call == "predict":
        return "ok", f"{len(clf.predict(value))} predicted"  # type: ignore[arg-type]
    if call == "predict_files":
        return "ok", f"{len(clf.predict_files(value))} results"  # type: ignore[arg-type]
    if call == "preprocess_image":
        return "ok", f"shape {preprocess_image(value).shape}"  # type: ignore[arg-type]
    labels, _ = clf.predict(np.zeros((2, 28, 28), np.uint8)).top_k(value)  # type: ignore[arg-type]
    return "ok", f"top-{labels.shape[1]}"


def consistency(artifacts: str, kind: str, seed: int, n: int):
    """The CLI and the API give the same digit, top-k and confidence for the same images."""
    import json
    import tempfile

    rng = np.random.default_rng(seed)
    x = {"noise": lambda: rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
         "blank": lambda: np.zeros((n, 28, 28), np.uint8),
         "flat": lambda: np.full((n, 28, 28), int(rng.integers(256)), np.uint8),
         "sparse": lambda: (rng.random((n, 28, 28)) < 0.02).astype(np.uint8) * 255}[kind]()
    ref = _classifier(artifacts, None).predict(x)  # the file the CLI picks: the manifest's first
    top, _ = ref.top_k(3)
    if not np.array_equal(top[:, 0], ref.labels):
        return "bad", f"top_k's first label differs from labels ({kind})"
    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/x.npy", x)
        code, out, err = _cli_capture(["predict", artifacts, f"{tmp}/x.npy", "--json",
                                       "--top-k", "3"])
    outcome, detail = _judge_cli(code, out, err)
    if outcome != "ok":
        return outcome, detail
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    for i, row in enumerate(rows):
        if row["label"] != int(ref.labels[i]) or [t[0] for t in row["top_k"]] != top[i].tolist():
            return "bad", (f"image {i}: CLI says {row['label']} (top {row['top_k']}), API "
                           f"{int(ref.labels[i])} (top {top[i].tolist()}) on {kind} images")
    return "ok", f"{n} images agree"


# ------------------------------------------------------- what the CLI writes, walks and prints
# control characters a line of output must not carry (the C0 and C1 sets, Unicode separators)
_CONTROL = "".join(map(chr, [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]))


def _snapshot(folder: str) -> dict[str, tuple]:
    """Every entry under ``folder`` (links not followed): what it is and what it holds."""
    import os
    import stat

    out: dict[str, tuple] = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                out[path] = ("link", os.readlink(path))
            elif stat.S_ISREG(mode):
                with open(path, "rb") as fh:
                    out[path] = ("file", fh.read())
            else:
                out[path] = ("folder" if stat.S_ISDIR(mode) else "special",)
    return out


def _inside(path: str, folder: str) -> bool:
    import os

    real, top = os.path.realpath(path), os.path.realpath(folder)
    return real == top or real.startswith(top.rstrip(os.sep) + os.sep)


def crops(artifacts: str, inputs: list[str], crops: str, scratch: str, runs: int, as_json: bool,
          images: int):
    """``read --crops`` with links, files, folders and pipes at the crop names: one answer per
    photo, nothing outside the crops folder written, nothing already there changed."""
    import json
    import os

    before = _snapshot(scratch)
    for _ in range(runs):
        code, out, err = _cli_capture(["read", artifacts, *inputs, "--crops", crops,
                                       *(["--json"] if as_json else [])])
        outcome, detail = _judge_cli(code, out, err)
        if outcome == "bad":
            return outcome, detail
        answered = [json.loads(line)["input"] if as_json else line.split("\t")[0]
                    for line in out.splitlines()]
        if outcome == "ok" and len(answered) != images:
            return "bad", f"{len(answered)} answers for {images} photos"
        read_back = [name for name in answered if _inside(os.path.dirname(name), crops)]
        if read_back:
            return "bad", f"read its own crop {read_back[0]!r}"
    after = _snapshot(scratch)
    changed = [path for path, state in before.items() if after.get(path) != state]
    if changed:
        return "bad", f"changed or removed {changed[0]!r}, which was there before"
    for path in sorted(after.keys() - before.keys()):
        state = after[path]
        if state[0] == "folder" and _inside(crops, path):
            continue  # the crops folder, created with its parents
        if not (os.path.dirname(path) == crops and state[0] == "file"
                and state[1].startswith(b"\x89PNG")):
            return "bad", f"wrote {path!r} ({state[0]}), not a new PNG in the crops folder"
    return outcome, detail


def walk(artifacts: str, folder: str, command: str):
    """A folder tree with links in, out, up, around and to /: the walk ends, answers every real
    image in the tree, and never enters a folder outside it."""
    import json
    import os

    code, out, err = _cli_capture([command, artifacts, folder, "--json"])
    outcome, detail = _judge_cli(code, out, err, printed=False)
    if outcome == "bad":
        return outcome, detail
    answered = [json.loads(line)["input"] for line in out.splitlines()]
    outside = [name for name in answered
               if name != folder and not _inside(os.path.dirname(name), folder)]
    if outside:
        return "bad", f"walked out of the folder: {outside[0]!r}"
    real = {os.path.realpath(name) for name in answered}
    for root, _, files in os.walk(folder):  # links not followed: the tree's own files
        for name in files:
            path = os.path.join(root, name)
            if name.endswith(".png") and not os.path.islink(path) and path not in real:
                return "bad", f"{path!r} in the tree was not answered"
    return outcome, detail


def forging(artifacts: str, names: list[str], kinds: list[str], command: str, args: list[str],
            inputs: list[str]):
    """Files whose names carry tabs, newlines and escapes: one line per answer, no control
    character printed, exact names in --json."""
    import json

    code, out, err = _cli_capture([command, artifacts, *inputs, *args])
    outcome, detail = _judge_cli(code, out, err, printed=False)
    if outcome == "bad":
        return outcome, detail
    folder = inputs != names  # a folder: only its image files are walked, .npy left out
    arrays = command == "predict" and not folder
    answers = sum(1 if kind == "image" else 4 if kind == "npy" and arrays else 0 for kind in kinds)
    failures = sum(kind == "garbage" or (kind == "npy" and command == "read" and not folder)
                   for kind in kinds)
    if folder and "image" not in kinds and "garbage" not in kinds:
        failures = 1  # a folder without image files
    rows, problems = out.splitlines(), err.splitlines()
    if len(problems) != failures + bool(failures):
        return "bad", f"{len(problems)} stderr lines for {failures} failures"
    raw = [line for line in problems if any(c in _CONTROL for c in line)]
    if "--json" in args:
        if len(rows) != answers + failures:
            return "bad", f"{len(rows)} JSON lines for {answers} answers and {failures} failures"
        seen = [json.loads(line)["input"] for line in rows]
        lost = [n for n, k in zip(names, kinds, strict=True) if k != "npy" and seen.count(n) != 1]
        if lost:
            return "bad", f"--json does not name {lost[0]!r} exactly once"
    else:
        if len(rows) != answers:
            return "bad", f"{len(rows)} lines for {answers} answers"
        fields = 3 + (2 if "--top-k" in args else 0)
        raw += [line for line in rows if len(line.split("\t")) != fields
                or any(c in _CONTROL for c in line.replace("\t", ""))]
    if raw:
        return "bad", f"a forged or raw output line: {raw[0][:200]!r}"
    return outcome, detail


def headers(artifacts: str, path: str, command: str):
    """``mnist-edge predict`` or ``read`` on a file with a crafted header: a result, or one
    ``mnist-edge:`` line (a Pillow warning on stderr is a failure)."""
    return _cli_run([command, artifacts, path])


def video(artifacts: str, path: str, via: str, every: int, args: list[str]):
    """A video file read to its end through ``Classifier.watch`` (every ``every``-th frame):
    plausible readings, each a change, then the end of the stream; or through ``mnist-edge read
    --video``, whose whole stderr (FFmpeg's own lines included) must be ``mnist-edge:`` lines."""
    if via == "cli":
        with _native_stderr() as native:
            code, out, err = _cli_capture(["read", artifacts, "--video", path, *args])
        return _judge_cli(code, out, err + "".join(native), printed=False)
    with _classifier(artifacts, None).watch(path, every=every) as stream:
        readings = list(stream)
    last = None
    for r in readings:
        if (not 0.0 <= r.confidence <= 1.0 or not np.isfinite(r.time)
                or (last is not None and (r.frame <= last.frame or r.number == last.number))
                or (r.no_digit is None) != bool(r.number)):
            return "bad", (f"implausible reading at frame {r.frame}: {r.number!r}, time "
                           f"{r.time}, confidence {r.confidence}, after {last and last.frame}")
        last = r
    stats = stream.stats
    if stats.changes != len(readings) or stats.frames_read < len(readings):
        return "bad", f"{len(readings)} readings, but the stats say {stats.as_dict()}"
    if not stats.frames_read + stats.frames_skipped:  # not one frame, and no SourceError
        return "bad", f"ended without an error, and without a frame: {stats.as_dict()}"
    return "ok", f"{len(readings)} readings of {stats.frames_read} frames"


@contextlib.contextmanager
def _native_stderr():
    """File descriptor 2 into a temporary file while the block runs; yields a list that then
    holds what was written there (what native code printed)."""
    import os
    import tempfile

    written: list[str] = []
    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            yield written
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            written.append(tmp.read().decode(errors="replace"))


TARGETS = {"arrays": arrays, "images": images, "cli": cli, "model": model, "manifest": manifest,
           "environment": environment, "filesystem": filesystem, "decoders": decoders,
           "resources": resources, "api": api, "consistency": consistency,
           "crops": crops, "walk": walk, "forging": forging, "headers": headers,
           "video": video}


def make_array(spec: dict):
    """The input a user might pass to predict, from an array spec (dtype, shape, fill, layout)."""
    rng = np.random.default_rng(int(spec.get("seed", 0)))
    dtype, shape, fill = np.dtype(spec["dtype"]), tuple(spec["shape"]), spec.get("fill", "random")
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = info.min, info.max
    elif dtype.kind == "f":
        info = np.finfo(dtype)
        lo, hi = float(info.min), float(info.max)
    else:
        lo, hi = 0, 1
    if fill == "zeros":
        x = np.zeros(shape, dtype)
    elif fill == "max":
        x = np.full(shape, hi, dtype) if dtype.kind != "c" else np.full(shape, 1 + 1j, dtype)
    elif fill == "min":
        x = np.full(shape, lo, dtype) if dtype.kind != "c" else np.full(shape, -1j, dtype)
    elif fill in ("nan", "inf", "-inf", "mixed") and dtype.kind in "fc":
        x = rng.random(shape).astype(dtype)
        if x.size:
            special = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}.get(fill)
            flat = x.reshape(-1)
            idx = rng.integers(0, flat.size, size=max(1, flat.size // 50))
            flat[idx] = (special if special is not None
                         else rng.choice([np.nan, np.inf, -np.inf, hi, lo], len(idx)))
    elif dtype.kind == "b":
        x = rng.random(shape) > 0.5
    elif dtype.kind in "iu":
        top = min(hi, 255 if fill == "full" else 300)
        x = rng.integers(max(lo, 0 if fill == "full" else -300), top, size=shape, dtype=dtype,
                         endpoint=True)
    else:
        x = (rng.random(shape) * (2.0 if fill == "random" else 1.0)).astype(dtype)
    layout = spec.get("layout", "c")
    if layout == "fortran":
        x = np.asfortranarray(x)
    elif layout == "strided" and x.ndim >= 1:
        x = np.repeat(x, 2, axis=-1)[..., ::2]
    elif layout == "readonly":
        x.setflags(write=False)
    elif layout == "list":
        return x.tolist()
    elif layout == "bytes":
        return x.tobytes()
    elif layout == "object":
        return x.astype(object)
    elif layout == "scalar":
        return x.reshape(-1)[0] if x.size else 0
    return x


def one_line(message) -> tuple[str, str]:
    """("error", message) if it is a clear one-line message, else ("bad", why not)."""
    text = str(message)
    if not text.strip() or "\n" in text or "Traceback" in text:
        return "bad", f"not a one-line message: {text[:300]!r}"
    return "error", text


def run_case(target: str, **case) -> dict:
    """One case (a worker job): {"outcome": ok | error (a clear refusal) | bad (anything else),
    ...}."""
    from mnist_edge import MnistEdgeError

    try:
        outcome, detail = TARGETS[target](**case)
    except MnistEdgeError as exc:
        outcome, detail = one_line(exc)
    except Exception as exc:
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        outcome, detail = "bad", (f"{type(exc).__name__}: {str(exc)[:200]} at "
                                  f"{Path(tb.filename).name}:{tb.lineno}")
    return {"outcome": outcome, "detail": detail, "contained": CONTAINED in detail}
