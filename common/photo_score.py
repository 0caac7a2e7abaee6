"""Readings of photos scored against their truth: numbers by edits, digits by label, both broken
down by the photos' tags (common/photos.py).

    from common import photo_score as score
    score.compare("4071", "4011")             # exact, length error, edit distance, ...
    score.by_tag(tags, {"exact_rate": (exact, ones)})  # per tag value: n and each rate
    r = score.read_photos(clf, samples, digits, folder)  # one-digit photos against the truth
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.photos import Digits, Sample, value_order


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: insertions, deletions and substitutions turning a into b."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def matched(truth: str, read: str) -> list[bool]:
    """For each digit read, whether an optimal alignment (least edits) pairs it with the same
    digit of the truth."""
    n, m = len(truth), len(read)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        for j in range(m + 1):
            cost[i][j] = (i + j if i == 0 or j == 0 else
                          min(cost[i - 1][j] + 1, cost[i][j - 1] + 1,
                              cost[i - 1][j - 1] + (truth[i - 1] != read[j - 1])))
    ok = [False] * m
    i, j = n, m
    while i > 0 and j > 0:
        if cost[i][j] == cost[i - 1][j - 1] + (truth[i - 1] != read[j - 1]):
            ok[j - 1] = truth[i - 1] == read[j - 1]
            i, j = i - 1, j - 1
        elif cost[i][j] == cost[i][j - 1] + 1:
            j -= 1
        else:
            i -= 1
    return ok


def compare(truth: str, read: str | None) -> dict:
    """One number's scores: exact, digits right position by position (when the lengths match),
    length error and edit distance, on the digits with line breaks removed."""
    t = truth.replace("\n", "")
    r = (read or "").replace("\n", "")
    same = len(t) == len(r)
    return {"exact": read == truth, "same_length": same,
            "length_error": len(r) - len(t),
            "right_in_place": sum(a == b for a, b in zip(t, r, strict=True)) if same else None,
            "distance": edit_distance(t, r), "digits": len(t),
            "lines_right": read is not None and read.count("\n") == truth.count("\n")}


def rate(k: float, n: float) -> float | None:
    """k / n rounded, or None when n is 0."""
    return round(k / n, 6) if n else None


def by_tag(tags: list[dict[str, str]], rates: dict[str, tuple[np.ndarray, np.ndarray]]
           ) -> dict[str, dict[str, dict]]:
    """For each tag and value (in ``value_order``): the photos holding it, and each rate as the
    sum of its hits over the sum of its totals on them (``rates``: name -> (hits, totals))."""
    out: dict[str, dict[str, dict]] = {}
    for key in tags[0] if tags else []:
        out[key] = {}
        for v in sorted({t[key] for t in tags}, key=value_order):
            idx = np.array([t[key] == v for t in tags])
            out[key][v] = {"n": int(idx.sum()),
                           **{name: rate(int(hits[idx].sum()), int(totals[idx].sum()))
                              for name, (hits, totals) in rates.items()}}
    return out


def shares(tags: list[dict[str, str]]) -> dict[str, dict[str, float]]:
    """For each tag, the share of samples holding each value (values sorted)."""
    return {k: {v: round(row["n"] / len(tags), 6) for v, row in values.items()}
            for k, values in by_tag(tags, {}).items()}


def plain_resize(path: Path) -> np.ndarray:
    """The naive baseline: grayscale, resize to 28x28, nothing else (uint8 [28,28])."""
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("L").resize((28, 28), Image.Resampling.BILINEAR))


@dataclass(frozen=True)
class PhotoReadings:
    """One-digit photos read three ways, against their labels: per photo, right or not."""

    labels: np.ndarray               # the truth
    photos: np.ndarray               # read from the file by ``predict_files``
    clean: np.ndarray                # the MNIST digit itself, through ``predict``
    resize: np.ndarray               # the file after ``plain_resize``, through ``predict``
    errors: list[tuple[str, str]]    # (file, error) of the photos that got no label
    seconds: float                   # in ``predict_files``


def read_photos(clf: Any, samples: Sequence[Sample], digits: Digits,
                folder: Path) -> PhotoReadings:
    """Save one-digit photos into ``folder`` and read them with ``clf`` (a Classifier): from the
    files, as the clean MNIST digits they were drawn from, and after a plain resize."""
    paths = [s.write(folder / f"{i:05d}") for i, s in enumerate(samples)]
    sources = [s.glyphs[0].source for s in samples]
    labels = digits.y[sources].astype(np.int64)
    start = time.perf_counter()
    results = clf.predict_files(paths)
    seconds = time.perf_counter() - start
    got = np.array([r.label if r.ok else -1 for r in results])
    resize = clf.predict(np.stack([plain_resize(p) for p in paths])).labels
    return PhotoReadings(labels, got == labels, clf.predict(digits.x[sources]).labels == labels,
                         resize == labels, [(str(r.path), r.error) for r in results if not r.ok],
                         seconds)
