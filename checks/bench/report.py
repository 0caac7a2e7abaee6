"""reports/bench.md (the table people read: checks/templates/bench.md.j2), bench.json (the same for
machines), bench.png.

Each is written to a temporary file beside it and renamed into place.
"""

from __future__ import annotations

from pathlib import Path

from checks import reports

BIG = "256"


def write_reports(result: dict, out: Path) -> dict[str, Path]:
    """Write bench.md, bench.json and bench.png into ``out``; returns their paths."""
    return reports.write(out, "bench", result, lambda p: draw(result, p), big=BIG)


def draw(r: dict, path: Path) -> None:
    """Batch-1 p50 latency and batch-256 throughput per file and backend (one thread), with size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [x for x in r["rows"] if "error" not in x and x["threads"] == 1]
    names = [f"{x['key']}\n{x['backend']}\n{x['size_bytes'] / 1024:.0f} KB" for x in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(max(9, 1.6 * len(rows)), 4.8))
    ys = range(len(rows))
    a.barh(ys, [x["latency_us"]["p50"] for x in rows], color="tab:blue",
           label="Classifier.predict p50")
    a.barh(ys, [x["floor_us"]["p50"] for x in rows], color="none", edgecolor="black", hatch="//",
           label="bare interpreter call p50")
    a.set_yticks(list(ys), names, fontsize=7)
    a.invert_yaxis()
    a.set_xlabel("batch-1 latency, µs (lower is better)")
    a.legend(fontsize=7)
    b.barh(ys, [x["throughput_cpu"][BIG] for x in rows], color="tab:green", label="per core-second")
    b.barh(ys, [x["throughput"][BIG] for x in rows], color="none", edgecolor="black", hatch="..",
           label="wall clock (shared machine)")
    keras = next((x for x in r["baselines"] if x.get("baseline") == "keras" and "error" not in x),
                 None)
    if keras:
        b.axvline(keras["throughput_cpu"]["predict"], color="tab:red", linestyle="--",
                  label="Keras predict per core-second")
    b.legend(fontsize=7)
    b.set_yticks(list(ys), [""] * len(rows))
    b.invert_yaxis()
    b.set_xlabel("throughput at batch 256, images/s (higher is better)")
    fig.suptitle(f"mnist-edge on {r['device']['cpu']}, one thread", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)
