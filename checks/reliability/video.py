"""Fuzz class "video files": damaged, cut short and disguised videos read to their end.

The seeds are one short clip (common/videos.py: the page, a number, the page again) in small
frames, written by OpenCV in several containers and codecs (SEEDS). ``random_spec`` draws a case:
a seed with mutated bytes (mutate.py: flipped, overwritten, inserted, deleted, garbage appended),
cut at a random point, its headers and index damaged, a huge or zero frame size declared, an
empty file or random bytes under a video name, or one container's bytes (or an image's) under
another's suffix. ``build_case`` writes the file; the worker reads it to the end through
``Classifier.watch`` (every frame or every k-th) or ``mnist-edge read --video`` (cases.video).
A case that takes longer than fuzz.SHORT_TIMEOUT_S is a hang.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from checks.reliability import mutate

CLASSES = {"video": "video files"}
# seed file -> the FourCC OpenCV writes it with (every one read back by OpenCV's FFmpeg)
SEEDS = {"video-mp4v.mp4": "mp4v", "video-mjpg.avi": "MJPG", "video-ffv1.mkv": "FFV1",
         "video-xvid.avi": "XVID"}
SIZE = (160, 120)  # frame width, height: small, so that a case reads in about 0.1 s
FPS = 10
NUMBER, SEED = "47", 7
KINDS = ("mutate", "mutate", "mutate", "truncate", "truncate", "index", "dims", "empty", "junk",
         "swap")
SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".mjpeg", "")
OTHER_BASES = ("digit.png", "photo.jpg", "digits.npy")  # from the image corpus
DIMS = (*mutate.HUGE_DIMS, (65_535, 65_535), (255, 255), (1, 1), (161, 121))
CLI_ARGS: tuple[list[str], ...] = ([], ["--json"], ["--every", "2"], ["--every", "3", "--json"],
                                   ["--stable", "1"])


def scenes() -> list:
    """The seed clip: the empty page, the number, the empty page again (15 frames; the last page
    is long enough for a noise frame read as a mark not to hide its change)."""
    from common.videos import Scene

    return [Scene("", 3), Scene(NUMBER, 6), Scene("", 6)]


def build_seeds(folder: Path, digits, artifacts: Path):
    """Write SEEDS into ``folder``: the clip of ``scenes()`` with digits of the split ``digits``
    that the model at ``artifacts`` labels right; returns the Clip (its ``changes`` are the
    truth)."""
    from common import videos
    from mnist_edge import Classifier

    known = np.nonzero(Classifier.load(artifacts).predict(digits.x[:2000]).labels
                       == digits.y[:2000])[0]
    clip = videos.clip(digits, scenes(), seed=SEED, size=SIZE, pool=known)
    folder.mkdir(parents=True, exist_ok=True)
    for name, codec in SEEDS.items():
        videos.write_video(clip, folder / name, fps=FPS, codec=codec)
    return clip


def random_spec(rng: np.random.Generator, random_ops: Callable[..., list],
                kind: str | None = None) -> dict:
    """One case (of ``kind``, else a random one); ``random_ops`` draws byte mutations
    (fuzz.random_ops)."""
    pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
    kind = kind or pick(KINDS)
    base = pick(sorted(SEEDS))
    suffix, ops = Path(base).suffix, []
    if kind == "mutate":
        ops = random_ops(rng, image=True)
        for _ in range(int(rng.integers(0, 3))):
            ops.insert(int(rng.integers(len(ops) + 1)),
                       ["insert", float(rng.random()), int(pick((1, 4, 100, 3000))),
                        int(rng.integers(1 << 30))] if rng.random() < 0.5
                       else ["delete", float(rng.random()), int(pick((1, 4, 100, 3000)))])
    elif kind == "truncate":
        ops = [["truncate", float(rng.random())]]
    elif kind == "index":  # the headers at the start and the index at the end (MP4's moov)
        ops = [["set", float(rng.random() * 0.05 if rng.random() < 0.5
                             else 1 - rng.random() * 0.05),
                int(pick((0, 0xFF, 0x7F, 0x80, int(rng.integers(256)))))]
               for _ in range(int(rng.integers(1, 9)))]
    elif kind == "dims":
        ops = [["dims", *pick(DIMS)]]
    elif kind == "empty":
        ops, suffix = [["empty"]], pick(SUFFIXES)
    elif kind == "junk":
        ops = [["random", int(pick((1, 16, 4096, 200_000))), int(rng.integers(1 << 30))]]
        suffix = pick(SUFFIXES)
    else:  # swap: a seed or an image under another suffix
        base = pick(sorted(SEEDS) + list(OTHER_BASES))
        suffix = pick([s for s in SUFFIXES if s != Path(base).suffix])
    spec = {"kind": kind, "base": base, "ops": ops, "suffix": suffix}
    if rng.random() < 0.3:
        return {**spec, "via": "cli", "args": list(pick(CLI_ARGS))}
    return {**spec, "via": "api", "every": int(pick((1, 1, 2, 3)))}


def build_case(spec: dict, scratch: Path, artifacts: Path, corpus: Path) -> dict:
    """The worker job for one case, after writing its file in ``scratch``."""
    path = scratch / f"case{spec['suffix']}"
    path.write_bytes(mutate.apply((corpus / spec["base"]).read_bytes(), spec["ops"]))
    return {"target": "video", "artifacts": str(artifacts), "path": str(path),
            "via": spec["via"], "every": spec.get("every", 1), "args": spec.get("args", [])}
