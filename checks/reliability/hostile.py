"""Fuzz classes beyond bad bytes: environment, file system, decoders, resources, API, consistency.

For each target, ``random_spec`` draws a case and ``build_case`` makes what it needs on disk (odd
names, FIFOs, sockets, symlinks in and out of folders, an image in any format Pillow writes); the
worker runs it (cases.py). The class of every fuzz target, for the report, is in ``CLASSES``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np

from checks.reliability import untrusted, video
from common.artifacts import MANIFEST_FILE
from mnist_edge.digest import sha256_hex

CLASSES = {"arrays": "inputs", "images": "inputs", "cli": "inputs", "model": "model files",
           "manifest": "model files", "model-tflite-runtime": "model files",
           "environment": "environment", "filesystem": "file system", "decoders": "decoders",
           "resources": "resource flags", "api": "API misuse", "consistency": "consistency",
           "headers": "crafted decoder headers", **untrusted.CLASSES, **video.CLASSES}
NAMES = ("plain.png", "with space.png", "ünïcödé.png", "tab\there.png", "new\nline.png",
         "x" * 200 + ".png", os.fsdecode(b"latin1-\xe9.png"))
LOCALES = ("C", "C.UTF-8", "en_US.UTF-8", "POSIX", "xx_XX.bogus")
STDOUTS = ("devnull", "devnull", "closed", "full", "broken")
SCENES = ("fifo", "devnull", "devzero", "socket", "dangling", "loop", "link-out", "macos",
          "odd-name", "model-devzero", "manifest-devzero", "entry-outside", "empty-folder")
# formats Pillow writes, each from an image mode it accepts
WRITABLE = {"PNG": "L", "JPEG": "L", "BMP": "L", "GIF": "L", "TIFF": "L", "WEBP": "RGB",
            "PPM": "L", "ICO": "RGBA", "PCX": "L", "TGA": "L", "SGI": "L", "IM": "L",
            "SPIDER": "F", "XBM": "1", "EPS": "L", "PDF": "L", "MSP": "1", "DDS": "RGBA",
            "BLP": "RGBA", "JPEG2000": "L", "QOI": "RGBA"}
SUFFIXES = (".png", ".jpg", ".bmp", ".gif", ".tif", ".webp", ".ppm", ".pgm", ".jpeg", "")
THREADS = (-1, 0, 1, 2, 3, 64, 65, 1000, 10**9, "2", 2.5, None, True, "abc")
TOP_K = (-1, 0, 1, 3, 10, 11, 10**9, "2", None, 2.5)
API_CALLS = ("load-path", "load-backend", "load-threads", "load-key", "load-probe",
             "load-prefer", "predict", "predict_files", "preprocess_image", "top_k")
API_VALUES = ("none", "int", "negative", "float", "nan", "bool", "empty-str", "missing", "text",
              "bytes", "dict", "set", "list-none", "list-str", "tuple", "object", "folder",
              "huge", "array-object", "array-str", "generator")


def random_spec(target: str, rng: np.random.Generator) -> dict:
    """A random case of one of the hostile targets."""
    pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
    if target == "environment":
        env = {"LC_ALL": pick(LOCALES), "LANG": pick(LOCALES)}
        for var, values in (("PYTHONIOENCODING", ("ascii", "latin-1", "utf-8")),
                            ("HOME", ("/nonexistent",)), ("MNIST_EDGE_CACHE", ("/proc/1",)),
                            ("TMPDIR", ("/nonexistent",)), ("PYTHONUTF8", ("0", "1"))):
            if rng.random() < 0.3:
                env[var] = pick(values)
        return {"name": pick(NAMES), "base": pick(("digit.png", "digit.jpg", "digits.npy")),
                "args": pick(([], ["--json"], ["--top-k", "3"])), "env": env,
                "stdout": pick(STDOUTS)}
    if target == "filesystem":
        return {"scene": pick(SCENES), "name": pick(NAMES)}
    if target == "decoders":
        return {"fmt": pick(sorted(WRITABLE)), "suffix": pick(SUFFIXES),
                "seed": int(rng.integers(1 << 30))}
    if target == "resources":
        return {"threads": pick(THREADS), "top_k": pick(TOP_K), "via": pick(("api", "cli")),
                "n": pick((0, 1, 31, 32, 33, 257, 2000))}
    if target == "api":
        return {"call": pick(API_CALLS), "kind": pick(API_VALUES)}
    if target == "consistency":
        return {"kind": pick(("noise", "blank", "flat", "sparse")), "n": pick((1, 3, 33, 100)),
                "seed": int(rng.integers(1 << 30))}
    raise ValueError(f"unknown fuzz target {target!r}")


def build_case(target: str, spec: dict, scratch: Path, artifacts: Path, corpus: Path) -> dict:
    """The worker job's arguments for one case, after making its files in ``scratch``."""
    if target == "environment":
        path = scratch / (spec["name"] if spec["base"] != "digits.npy" else "digits.npy")
        shutil.copyfile(corpus / spec["base"], path)
        return {"target": target, "artifacts": str(artifacts), "inputs": [str(path)],
                "args": spec["args"], "env": spec["env"], "stdout": spec["stdout"]}
    if target == "filesystem":
        return {"target": target, "artifacts": str(artifacts),
                **_scene(spec["scene"], spec["name"], scratch, artifacts, corpus)}
    if target == "decoders":
        return _decoder_case(spec, scratch, artifacts, corpus)
    if target in ("resources", "api", "consistency"):
        return {"target": target, "artifacts": str(artifacts), **spec}
    raise ValueError(f"unknown fuzz target {target!r}")


