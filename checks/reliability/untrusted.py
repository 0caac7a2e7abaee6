"""Fuzz classes for what the CLI writes, walks and prints: crops targets, walk targets, output
forging.

For each target ``random_spec`` draws a case and ``build_case`` makes it on disk: a --crops folder
with links, files, folders and pipes planted at the names crops get; a folder tree with links in,
out, up, around and to /; files whose names carry tabs, newlines and terminal escapes. The worker
runs the CLI on it and judges what changed on disk and what was printed (cases.py).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

CLASSES = {"crops": "crops targets", "walk": "walk targets", "forging": "output forging"}
STEMS = ("photo", "a b", "ünï", "x" * 70, "digit")
# what a crop name may already be when the crops are written
HAZARDS = ("link-victim", "link-dangling", "link-folder", "link-input", "link-devnull", "file",
           "folder", "fifo", "link-chain")
CROPS_AT = ("separate", "inside", "nested", "missing")
# the links a walked tree may hold: where each points
LINK_TARGETS = ("inside-sibling", "inside-sub", "self", "parent", "outside", "outside-file",
                "root", "dangling", "chain-out", "relative-up", "tmp")
# pieces of hostile file names
PIECES = ("a", ".png", "\t", "\n", "\r", "\x1b[2J", "\x1b]0;title\x07", "\x1b[31m", "\x85",
          "\u2028", "\x7f", "\x08", "9", "0.9999", "forged.png", " ", "\\t", "ü",
          os.fsdecode(b"\xe9"), "mnist-edge: ")


def random_spec(target: str, rng: np.random.Generator) -> dict:
    """A random case of one of this module's targets."""
    pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
    if target == "crops":
        stems = sorted({pick(STEMS) for _ in range(int(rng.integers(1, 3)))})
        hazards = [{"kind": pick(HAZARDS), "input": int(rng.integers(len(stems))),
                    "digit": int(rng.integers(3)), "again": int(rng.integers(3))}
                   for _ in range(int(rng.integers(0, 4)))]
        return {"stems": stems, "hazards": hazards, "at": pick(CROPS_AT),
                "as_folder": bool(rng.random() < 0.5), "runs": 2 if rng.random() < 0.25 else 1,
                "json": bool(rng.random() < 0.3)}
    if target == "walk":
        links = [{"where": pick(("", "sub", "sub/deeper", "other")), "to": pick(LINK_TARGETS)}
                 for _ in range(int(rng.integers(1, 6)))]
        return {"links": links, "images": [pick(("", "sub", "sub/deeper", "other"))
                                           for _ in range(int(rng.integers(0, 4)))],
                "command": pick(("predict", "predict", "read"))}
    if target == "forging":
        names = ["".join(pick(PIECES) for _ in range(int(rng.integers(1, 7))))
                 for _ in range(int(rng.integers(1, 4)))]
        kinds = [pick(("image", "image", "garbage", "npy")) for _ in names]
        command = pick(("predict", "predict", "read"))
        args = pick(([], ["--json"], ["--top-k", "3"])) if command == "predict" else \
            pick(([], ["--json"]))
        return {"names": names, "kinds": kinds, "command": command, "args": args,
                "as_folder": bool(rng.random() < 0.5)}
    raise ValueError(f"unknown fuzz target {target!r}")


def build_case(target: str, spec: dict, scratch: Path, artifacts: Path, corpus: Path) -> dict:
    """The worker job's arguments for one case, after making its files in ``scratch``."""
    if target == "crops":
        return _crops_case(spec, scratch, artifacts, corpus)
    if target == "walk":
        return _walk_case(spec, scratch, artifacts, corpus)
    if target == "forging":
        return _forging_case(spec, scratch, artifacts, corpus)
    raise ValueError(f"unknown fuzz target {target!r}")


def _victims(scratch: Path) -> Path:
    """A folder outside the ones the CLI is given, holding files a crop must never touch."""
    outside = scratch / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_bytes(b"the user's own file\n")
    (outside / "folder").mkdir()
    return outside


