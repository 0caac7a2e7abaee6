"""reports/reader.md (tables with the targets), reader.json (every figure) and
reader_failures.png (the hardest misread photos, with the boxes the reader found).

Each is written to a temporary file beside it and renamed into place.
"""

from __future__ import annotations

import math
from pathlib import Path

from checks import reports
from checks.reader.run import ReaderResult
from common import photos as sets
from common.photo_score import matched
from common.publish import atomic_path

FAILURES_MD = 20      # misread numbers listed in reader.md (all are in the JSON)
COLUMNS = 4           # photos per row in reader_failures.png
SHARE_TAGS = ("digits", "lines", "touching", "stroke", "thin", "broken", "pressure", "slant",
              "size variation", "background", "texture", "polarity", "blur", "file", "frame")


def write_reports(result: ReaderResult, out: Path, n_failures: int) -> dict[str, Path]:
    """Write reader.md, reader.json and reader_failures.png into ``out``; returns their paths."""
    paths = reports.write(out, "reader", result.data, markdown(result.data))
    if result.data.get("numbers") is not None:
        paths["png"] = out / "reader_failures.png"
        with atomic_path(paths["png"]) as tmp:
            draw_failures(result, tmp, n_failures)
    return paths


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.1%}"


def _mark(met: bool | None) -> str:
    return "not measured" if met is None else "✅ met" if met else "❌ missed"


def _value(t: dict) -> str:
    v = t["value"]
    if v is None:
        return "–"
    return f"{v:.2f}x" if "time" in t["target"] else _pct(v)


def markdown(data: dict) -> str:
    """The human report: targets, numbers (overall, per digit, per tag), single digits, speed,
    failures, and the sets' measured make-up."""
    model = data["model"]
    lines = [
        "# Number reader: numbers in photos, thin and broken strokes, speed", "",
        f"`{model['file']}` ({model['precision']}) on {model['backend']}, one thread. Sets made "
        f"from the MNIST **{data['split']}** split ({data['data']}), seed {data['seed']}: "
        f"{data['n_numbers']:,} number photos, {data['n_singles']:,} single-digit photos. "
        f"{data['created_utc']}, {data['wall_time_s']:.0f} s. Method: `docs/reader.md`.", "",
        f"Command: `{data['command']}`", "",
    ]
    if data["split"] != "test":
        lines += [f"**Tuning figures: the sets come from the {data['split']} split. Report only "
                  "figures made from the test split.**", ""]
    lines += ["## Targets", ""]
    lines += reports.table(["target", "value", "goal", "status"],
                           [[t["target"], _value(t), t["goal"], _mark(t["met"])]
                            for t in data["targets"]])
    lines += _numbers_md(data)
    lines += _singles_md(data["singles"])
    lines += _timing_md(data.get("timing"))
    lines += _failures_md(data)
    lines += _shares_md(data)
    return "\n".join(lines)


def _numbers_md(data: dict) -> list[str]:
    """The numbers section."""
    lines = ["", "## Numbers: `Classifier.read`", ""]
    nb = data.get("numbers")
    if nb is None:
        return lines + ["Not measured: this runtime's Classifier has no `read`."]
    lines += [
        f"**{_pct(nb['exact_rate'])}** of {nb['n']:,} numbers read exactly (the whole string, "
        "line breaks included). Per digit, with line breaks removed: when the reader found as "
        "many digits as there are, its digits are compared position by position; over all "
        "numbers, digits right = digits − edit distance (Levenshtein) between truth and "
        "reading.", ""]
    lines += reports.table(["figure", "value"], [
        ["numbers read exactly", _pct(nb["exact_rate"])],
        ["right number of digits", _pct(nb["same_length_rate"])],
        ["too few digits (missed or merged)", _pct(nb["too_few_digits_rate"])],
        ["too many digits (split or specks)", _pct(nb["too_many_digits_rate"])],
        ["digits right, position by position (right length only)",
         _pct(nb["digit_accuracy_same_length"])],
        ["digits right, by edit distance (all numbers)", _pct(nb["digit_accuracy_edit"])],
        ["number of lines right", _pct(nb["line_count_right_rate"])],
        ["photos where read raised an exception", str(nb["errors"])],
        ["mean read time, all photo sizes (ms)", f"{nb['read_ms_mean_all_sizes']:.1f}"],
    ])
    if nb["error_examples"]:
        lines += ["", "Exceptions: " + "; ".join(f"`{e}`" for e in nb["error_examples"])]
    lines += ["", "### By tag", "",
              "Exact-number rate and digits right (by edit distance) for each value of each "
              "tag; a photo counts once per tag.", ""]
    rows = []
    for key, values in nb["by_tag"].items():
        for v, f in values.items():
            rows.append([key, v, str(f["n"]), _pct(f["exact_rate"]), _pct(f["digit_accuracy"])])
    lines += reports.table(["tag", "value", "photos", "exact", "digits right"], rows)
    return lines


