"""Writing a check's reports: STEM.json for machines, STEM.md for people (rendered from the same
data through checks/templates/STEM.md.j2), STEM.png where drawn."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.publish import atomic_path, write_bytes, write_json

TEMPLATES = Path(__file__).with_name("templates")


def write(out: Path, stem: str, data: dict, draw: Callable[[Path], None] | None = None,
          **context: Any) -> dict[str, Path]:
    """Write the reports into ``out``, each atomically; returns their paths by suffix.

    STEM.md is STEM.md.j2 rendered with ``data`` (the JSON) as ``d``, and ``context``.
    """
    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / f"{stem}.md", "json": out / f"{stem}.json"}
    write_json(paths["json"], data)
    markdown = render(f"{stem}.md.j2", d=data, **context)
    write_bytes(paths["md"], (markdown.rstrip("\n") + "\n").encode())
    if draw is not None:
        paths["png"] = out / f"{stem}.png"
        with atomic_path(paths["png"]) as tmp:
            draw(tmp)
    return paths


def render(template: str, **context: Any) -> str:
    """A template of checks/templates/ with ``context``; a name it lacks is an error."""
    return _environment().get_template(template).render(**context)


def fmt(value: Any, spec: str, none: str = "–", scale: float = 1) -> str:
    """``format(value * scale, spec)`` (``spec.format`` when it holds "{}"), or ``none`` for a
    figure that was not measured."""
    if value is None:
        return none
    value = value * scale
    return spec.format(value) if "{" in spec else format(value, spec)


def pairs(mapping: dict, template: str = "{} {}", sep: str = ", ") -> str:
    """Each item of ``mapping`` as ``template.format(key, value)``, joined by ``sep``."""
    return sep.join(template.format(k, v) for k, v in mapping.items())


@functools.cache
def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             undefined=jinja2.StrictUndefined, autoescape=False,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(fmt=fmt, pairs=pairs, json=json.dumps)
    return env
