"""Writing a check's reports: STEM.json for machines, STEM.md for people, STEM.png where drawn."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from common.publish import atomic_path, write_bytes, write_json


def write(out: Path, stem: str, data: dict, markdown: str,
          draw: Callable[[Path], None] | None = None) -> dict[str, Path]:
    """Write the reports into ``out``, each atomically; returns their paths by suffix."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / f"{stem}.md", "json": out / f"{stem}.json"}
    write_json(paths["json"], data)
    write_bytes(paths["md"], (markdown.rstrip("\n") + "\n").encode())
    if draw is not None:
        paths["png"] = out / f"{stem}.png"
        with atomic_path(paths["png"]) as tmp:
            draw(tmp)
    return paths


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table's lines."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