def _crops_case(spec: dict, scratch: Path, artifacts: Path, corpus: Path) -> dict:
    """Inputs to read, and a crops folder with something planted at the names crops get."""
    outside = _victims(scratch)
    photos = scratch / "in"
    photos.mkdir()
    inputs = []
    for stem in spec["stems"]:
        shutil.copyfile(corpus / "photo.png", photos / f"{stem}.png")
        inputs.append(photos / f"{stem}.png")
    crops = {"separate": scratch / "crops", "inside": photos / "crops",
             "nested": photos / "sub" / "crops", "missing": scratch / "new" / "a" / "crops"
             }[spec["at"]]
    if spec["at"] != "missing":
        crops.mkdir(parents=True)
    for h in spec["hazards"] if spec["at"] != "missing" else []:
        stem = spec["stems"][h["input"]][:60]
        n = h["input"] if not spec["as_folder"] else sorted(spec["stems"]).index(
            spec["stems"][h["input"]])
        again = f"~{h['again']}" if h["again"] > 1 else ""
        for label in range(10):  # whatever digit the reader sees, its name is taken
            _plant(h["kind"], crops / f"{n:05d}-{stem}-{h['digit']}-{label}{again}.png",
                   outside, inputs[h["input"]], label)
    args = [str(photos)] if spec["as_folder"] else [str(p) for p in inputs]
    return {"target": "crops", "artifacts": str(artifacts), "inputs": args,
            "crops": str(crops), "scratch": str(scratch), "runs": spec["runs"],
            "as_json": spec["json"], "images": len(inputs)}


def _plant(kind: str, path: Path, outside: Path, image: Path, label: int) -> None:
    """Make ``path`` what a careless user or an attacker left there (the first of two)."""
    if os.path.lexists(path):
        return
    if kind == "link-victim":
        path.symlink_to(outside / "victim.txt")
    elif kind == "link-dangling":  # creating through it would make a file outside
        path.symlink_to(outside / f"created-{label}.png")
    elif kind == "link-folder":
        path.symlink_to(outside / "folder")
    elif kind == "link-input":  # writing through it would overwrite the photo being read
        path.symlink_to(image)
    elif kind == "link-devnull":
        path.symlink_to("/dev/null")
    elif kind == "file":
        path.write_bytes(b"an earlier run's crop, or the user's own file\n")
    elif kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    else:  # a link to a link out
        (path.parent / f".chain-{path.name}").symlink_to(outside / "victim.txt")
        path.symlink_to(path.parent / f".chain-{path.name}")


def _walk_case(spec: dict, scratch: Path, artifacts: Path, corpus: Path) -> dict:
    """A folder tree with images and links pointing anywhere."""
    outside = _victims(scratch)
    shutil.copyfile(corpus / "digit.png", outside / "outside.png")
    top = scratch / "in"
    for sub in ("sub/deeper", "other"):
        (top / sub).mkdir(parents=True, exist_ok=True)
    for i, where in enumerate(spec["images"]):
        shutil.copyfile(corpus / "digit.png", top / where / f"img{i}.png")
    for i, link in enumerate(spec["links"]):
        here = top / link["where"]
        target = {"inside-sibling": top / "other", "inside-sub": top / "sub" / "deeper",
                  "self": here, "parent": here.parent, "outside": outside,
                  "outside-file": outside / "outside.png", "root": Path("/"),
                  "dangling": scratch / "nothing-here", "tmp": scratch.parent,
                  "relative-up": Path(*([".."] * (len(Path(link["where"]).parts) + 1))),
                  "chain-out": here / f"chain{i}"}[link["to"]]
        name = f"link{i}" + (".png" if link["to"] == "outside-file" else "")
        if link["to"] == "chain-out":
            (here / f"chain{i}").symlink_to(outside)
        (here / name).symlink_to(target)
    return {"target": "walk", "artifacts": str(artifacts), "folder": str(top),
            "command": spec["command"]}


def _forging_case(spec: dict, scratch: Path, artifacts: Path, corpus: Path) -> dict:
    """Files whose names carry tabs, newlines, terminal escapes and fake result lines."""
    folder = scratch / "in"
    folder.mkdir()
    names, kinds = [], []
    for i, (name, kind) in enumerate(zip(spec["names"], spec["kinds"], strict=True)):
        name = name.replace("/", "_").replace("\0", "_")
        suffix = ".npy" if kind == "npy" else ".png"
        path = folder / f"{i}{name}{suffix}"  # the index keeps the names apart
        if kind == "image":
            shutil.copyfile(corpus / "photo.png", path)
        elif kind == "npy":
            shutil.copyfile(corpus / "digits.npy", path)
        else:
            path.write_bytes(b"not an image\n")
        names.append(str(path))
        kinds.append(kind)
    return {"target": "forging", "artifacts": str(artifacts), "names": names, "kinds": kinds,
            "command": spec["command"], "args": spec["args"],
            "inputs": [str(folder)] if spec["as_folder"] else names}