def _scene(scene: str, name: str, scratch: Path, artifacts: Path, corpus: Path) -> dict:
    """Files for one file-system case: the CLI's inputs, or a model folder to load."""
    digit = corpus / "digit.png"
    if scene == "fifo":
        os.mkfifo(scratch / "pipe.png")
        return {"inputs": [str(scratch / "pipe.png")]}
    if scene == "devnull":
        return {"inputs": ["/dev/null"]}
    if scene == "devzero":
        (scratch / "zero.png").symlink_to("/dev/zero")
        return {"inputs": [str(scratch / "zero.png")]}
    if scene == "socket":
        with contextlib.closing(socket.socket(socket.AF_UNIX)) as sock:
            sock.bind(str(scratch / "sock.png"))
        return {"inputs": [str(scratch / "sock.png")]}
    if scene == "dangling":
        (scratch / "gone.png").symlink_to(scratch / "nothing-here.png")
        return {"inputs": [str(scratch / "gone.png")]}
    if scene in ("loop", "link-out", "macos", "empty-folder"):
        folder = scratch / "in"
        folder.mkdir()
        if scene != "empty-folder":
            shutil.copyfile(digit, folder / name)
        if scene == "loop":
            (folder / "again").symlink_to(folder)
        elif scene == "link-out":
            outside = scratch / "out"
            outside.mkdir()
            shutil.copyfile(digit, outside / "d.png")
            (folder / "elsewhere").symlink_to(outside)
        elif scene == "macos":
            (folder / f"._{name}").write_bytes(b"\x00\x05\x16\x07" + bytes(60))  # AppleDouble
            (folder / "__MACOSX").mkdir()
            (folder / "__MACOSX" / "x.png").write_bytes(b"\x00\x05\x16\x07" + bytes(60))
        return {"inputs": [str(folder)]}
    if scene == "odd-name":
        shutil.copyfile(digit, scratch / name)
        return {"inputs": [str(scratch / name)]}
    return {"inputs": [], "folder": str(_hostile_export(scene, scratch, artifacts)),
            "refuse": True}


def _hostile_export(scene: str, scratch: Path, artifacts: Path) -> Path:
    """A copy of the export with a special file or a way out of the folder in it."""
    folder = scratch / "artifacts"
    folder.mkdir()
    meta = json.loads((artifacts / MANIFEST_FILE).read_text())
    first = meta["files"][0]
    for entry in meta["files"]:
        link_or_copy(artifacts / entry["path"], folder / entry["path"])
    if scene == "model-devzero":
        (folder / first["path"]).unlink()
        (folder / first["path"]).symlink_to("/dev/zero")
    elif scene == "entry-outside":  # an entry (rehashed) that is a symlink out of the folder
        outside = scratch / "elsewhere.tflite"
        shutil.copyfile(artifacts / first["path"], outside)
        first["path"] = "escape.tflite"
        (folder / "escape.tflite").symlink_to(outside)
        first["size"], first["sha256"] = outside.stat().st_size, sha256_hex(outside.read_bytes())
    text = json.dumps(meta)
    if scene == "manifest-devzero":
        (folder / MANIFEST_FILE).symlink_to("/dev/zero")
    else:
        (folder / MANIFEST_FILE).write_text(text)
    return folder


def link_or_copy(src: Path, dst: Path) -> None:
    """``dst`` as a hard link to ``src`` (a symlink would lead out of the folder), else a copy."""
    try:
        os.link(src, dst)
    except OSError:  # another file system
        shutil.copyfile(src, dst)


def _decoder_case(spec: dict, scratch: Path, artifacts: Path, corpus: Path) -> dict:
    """One MNIST digit saved in format ``fmt`` under a name with any suffix."""
    from PIL import Image

    from mnist_edge import images

    digit = Image.open(corpus / "digit.png").convert("L").resize((56, 56))
    mode = WRITABLE[spec["fmt"]]
    img = digit.convert(mode) if mode != "F" else digit.convert("F")
    path = scratch / f"case{spec['suffix']}"
    try:
        img.save(path, format=spec["fmt"])
    except Exception:  # this Pillow cannot write the format: fall back to PNG bytes
        img.convert("L").save(path, format="PNG")
        spec = {**spec, "fmt": "PNG"}
    supported = spec["fmt"] in images.SUPPORTED_FORMATS
    return {"target": "decoders", "artifacts": str(artifacts), "path": str(path),
            "fmt": spec["fmt"], "supported": supported}
