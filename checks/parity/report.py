"""reports/parity.md (the table people read: checks/templates/parity.md.j2), parity.json (the
same for machines), parity.png.

Each is written to a temporary file beside it and renamed into place.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import numpy as np

from checks import reports
from common.artifacts import GATE_FILE, READER_FILE
from common.formats import GATE_FORMATS, READER_FORMATS, get_format

MAX_THUMBNAILS = 60   # digits drawn in parity.png (the ones most pairs get wrong first)
MAX_INDICES_MD = 40   # disagreeing image indices listed per pair in parity.md
                      # (all are in the JSON)
COLUMNS = 8           # thumbnails per row


def write_reports(result, out: Path) -> dict[str, Path]:
    """Write parity.md, parity.json and parity.png into ``out``; returns their paths."""
    data = to_json(result)
    rules = {key: get_format(key).tolerance.rule() for key in data["tolerances"]}
    return reports.write(out, "parity", data, lambda p: draw(result, p), rules=rules,
                         worst_class=_worst_class, max_indices=MAX_INDICES_MD)


def _r(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(float(x), digits)


def to_json(result) -> dict:
    """Everything in the table, plus every disagreeing index and the tolerances."""
    return {
        "schema_version": 1,
        "created_utc": result.created_utc,
        "artifacts": str(result.config.artifacts),
        "source_model": result.source_model,
        "data": result.data_source,
        "dataset": result.dataset,
        "test_images": result.n_images,
        # every backend on every test image: the run the regression floors hold (common/floors.py)
        "full_run": result.config.limit is None and result.config.backends == "all",
        "tolerances": {key: asdict(get_format(key).tolerance) for key in result.format_keys()},
        "keras": {"accuracy": _r(result.keras_accuracy),
                  "per_class_accuracy": [_r(a) for a in result.keras_per_class]},
        "pairs": [{
            **_pair(r),
            "accuracy": _r(r.accuracy), "accuracy_delta_vs_keras": _r(r.accuracy_delta),
            "agreement_with_keras": _r(r.agreement),
            "max_abs_prob_diff": None if r.max_abs_prob_diff is None
                                 else float(f"{r.max_abs_prob_diff:.4g}"),
            "mean_abs_prob_diff": None if r.mean_abs_prob_diff is None
                                  else float(f"{r.mean_abs_prob_diff:.4g}"),
            "per_class_accuracy_delta": [_r(d) for d in r.per_class_delta],
            "disagreements": r.disagreements, "seconds": _r(r.run.seconds, 2),
            "failures": r.failures,
        } for r in result.pairs],
        "cross_backend": _cross(result.cross),
        "line_reader": _reader_json(result.reader),
        "gate": _gate_json(result.gate),
        "skipped_backends": result.skipped,
        "passed": result.passed,
        "failures": result.failures,
        "wall_time_s": round(result.seconds, 1),
    }


def _pair(r) -> dict:
    """What a pair is and whether it passed, in parity.json."""
    return {"key": r.run.pair.key, "file": r.run.pair.filename, "format": r.run.pair.fmt,
            "precision": r.run.pair.precision, "backend": r.run.pair.backend,
            "runtime": r.run.runtime, "status": "pass" if r.passed else "fail",
            "error": r.run.error, "rule": r.rule}


def _cross(reports) -> list[dict]:
    """One file on two backends, in parity.json."""
    return [{"key": c.key, "backends": list(c.backends), "status": "pass" if c.passed else "fail",
             "agreement": _r(c.agreement),
             "max_abs_prob_diff": float(f"{c.max_abs_prob_diff:.4g}"),
             "disagreements": c.disagreements, "failures": c.failures} for c in reports]


def _reader_json(reader) -> dict | None:
    """The line reader's part of parity.json; None when the export holds no reader."""
    if reader is None:
        return None
    ref = reader.ref
    return {
        "lines": len(ref.lines.labels), "seed": reader.seed, "split": "test",
        "source_model": {"path": READER_FILE, "sha256": reader.source_sha256},
        "keras": {"exact_rate": _r(ref.exact_rate), "digit_accuracy": _r(ref.digit_accuracy)},
        "tolerances": {key: {**asdict(_tolerance(key)), "rule": _tolerance(key).rule()}
                       for key in dict.fromkeys(r.run.pair.key for r in reader.pairs)},
        "pairs": [{
            **_pair(r),
            **({} if r.figures is None else {
                "exact_rate": _r(r.figures.exact_rate),
                "exact_rate_delta_vs_keras": _r(r.figures.exact_rate_delta_vs_keras),
                "digit_accuracy": _r(r.figures.digit_accuracy),
                "agreement_with_keras": _r(r.figures.agreement_with_keras),
                "max_abs_prob_diff": float(f"{r.figures.max_abs_prob_diff:.4g}")}),
            "disagreements": [{"line": i, "label": ref.lines.labels[i], "keras": ref.readings[i],
                               "read": r.figures.readings[i]} for i in r.disagreements]
                             if r.figures is not None else [],
            "seconds": _r(r.run.seconds, 2), "failures": r.failures,
        } for r in reader.pairs],
        "cross_backend": _cross(reader.cross),
        "passed": not reader.failures,
    }


