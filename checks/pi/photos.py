"""The photo path on the devices: number photos read and single-digit photos classified, with
the same answers as the host.

The photos are the reader report's (common/photos.py), from MNIST test digits: touching
digits, thin and broken strokes, slant, uneven light, JPEG. They run through the int8 TFLite
file on each target's TFLite backend (Debian's Pillow and numpy on 32-bit Pi OS) and on the same
backend on the host; boxes and labels must be identical, confidences within a few int8 steps.
When the export holds the "no digit" gate, the photo path runs it: photos of generated non-digits
(held-out settings) join the set, and what the gate refuses must be what it refuses on the host.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from checks.pi.compare import Row
from common import nondigits
from mnist_edge.formats import TFLITE_INT8

PHOTO_KEY = TFLITE_INT8.key  # the file the photo path runs on
NUMBERS = 12               # number photos per run (each read is ~40x slower under qemu)
SINGLES = 12               # single thin/broken digit photos
NONDIGITS = 12             # photos of generated non-digits (the gate refuses most of them)
SEED = 4321
CONFIDENCE_DIFF = 0.05     # confidences may differ by this much (a few int8 output steps)


@dataclass(frozen=True)
class PhotoSet:
    """The photo files and what they show."""

    numbers: list[str]
    singles: list[str]
    truths: list[str]          # the numbers' truths
    labels: list[int]          # the single digits' labels
    nondigits: tuple[str, ...] = ()  # photos of non-digits: right when answered "no digit"


def write_photos(folder: Path, x: np.ndarray, y: np.ndarray) -> PhotoSet:
    """Render the photos from MNIST test digits into ``folder``."""
    from common import photos as sets

    folder.mkdir(parents=True, exist_ok=True)
    digits = sets.Digits(x, y, "test")
    numbers = [sets.number_sample(digits, SEED, i) for i in range(NUMBERS)]
    singles = [sets.single_sample(digits, SEED, i) for i in range(SINGLES)]
    others, _ = nondigits.photo_files(folder, NONDIGITS, SEED, x)
    return PhotoSet([str(s.write(folder / f"number-{i:03d}")) for i, s in enumerate(numbers)],
                    [str(s.write(folder / f"digit-{i:03d}")) for i, s in enumerate(singles)],
                    [s.truth for s in numbers], [int(s.truth) for s in singles],
                    tuple(str(p) for p in others))


def job(manifest: Path, backend: str, photos: PhotoSet) -> dict:
    """The worker job (checks/worker.py ``read``) for one backend."""
    return {"job": "read", "manifest": str(manifest), "key": PHOTO_KEY, "backend": backend,
            "numbers": photos.numbers, "singles": photos.singles,
            "nondigits": list(photos.nondigits)}


def compare_photos(target: str, backend: str, device: dict, host: dict,
                   photos: PhotoSet) -> Row:
    """One report row: the device's answers against the host's, and both against the truth."""
    n = len(photos.numbers) + len(photos.singles) + len(photos.nondigits)
    row = Row(target, "photos", backend, 0, n)
    if device.get("error") or host.get("error"):
        row.failures.append(f"photo path: {device.get('error') or 'host: ' + host['error']}")
        return row
    row.images = (len(device["numbers"]) + len(device["singles"])
                  + len(device.get("nondigits", ())))
    same = sum(_same_reading(d, h) for d, h in zip(device["numbers"], host["numbers"],
                                                   strict=True))
    for part in ("singles", "nondigits"):
        same += sum(d == h for d, h in zip(device.get(part, ()), host.get(part, ()),
                                           strict=True))
    row.agreement = same / n
    row.accuracy = _right(device, photos) / n
    row.host_accuracy = _right(host, photos) / n
    row.ms_per_image = 1000 * device["seconds"] / n
    row.host_ms_per_image = 1000 * host["seconds"] / n
    if same < n:
        row.failures.append(f"photo path: {n - same} of {n} photos answered differently from "
                            "the host")
    # a photo that fails on both sides agrees, but the photo path is broken all the same
    for side, answers in (("device", device), ("host", host)):
        errors = [f"{Path(path).name}: {answer[1]}" for path, answer
                  in zip(photos.singles, answers["singles"], strict=True) if answer[1]]
        if errors:
            row.failures.append(f"photo path: {len(errors)} of {len(photos.singles)} digit "
                                f"photos gave an error on the {side}, e.g. {errors[0]}")
    row.notes.append(f"{len(photos.numbers)} number photos read and {len(photos.singles)} "
                     "single thin/broken digit photos classified; accuracy is exact numbers "
                     "and right digits" + (f", and {len(photos.nondigits)} non-digit photos "
                                           "answered \"no digit\"" if photos.nondigits else ""))
    return row


def _same_reading(device: dict, host: dict) -> bool:
    """The same number, boxes and labels; confidences within CONFIDENCE_DIFF."""
    if device["number"] != host["number"] or len(device["digits"]) != len(host["digits"]) \
            or device.get("refused") != host.get("refused"):
        return False
    return all(d[:5] == h[:5] and abs(d[5] - h[5]) <= CONFIDENCE_DIFF
               for d, h in zip(device["digits"], host["digits"], strict=True))


def _right(answers: dict, photos: PhotoSet) -> int:
    numbers = sum(r["number"] == t for r, t in zip(answers["numbers"], photos.truths,
                                                   strict=True))
    singles = sum(a[0] == want for a, want in zip(answers["singles"], photos.labels, strict=True))
    refused = sum(bool(a[2]) for a in answers.get("nondigits", ()))
    return numbers + singles + refused