def _singles_md(sg: dict) -> list[str]:
    """The single-digit section."""
    lines = ["", "## Single digits with thin or broken strokes: `predict_files`", "",
             f"**{_pct(sg['photo_accuracy'])}** of {sg['n']:,} photos classified right "
             f"({sg['no_label']} got no label); the same digits as clean MNIST images through "
             f"`predict`: {_pct(sg['clean_accuracy'])}.", ""]
    rows = [["all", "", str(sg["n"]), _pct(sg["photo_accuracy"]), _pct(sg["clean_accuracy"])]]
    for key, values in sg["by_tag"].items():
        for v, f in values.items():
            rows.append([key, v, str(f["n"]), _pct(f["photo_accuracy"]),
                         _pct(f["clean_accuracy"])])
    return lines + reports.table(["tag", "value", "photos", "photo accuracy",
                                  "clean MNIST accuracy"], rows)


def _timing_md(tm: dict | None) -> list[str]:
    """The speed section."""
    lines = ["", "## Speed: read vs predict_files, 640x480, one thread", ""]
    if tm is None:
        return lines + ["Not measured: this runtime's Classifier has no `read`."]
    lines += [f"Median of {tm['repeats']} calls each, alternating, from JPEG files, over "
              f"{tm['photos']} photos of each kind, in one process: `read` of a photo holding "
              f"a {tm['number_digits']}-digit number vs `predict_files` of a photo of one "
              f"digit. Ratio **{tm['ratio']:.2f}x**."
              + (" Fewer than 30 repetitions: indicative only." if tm["repeats"] < 30 else ""),
              ""]
    return lines + reports.table(["call", "median ms", "p90 ms"], [
        ["read (4-digit number)", f"{tm['read_ms_median']:.1f}", f"{tm['read_ms_p90']:.1f}"],
        ["predict_files (one digit)", f"{tm['predict_files_ms_median']:.1f}",
         f"{tm['predict_files_ms_p90']:.1f}"]])


def _failures_md(data: dict) -> list[str]:
    """The hardest misreadings, listed."""
    fails = data.get("failures")
    if fails is None:
        return []
    lines = ["", "## Hardest failures", "",
             f"{len(fails)} numbers misread; hardest first (most digits wrong by edit distance, "
             "then the most confident reading). `reader_failures.png` shows the first ones with "
             "the boxes the reader found; all are in `reader.json`.", ""]
    keys = ("digits", "touching", "stroke", "broken", "slant", "size variation", "background")
    rows = [[str(f["index"]), _show(f["truth"]),
             _show(f["read"]) if f["error"] is None else f"error: {f['error'][:60]}",
             str(f["distance"]), ", ".join(f"{k} {f['tags'][k]}" for k in keys)]
            for f in fails[:FAILURES_MD]]
    return lines + reports.table(["photo", "truth", "read", "edit distance", "tags"], rows)


def _show(text: str | None) -> str:
    """A number for a table cell: lines separated by ' / ', empty shown as (nothing)."""
    if text is None:
        return "–"
    return f"`{text.replace(chr(10), ' / ')}`" if text else "(nothing)"


def _shares_md(data: dict) -> list[str]:
    """The sets' measured make-up."""
    lines = ["", "## The sets, as measured", "",
             "Share of photos with each tag value (touching, broken and size variation are "
             "measured on the ink as drawn; see `docs/reader.md`).", ""]
    rows = []
    number_shares = data["numbers"]["set_shares"] if data.get("numbers") else {}
    single_shares = data["singles"]["set_shares"]
    for key in SHARE_TAGS:
        values = sorted(set(number_shares.get(key, {})) | set(single_shares.get(key, {})),
                        key=sets.value_order)
        for v in values:
            rows.append([key, v, _pct(number_shares.get(key, {}).get(v)),
                         _pct(single_shares.get(key, {}).get(v))])
    return lines + reports.table(["tag", "value", "numbers", "single digits"], rows)