def _gate_json(gate) -> dict | None:
    """The gate's part of parity.json; None when the export holds no gate."""
    if gate is None:
        return None
    return {
        "images": len(gate.ref.labels), "seed": gate.seed, "threshold": gate.ref.threshold,
        "source_model": {"path": GATE_FILE, "sha256": gate.source_sha256},
        "keras": {k: _r(v) if isinstance(v, float) else v for k, v in gate.keras_figures().items()},
        "tolerances": {key: {**asdict(_tolerance(key)), "rule": _tolerance(key).rule()}
                       for key in dict.fromkeys(r.run.pair.key for r in gate.pairs)},
        "pairs": [{
            **_pair(r),
            **({} if r.figures is None else {
                "accuracy": _r(r.figures.accuracy),
                "accuracy_delta_vs_keras": _r(r.figures.accuracy_delta_vs_keras),
                "agreement_with_keras": _r(r.figures.agreement_with_keras),
                "max_abs_prob_diff": float(f"{r.figures.max_abs_prob_diff:.4g}"),
                "false_refusals": _r(r.figures.false_refusals),
                "refusals": _r(r.figures.refusals),
                "disagreements": r.figures.disagreements}),
            "seconds": _r(r.run.seconds, 2), "failures": r.failures,
        } for r in gate.pairs],
        "cross_backend": _cross(gate.cross),
        "passed": not gate.failures,
    }


def _tolerance(key: str):
    return get_format(key, READER_FORMATS + GATE_FORMATS).tolerance


def _worst_class(deltas: list) -> str:
    """The class whose accuracy dropped most against Keras, for parity.md."""
    known = [(d, c) for c, d in enumerate(deltas) if d is not None]
    if not known:
        return "–"
    d, c = min(known)
    return f"{c}: {d * 100:+.2f} pt" if d < 0 else "none lower"


def disputed(result) -> list[int]:
    """Image indices where some pair differs from Keras or from another pair, most disputed
    first."""
    answers = result.answers()
    if not answers:
        return []
    # two pairs that differ from each other cannot both agree with Keras: one comparison suffices
    differs = (np.stack(list(answers.values())) != result.keras_labels).sum(axis=0)
    return sorted(np.flatnonzero(differs).tolist(), key=lambda i: (-int(differs[i]), i))


def _answer_lines(result, i: int, keys: list[str]) -> list[tuple[str, bool]]:
    """(text, correct) lines under thumbnail ``i``: Keras, then each format; one line per distinct
    answer."""
    truth = int(result.y[i])
    keras = int(result.keras_labels[i])
    lines = [(f"keras: {keras}", keras == truth)]
    for key in keys:
        got: dict[int, list[str]] = {}
        for (k, backend), labels in result.answers().items():
            if k == key:
                got.setdefault(int(labels[i]), []).append(backend)
        if len(got) == 1:
            answer = next(iter(got))
            lines.append((f"{key}: {answer}", answer == truth))
            continue
        for n, (answer, backends) in enumerate(got.items()):
            prefix = f"{key}: " if n == 0 else "  "
            lines.append((f"{prefix}{answer} ({', '.join(backends)})", answer == truth))
    return lines


