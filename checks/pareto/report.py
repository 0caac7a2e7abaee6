"""reports/pareto.md (checks/templates/pareto.md.j2), pareto.json and pareto.png: accuracy against
batch-1 latency, one marker per file, its area the file's size."""

from __future__ import annotations

from pathlib import Path

from checks import reports


def write_reports(result: dict, out: Path) -> dict[str, Path]:
    """Write pareto.md, pareto.json and pareto.png into ``out``; returns their paths."""
    return reports.write(out, "pareto", result, lambda p: draw(result, p))


def draw(r: dict, path: Path) -> None:
    """MNIST test accuracy against batch-1 p50 per file (log scale), marker area by file size,
    a colour per model, the frontier joined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [x for x in r["rows"] if x.get("p50_us") is not None]
    fig, ax = plt.subplots(figsize=(11, 5.6))
    models = list(dict.fromkeys(x["model"] for x in rows))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    biggest = max((x["size_bytes"] for x in rows), default=1)
    for m, colour in zip(models, colours * (1 + len(models) // len(colours)), strict=False):
        mine = [x for x in rows if x["model"] == m]
        ax.scatter([x["p50_us"] for x in mine], [x["accuracy"] * 100 for x in mine],
                   s=[30 + 900 * x["size_bytes"] / biggest for x in mine], color=colour,
                   alpha=0.55, edgecolors="black", linewidths=0.6, label=m)
        for n, x in enumerate(sorted(mine, key=lambda x: x["p50_us"])):
            # alternate above and below: files of one model often share an accuracy
            ax.annotate(f"{x['key']}\n{x['size_bytes'] / 1024:.0f} KB",
                        (x["p50_us"], x["accuracy"] * 100), fontsize=6.5,
                        xytext=(6, 6 if n % 2 == 0 else -16), textcoords="offset points")
    front = sorted((x for x in rows if x["frontier"]), key=lambda x: x["p50_us"])
    if front:
        ax.plot([x["p50_us"] for x in front], [x["accuracy"] * 100 for x in front], "k--",
                linewidth=0.8, label="frontier: no file faster and as accurate")
    ax.axhline(r["choice"]["floor"] * 100, color="tab:red", linewidth=0.8, linestyle=":",
               label=f"floor {r['choice']['floor']:.1%}")
    ax.set_xscale("log")
    ax.set_xlabel("batch-1 Classifier.predict p50, µs, one thread (log scale; lower is better)")
    ax.set_ylabel("MNIST test accuracy, %")
    legend = ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    for handle in legend.legend_handles:  # the models' markers at one size in the legend
        if hasattr(handle, "set_sizes"):
            handle.set_sizes([40])
    cpu = (r.get("device") or {}).get("cpu", "this machine")
    fig.suptitle(f"Every model x file on {cpu}; marker area = file size", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)
