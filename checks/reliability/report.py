"""Write reports/reliability.md (checks/templates/reliability.md.j2) and reliability.json from the
figures the run just measured."""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from pathlib import Path

from checks import reports
from checks.reliability.hostile import CLASSES


def write_report(out: Path, fuzz: dict, interrupts: list, repro: dict | None, memory: list,
                 threads: list, command: str, build_side: list | None = None,
                 api: dict | None = None) -> Path:
    """reports/reliability.md (+ .json); returns the markdown path."""
    data = {"created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": command, "machine": f"{platform.machine()}, {platform.python_version()}",
            "fuzz": fuzz, "interruptions": interrupts, "reproducibility": repro,
            "memory": memory, "threads": threads, "build_side": build_side or [], "api": api}
    kinds = {target: CLASSES.get(target, "other") for target in fuzz}
    per_class: dict[str, int] = {}
    for target, t in fuzz.items():
        per_class[kinds[target]] = per_class.get(kinds[target], 0) + t["tried"]
    return reports.write(out, "reliability", data, kinds=kinds, per_class=per_class)["md"]
