"""reports/pi.md and reports/pi.json: one row per target x file x backend."""

from __future__ import annotations

from pathlib import Path

from checks import reports

_COLUMNS = ("target", "file", "backend", "images", "agreement", "accuracy (host)", "max diff",
            "install", "ms/image (host)", "status")


def _fmt_diff(row) -> str:
    if row.max_diff is None:
        return "-"
    if row.diff_unit == "int8 steps":
        return f"{row.max_diff:.3g} step{'' if row.max_diff == 1 else 's'} (<= {row.tolerance:g})"
    return f"{row.max_diff:.1e} (<= {row.tolerance:.0e})"


def _cells(row) -> tuple:
    pct = lambda v: "-" if v is None else f"{v:.2%}"  # noqa: E731
    ms = "-" if row.ms_per_image is None else (
        f"{row.ms_per_image:.2f} ({row.host_ms_per_image:.3f})" if row.host_ms_per_image
        else f"{row.ms_per_image:.2f}")
    size = "-" if row.install_bytes is None else f"{row.install_bytes / 1e6:.0f} MB"
    status = "ok" if row.ok else "FAIL: " + "; ".join(row.failures)
    return (row.target, row.key, row.backend, f"{row.images:,}", pct(row.agreement),
            f"{pct(row.accuracy)} ({pct(row.host_accuracy)})", _fmt_diff(row), size, ms, status)


def table(rows) -> str:
    """The rows as a Markdown table."""
    return "\n".join(reports.table(list(_COLUMNS), [list(_cells(r)) for r in rows]))


def _references(summary: dict) -> dict:
    refs: dict[str, set] = {}
    for py, env in summary.get("host_references", {}).items():
        refs[py] = {d for d, v in (env.get("versions") or {}).items()
                    if v and d in ("ai-edge-litert", "onnxruntime", "tflite-runtime")}
    return refs


def write_reports(out: Path, summary: dict, rows, targets: dict) -> tuple[Path, Path]:
    """Write pi.json (everything) and pi.md (the table and how it was made) atomically."""
    failures = [f"{r.target} {r.key} {r.backend}: {f}" for r in rows for f in r.failures]
    failures += summary.get("failures", [])
    lines = [
        "# mnist-edge on emulated Raspberry Pi",
        "",
        f"Result: **{'PASS' if not failures else 'FAIL'}**, {summary['created_utc']}, "
        f"{summary['seconds_total']:.0f} s in all ({summary['seconds_setup']:.0f} s setup, "
        f"cache: {summary['cache']}).",
        "",
        f"Models: `{summary['manifest']}`. Images: MNIST test set from `{summary['data']}`. "
        "Agreement is the share of images whose predicted digit equals the host's "
        f"({summary['host']['machine']}, Python {summary['host']['python']}, same API); "
        "max diff compares raw outputs (int8 files: quantization steps; float files: "
        "probability). Each device run is compared with the same backend on the host: "
        + "; ".join(f"{', '.join(sorted(b))} in `{py}`" for py, b in _references(summary).items())
        + ". Times are under qemu, so only indicative (a real Pi is many times faster).",
        "",
        table(rows),
        "",
    ]
    notes = [f"- {r.target} {r.key} ({r.backend}): {n}" for r in rows for n in r.notes]
    lines += (["Notes:", ""] + notes + [""]) if notes else []
    lines += [
        "## Targets",
        "",
    ]
    for key, t in targets.items():
        env = t.get("environment") or {}
        versions = ", ".join(f"{k} {v}" for k, v in sorted((env.get("versions") or {}).items())
                             if v)
        lines.append(f"- **{key}**: {t['title']}; qemu CPU `{t['cpu']}` ({t['cpu_note']}); "
                     f"{env.get('machine', '?')}, Python {env.get('python', '?')}, "
                     f"{env.get('libc', '?')}; {versions}; TensorFlow importable: "
                     f"{env.get('tensorflow_importable', '?')}; {t['seconds']:.0f} s.")
    if failures:
        lines += ["", "## Failed checks", ""] + [f"- {f}" for f in failures]
    data = dict(summary, rows=[r.as_dict() for r in rows], targets=targets)
    paths = reports.write(out, "pi", data, "\n".join(lines))
    return paths["md"], paths["json"]
