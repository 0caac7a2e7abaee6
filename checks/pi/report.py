"""reports/pi.md (checks/templates/pi.md.j2) and reports/pi.json: one row per target x file x
backend."""

from __future__ import annotations

from pathlib import Path

from checks import reports

REFERENCES = ("ai-edge-litert", "onnxruntime", "tflite-runtime")  # backends run on the host too


def table(rows) -> str:
    """The rows as a Markdown table."""
    return reports.render("pi_table.md.j2", rows=[r.as_dict() for r in rows]).rstrip("\n")


def isa_table(rows) -> str:
    """The instruction-set rows (checks/pi/isa.py) as a Markdown table."""
    return reports.render("pi_isa_table.md.j2", isa_rows=[r.as_dict() for r in rows]).rstrip("\n")


def write_reports(out: Path, summary: dict, rows, targets: dict,
                  isa_rows=()) -> tuple[Path, Path]:
    """Write pi.json (everything) and pi.md (the tables and how they were made) atomically."""
    failures = [f"{r.target} {r.key} {r.backend}: {f}" for r in [*rows, *isa_rows]
                for f in r.failures]
    failures += summary.get("failures", [])
    data = dict(summary, rows=[r.as_dict() for r in rows], targets=targets,
                isa_rows=[r.as_dict() for r in isa_rows])
    paths = reports.write(out, "pi", data, failures=failures, references=REFERENCES)
    return paths["md"], paths["json"]
