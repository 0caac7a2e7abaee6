"""reports/reader.md (tables with the targets: checks/templates/reader.md.j2), reader.json
(every figure) and reader_failures.png (the hardest misread photos, with the boxes the reader
found).

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
FAILURE_TAGS = ("digits", "touching", "stroke", "broken", "slant", "size variation",
                "background")  # the tags listed for each misread number in reader.md
SHARE_TAGS = ("digits", "lines", "touching", "stroke", "thin", "broken", "pressure", "slant",
              "size variation", "background", "texture", "polarity", "blur", "file", "frame")


def write_reports(result: ReaderResult, out: Path, n_failures: int) -> dict[str, Path]:
    """Write reader.md, reader.json and reader_failures.png into ``out``; returns their paths."""
    paths = reports.write(out, "reader", result.data, failures_md=FAILURES_MD,
                          failure_tags=FAILURE_TAGS, share_rows=share_rows(result.data))
    if result.data.get("numbers") is not None:
        paths["png"] = out / "reader_failures.png"
        with atomic_path(paths["png"]) as tmp:
            draw_failures(result, tmp, n_failures)
    return paths


def share_rows(data: dict) -> list[tuple]:
    """(tag, value, share of number photos, share of single-digit photos) for reader.md."""
    numbers = data["numbers"]["set_shares"] if data.get("numbers") else {}
    singles = data["singles"]["set_shares"]
    return [(key, v, numbers.get(key, {}).get(v), singles.get(key, {}).get(v))
            for key in SHARE_TAGS
            for v in sorted(set(numbers.get(key, {})) | set(singles.get(key, {})),
                            key=sets.value_order)]


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