def draw_failures(result: ReaderResult, path: Path, limit: int) -> None:
    """reader_failures.png: the hardest misread photos (cropped around the digits and whatever
    the reader boxed), the truth, the reading, and the boxes the reader found (green: the digit
    matches the truth when the two are aligned with the fewest edits; red: it does not)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    data = result.data
    shown = data["failures"][:limit]
    cols = max(1, min(COLUMNS, len(shown)))
    rows = max(1, math.ceil(len(shown) / cols))
    cell_w, cell_h, head_h = 3.4, 3.1, 0.5   # inches
    fig = Figure(figsize=(cell_w * cols, head_h + cell_h * rows))
    n = data["numbers"]["n"]
    title = (f"The {len(shown)} hardest of {len(data['failures'])} misread numbers "
             f"(of {n:,}; {data['split']} split, seed {data['seed']})" if shown
             else f"All {n:,} numbers read exactly")
    fig.suptitle(title, fontsize=11)
    W, H = fig.get_figwidth(), fig.get_figheight()
    for k, f in enumerate(shown):
        s = sets.number_sample(result.digits, data["seed"], f["index"])
        left, top = (k % cols) * cell_w, H - head_h - (k // cols) * cell_h
        ax = fig.add_axes(((left + 0.1) / W, (top - cell_h + 0.75) / H, (cell_w - 0.2) / W,
                           (cell_h - 1.0) / H))
        boxes = [g.box for g in s.glyphs] + [tuple(d["box"]) for d in f["found"]]
        pad = max(16, int(0.4 * float(s.params["digit_height_px"])))
        x0 = max(0, min(b[0] for b in boxes) - pad)
        y0 = max(0, min(b[1] for b in boxes) - pad)
        x1 = min(s.image.shape[1], max(b[2] for b in boxes) + pad)
        y1 = min(s.image.shape[0], max(b[3] for b in boxes) + pad)
        ax.imshow(s.image[y0:y1, x0:x1], cmap="gray" if s.image.ndim == 2 else None, vmin=0,
                  vmax=255, extent=(x0, x1, y1, y0))  # photo coordinates: the boxes as read
        right = matched(s.truth.replace("\n", ""), "".join(str(d["label"]) for d in f["found"]))
        for d, ok in zip(f["found"], right, strict=True):
            bx0, by0, bx1, by1 = d["box"]
            colour = "#1a7f37" if ok else "#d32f2f"
            ax.add_patch(Rectangle((bx0, by0), bx1 - bx0, by1 - by0, fill=False, lw=1.2,
                                   edgecolor=colour))
            ax.text(bx0, by0 - 2, str(d["label"]), color=colour, fontsize=7, va="bottom")
        ax.set_xlim(x0, x1)
        ax.set_ylim(y1, y0)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"#{f['index']}  truth {_plain(s.truth)}", fontsize=9, pad=3)
        if s.truth != f["truth"]:  # the sets' code changed since the run: say so, loudly
            raise RuntimeError(f"number photo {f['index']} no longer holds {f['truth']!r}")
        got = f"error: {f['error'][:40]}" if f["error"] else f"read {_plain(f['read'])}"
        w, h = s.image.shape[1], s.image.shape[0]
        tags = ", ".join(v for v in (
            f"{s.tags['digits']} digits", "touching" if s.tags["touching"] == "yes" else "",
            s.tags["stroke"], "broken" if s.tags["broken"] == "yes" else "",
            f"slant {s.tags['slant']}", f"sizes {s.tags['size variation']}") if v)
        tags += f"\n{s.tags['background']}, {s.tags['polarity']}, {s.tags['file']}, {w}x{h}"
        fig.text((left + cell_w / 2) / W, (top - cell_h + 0.62) / H, got, ha="center",
                 va="top", fontsize=9, color="#d32f2f")
        fig.text((left + cell_w / 2) / W, (top - cell_h + 0.38) / H, tags, ha="center",
                 va="top", fontsize=6.5, color="#444444")
    fig.savefig(path, format="png", dpi=100)


def _plain(text: str | None) -> str:
    """A number for a caption: lines separated by ' / '."""
    return "(nothing)" if not text else text.replace("\n", " / ")