def draw(result, path: Path) -> None:
    """parity.png: each disputed digit, its true label, Keras's answer and every format's
    answers."""
    from matplotlib.figure import Figure

    idx = disputed(result)
    shown = idx[:MAX_THUMBNAILS]
    keys = list(dict.fromkeys(key for key, _ in result.answers()))
    texts = [_answer_lines(result, i, keys) for i in shown]
    cols = max(1, min(COLUMNS, len(shown)))
    rows = math.ceil(len(shown) / cols)
    cell_w, image_h, line_h, head_h = 2.1, 1.25, 0.14, 0.55   # inches
    cell_h = 0.22 + image_h + 0.08 + line_h * max((len(t) for t in texts), default=0) + 0.1
    strips = _reader_lines(result.reader)
    strips_h = head_h + sum(_LINE_IMAGE_H + 0.1 + line_h * len(t) for _, t in strips)
    fig = Figure(figsize=(max(cell_w * cols, 8.4 if strips else 0), head_h + cell_h * rows
                          + (strips_h if strips else 0)))
    W, H = fig.get_figwidth(), fig.get_figheight()
    title = (f"{len(idx)} of {result.n_images:,} test images where formats or backends disagree"
             + (f" (the {len(shown)} most disputed shown)" if len(shown) < len(idx) else "")
             if idx
             else f"All formats and backends agree with Keras on all {result.n_images:,} images")
    fig.text(0.5, 1 - 0.3 / H, title, ha="center", va="center", fontsize=10)
    for n, (i, lines) in enumerate(zip(shown, texts, strict=True)):
        left, top = (n % cols) * cell_w, H - head_h - (n // cols) * cell_h
        ax = fig.add_axes(((left + (cell_w - image_h) / 2) / W, (top - 0.22 - image_h) / H,
                           image_h / W, image_h / H))
        ax.imshow(result.x[i], cmap="gray", vmin=0, vmax=255)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"#{i}  true {int(result.y[i])}", fontsize=8, pad=3)
        for row, (text, correct) in enumerate(lines):
            fig.text((left + cell_w / 2) / W, (top - 0.22 - image_h - 0.08 - line_h * row) / H,
                     text, ha="center", va="top", fontsize=6.5,
                     color="#1a7f37" if correct else "#c62828")
    if strips:
        _draw_lines(fig, result.reader, strips, strips_h, line_h, head_h)
    fig.savefig(path, format="png", dpi=110)


_LINE_IMAGE_H = 0.45  # inches: a reader strip's height in parity.png
MAX_LINES = 12        # disputed lines drawn in parity.png


def _reader_lines(reader) -> list[tuple[int, list[tuple[str, bool]]]]:
    """(line index, its text lines) for each line a reader pair reads unlike Keras, most disputed
    first: Keras's reading, then each distinct reading with its pairs."""
    if reader is None:
        return []
    ref = reader.ref
    ran = [r for r in reader.pairs if r.figures is not None]
    counts: dict[int, int] = {}
    for r in ran:
        for i in r.disagreements:
            counts[i] = counts.get(i, 0) + 1
    out = []
    for i in sorted(counts, key=lambda i: (-counts[i], i))[:MAX_LINES]:
        label = ref.lines.labels[i]
        got: dict[str, list[str]] = {}
        for r in ran:
            got.setdefault(r.figures.readings[i], []).append(r.run.pair.name)
        texts = [(f"keras: {ref.readings[i] or '∅'}", ref.readings[i] == label)]
        texts += [(f"{reading or '∅'}: {', '.join(names)}", reading == label)
                  for reading, names in got.items() if reading != ref.readings[i]]
        out.append((i, texts))
    return out


def _draw_lines(fig, reader, lines, height: float, line_h: float, head_h: float) -> None:
    """The disputed reader lines at the bottom of the figure: each strip, its number, readings."""
    W, H = fig.get_figwidth(), fig.get_figheight()
    n = len({i for r in reader.pairs for i in r.disagreements})
    fig.text(0.5, (height - 0.3) / H, f"line reader: {n} line(s) of {len(reader.ref.lines.labels)}"
             " read unlike Keras by some file (most disputed first)", ha="center", va="center",
             fontsize=10)
    top = height - head_h
    for i, texts in lines:
        strip = reader.ref.lines.strips[i]
        width = min(W * 0.55, _LINE_IMAGE_H * strip.shape[1] / strip.shape[0])
        ax = fig.add_axes((0.2 / W, (top - _LINE_IMAGE_H) / H, width / W, _LINE_IMAGE_H / H))
        ax.imshow(strip, cmap="gray", vmin=0, vmax=255, aspect="auto")
        ax.set_xticks([])
        ax.set_yticks([])
        x = (0.4 + width) / W
        fig.text(x, top / H, f"#{i}  number {reader.ref.lines.labels[i]}", va="top", fontsize=8)
        for row, (text, correct) in enumerate(texts, 1):
            fig.text(x, (top - line_h * row) / H, text, va="top", fontsize=6.5,
                     color="#1a7f37" if correct else "#c62828")
        top -= _LINE_IMAGE_H + 0.1 + line_h * len(texts)
