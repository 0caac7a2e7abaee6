"""The "no digit" gate's part of the reader report: what it refuses and what it wrongly refuses.

    figures = measure(clf, digits, numbers_rows, cfg, tmp, log)   # None-free only with a gate
    figures["nondigits"]["crops"]["refusal_rate"], figures["targets"]

Non-digits come from ``common.nondigits`` with the HELDOUT settings (fonts, sizes, strokes,
rotations and photos training never drew) and this report's seed: as normalised 28x28 crops
through ``Classifier.predict(refuse=True)``, and as photo files (each raw picture at its own
size, half of them dark ink on light paper, saved as PNG) through ``predict_files``. Digits
wrongly refused: MNIST's test set through ``predict(refuse=True)``, the reader's single-digit
photos through ``predict_files``, and number photos through ``read`` (a number whose reading
loses digits or lines to the gate counts as refused; its exact rate with and without the gate).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from common import nondigits
from common import photo_score as score

# Targets (issue's table): met/missed in the report; the floors (common/floors.py) gate.
REFUSAL_GOAL = 0.90        # non-digits answered "no digit"
MNIST_FALSE_GOAL = 0.01    # MNIST test digits refused
PHOTO_FALSE_GOAL = 0.02    # single-digit photos refused
SEED_OFFSET = 17           # added to the report's seed: not the sets of training or verification


def has_gate(clf) -> bool:
    """Whether ``clf`` loaded a gate (the manifest lists one and the runtime runs it)."""
    return clf.gate is not None


def absent(clf) -> dict:
    """The section of a report made without a gate."""
    return {"present": False,
            "why": "the manifest lists no gate" if clf.manifest is None
            or not clf.manifest.data.get("gate") else "this runtime does not load the gate"}


def measure(clf, x_test: np.ndarray, numbers_rows: list[dict], images: Callable[[], list],
            n_nondigits: int, seed: int, tmp: Path, log: Callable[[str], None]) -> dict:
    """Every gate figure; ``numbers_rows`` are the number rows read without the gate, and
    ``images()`` gives those numbers' photos in the same order."""
    start = time.perf_counter()
    gate_seed = seed + SEED_OFFSET
    crops, kinds = nondigits.generate(n_nondigits, gate_seed, nondigits.HELDOUT, digits=x_test)
    refused = np.asarray(clf.predict(crops, refuse=True).refused, bool)
    photos = nondigit_photos(clf, n_nondigits, gate_seed, x_test, tmp)
    mnist = np.asarray(clf.predict(x_test, refuse=True).refused, bool)
    numbers = numbers_with_gate(clf, numbers_rows, images())
    out = {
        "present": True,
        "threshold": clf.threshold,
        "file": clf.gate.model.path.name,
        "nondigits": {"seed": gate_seed, "settings": nondigits.HELDOUT.name,
                      "crops": by_kind(refused, kinds), "photos": photos},
        "mnist_test": {"n": len(mnist), "refused": int(mnist.sum()),
                       "false_refusal_rate": score.rate(int(mnist.sum()), len(mnist))},
        "numbers": numbers,
    }
    log(f"  gate: {out['nondigits']['crops']['refusal_rate']:.1%} of {n_nondigits} non-digit "
        f"crops and {photos['refusal_rate']:.1%} of their photos refused, "
        f"{out['mnist_test']['false_refusal_rate']:.2%} of MNIST test digits "
        f"({time.perf_counter() - start:.0f} s)")
    return out


def by_kind(refused: np.ndarray, kinds: list[str]) -> dict:
    """The refusal rate overall and for each kind of non-digit."""
    kinds_arr = np.array(kinds)
    return {"n": len(refused), "refusal_rate": score.rate(int(refused.sum()), len(refused)),
            "by_kind": {k: {"n": int((kinds_arr == k).sum()),
                            "refusal_rate": score.rate(int(refused[kinds_arr == k].sum()),
                                                       int((kinds_arr == k).sum()))}
                        for k in nondigits.KINDS if (kinds_arr == k).any()}}


def nondigit_photos(clf, n: int, seed: int, x_test: np.ndarray, tmp: Path) -> dict:
    """``nondigits.photo_files`` through ``predict_files(refuse=True)``: refusals by kind."""
    paths, kinds = nondigits.photo_files(tmp / "nondigit-photos", n, seed, x_test)
    refused = np.array([r.no_digit is not None for r in clf.predict_files(paths, refuse=True)])
    for p in paths:
        p.unlink()
    return by_kind(refused, kinds)


def numbers_with_gate(clf, rows: list[dict], images: list[np.ndarray]) -> dict:
    """Read the number photos again with the gate; a number counts as refused when the gate
    leaves any of its lines or digits out (fewer digits than without it, or nothing read)."""
    refused = exact = 0
    for row, image in zip(rows, images, strict=True):
        try:
            reading = clf.read(image, refuse=True)
            got = reading.number
        except Exception:  # counted as refused and wrong, as read's errors are counted
            got = None
        before = (row["read"] or "").replace("\n", "")
        after = (got or "").replace("\n", "")
        refused += bool(before) and len(after) < len(before)
        exact += score.compare(row["truth"], got)["exact"]
    n = len(rows)
    return {"n": n, "refused": refused, "refused_rate": score.rate(refused, n),
            "exact_rate_without_gate": score.rate(sum(r["exact"] for r in rows), n),
            "exact_rate_with_gate": score.rate(exact, n)}


def singles_refused(results) -> int:
    """Single-digit photos ``predict_files(refuse=True)`` answered "no digit"."""
    return sum(getattr(r, "no_digit", None) is not None for r in results)


def targets(gate: dict, singles: dict) -> list[dict]:
    """The gate's targets with their values and whether each is met."""
    rows = [("non-digits refused (held-out crops)", gate["nondigits"]["crops"]["refusal_rate"],
             REFUSAL_GOAL, True),
            ("non-digits refused (held-out photo files)",
             gate["nondigits"]["photos"]["refusal_rate"], REFUSAL_GOAL, True),
            ("MNIST test digits wrongly refused", gate["mnist_test"]["false_refusal_rate"],
             MNIST_FALSE_GOAL, False),
            ("digit photos wrongly refused", singles.get("gate_false_refusal_rate"),
             PHOTO_FALSE_GOAL, False)]
    return [{"target": name, "value": value, "goal": f"{'>=' if at_least else '<='} {goal:.0%}",
             "met": None if value is None else value >= goal if at_least else value <= goal}
            for name, value, goal, at_least in rows]
