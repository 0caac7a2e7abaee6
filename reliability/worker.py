"""The fuzz worker: runs one case per input line and answers one JSON line per case.

    python -m reliability.worker --artifacts DIR --corpus DIR   # driven by reliability/fuzz.py

Input lines are ``{"target": ..., "spec": {...}}``; answers are ``{"outcome": "ok" | "error" |
"bad", "detail": ...}``. "error" is a one-line MnistEdgeError (or a FileResult error / a CLI
stderr line) - the expected way to refuse bad input; "bad" is any other exception, a traceback
or a multi-line message. If the process dies (a native crash), the driver sees the pipe close
and counts a crash. Imports only numpy and mnist_edge, so it also runs in .venv-tflite.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np

from mnist_edge.manifest import read_manifest
from reliability import mutate

CONTAINED = "in a child process"  # the probe turned a crash or a hang into a ModelError
ARRAY_FILLS = ("zeros", "full", "random", "nan", "inf", "-inf", "max", "min", "mixed")


class Worker:
    """Holds the artifacts, the corpus, a scratch folder and the loaded classifiers."""

    def __init__(self, artifacts: Path, corpus: Path):
        self.artifacts, self.corpus = artifacts, corpus
        self.scratch = Path(tempfile.mkdtemp(prefix="mnist-edge-fuzz-"))
        self.export = read_manifest(artifacts)
        self.files = {e.key: e.path for e in self.export.files}
        self._classifiers: dict = {}

    def classifier(self, key: str | None):
        from mnist_edge import Classifier

        if key not in self._classifiers:
            self._classifiers[key] = Classifier.load(self.artifacts, key=key)
        return self._classifiers[key]

    def seed_bytes(self, base: str) -> bytes:
        path = self.files.get(base) or self.corpus / base
        return path.read_bytes()

    def case_dir(self) -> Path:
        shutil.rmtree(self.scratch, ignore_errors=True)
        self.scratch.mkdir()
        return self.scratch

    # ------------------------------------------------------------------------------ targets
    def arrays(self, spec: dict):
        x = make_array(spec)
        shape = spec["shape"]
        n = shape[0] if len(shape) in (3, 4) and shape[1:3] == [28, 28] else 1
        pred = self.classifier(spec.get("key")).predict(x)
        p = pred.probabilities
        if len(pred) != n or p.shape != (n, 10) or not np.all(np.isfinite(p)) \
                or not np.allclose(p.sum(axis=1), 1, atol=1e-3) or not np.all((pred.labels >= 0) & (pred.labels < 10)):
            return "bad", f"implausible prediction: shape {p.shape} for {n} images"
        return "ok", f"{n} predicted"

    def images(self, spec: dict):
        path = self.case_dir() / f"case{spec.get('suffix', '.png')}"
        path.write_bytes(mutate.apply(self.seed_bytes(spec["base"]), spec["ops"]))
        results = self.classifier(None).predict_files([path])
        if len(results) != 1:
            return "bad", f"{len(results)} results for 1 file"
        r = results[0]
        if r.ok:
            valid = r.label in range(10) and np.all(np.isfinite(r.probabilities))
            return ("ok", f"label {r.label}") if valid else ("bad", f"implausible result {r}")
        return one_line(r.error)

    def cli(self, spec: dict):
        from mnist_edge import cli

        path = self.case_dir() / f"case{spec.get('suffix', '.png')}"
        path.write_bytes(mutate.apply(self.seed_bytes(spec["base"]), spec["ops"]))
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(["predict", str(self.artifacts), str(path), *spec.get("args", [])])
            except SystemExit as exc:
                code = exc.code
        lines = [line for line in err.getvalue().splitlines() if line.strip()]
        if code not in (0, 1, 2) or "Traceback" in err.getvalue():
            return "bad", f"exit {code}: {err.getvalue()[-300:]}"
        stray = [line for line in lines if not line.startswith("mnist-edge: ")]
        if stray:
            return "bad", f"stderr line not from mnist-edge: {stray[0][:200]}"
        if code == 0 and not out.getvalue().strip():
            return "bad", "exit 0 but no result printed"
        return ("ok", f"exit 0") if code == 0 else ("error", lines[0] if lines else f"exit {code}")

    def model(self, spec: dict):
        from mnist_edge import Classifier

        path = self.case_dir() / f"model{spec.get('suffix', '.tflite')}"
        path.write_bytes(mutate.apply(self.seed_bytes(spec["base"]), spec["ops"]))
        clf = Classifier.load(path, backend=spec.get("backend", "auto"), probe=spec.get("probe"))
        return self._predict_zero(clf)

    def manifest(self, spec: dict):
        from mnist_edge import Classifier

        folder = self.case_dir() / "artifacts"
        folder.mkdir()
        mode, key = spec["mode"], spec.get("key")
        meta = copy.deepcopy(self.export.data)  # the JSON to write (and maybe mutate)
        for entry in meta["files"]:
            src, dst = self.artifacts / entry["path"], folder / entry["path"]
            if mode != "json" and entry["key"] == key:
                data = mutate.apply(src.read_bytes(), spec["ops"])
                dst.write_bytes(data)
                if mode == "rehash":  # an export that was corrupted before its manifest was written
                    from mnist_edge.digest import sha256_hex

                    entry["size"], entry["sha256"] = len(data), sha256_hex(data)
            else:
                os.symlink(src, dst)
        text = json.dumps(meta).encode()
        if mode == "json":
            text = mutate.apply(text, spec["ops"])
        (folder / "manifest.json").write_bytes(text)
        clf = Classifier.load(folder, key=None if mode == "json" else key)
        return self._predict_zero(clf)

    @staticmethod
    def _predict_zero(clf):
        digit = np.zeros((2, 28, 28), np.uint8)
        digit[:, 8:20, 13:15] = 255  # a "1"
        p = clf.predict(digit).probabilities
        if p.shape != (2, 10):
            return "bad", f"loaded, but predict returned shape {p.shape}"
        return "ok", f"loaded and predicted ({clf.backend})"


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
            flat[idx] = special if special is not None else rng.choice([np.nan, np.inf, -np.inf, hi, lo], len(idx))
    elif dtype.kind == "b":
        x = rng.random(shape) > 0.5
    elif dtype.kind in "iu":
        top = min(hi, 255 if fill == "full" else 300)
        x = rng.integers(max(lo, 0 if fill == "full" else -300), top, size=shape, dtype=dtype, endpoint=True)
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


def run_case(worker: Worker, target: str, spec: dict) -> tuple[str, str]:
    """Outcome of one case: ok, error (a clear refusal) or bad (anything else)."""
    from mnist_edge import MnistEdgeError

    try:
        return getattr(worker, target)(spec)
    except MnistEdgeError as exc:
        return one_line(exc)
    except Exception as exc:
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        return "bad", f"{type(exc).__name__}: {str(exc)[:200]} at {Path(tb.filename).name}:{tb.lineno}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reliability.worker")
    p.add_argument("--artifacts", type=Path, required=True)
    p.add_argument("--corpus", type=Path, required=True)
    args = p.parse_args(argv)
    # answers go to a private copy of stdout; anything native code prints to fd 1 goes to stderr
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    worker = Worker(args.artifacts, args.corpus)
    try:
        for line in sys.stdin:
            case = json.loads(line)
            outcome, detail = run_case(worker, case["target"], case["spec"])
            proto.write(json.dumps({"outcome": outcome, "detail": detail,
                                    "contained": CONTAINED in detail}) + "\n")
    finally:
        shutil.rmtree(worker.scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
