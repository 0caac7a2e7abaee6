"""The file and backend ``mnist-edge bench FOLDER`` found fastest on this device, saved per export.

``Classifier.load(folder, prefer="latency")`` reads it; the benchmark writes it. The file is keyed
by the manifest's sha256, so a re-export makes an old choice stale by itself.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from mnist_edge.digest import sha256_hex
from mnist_edge.errors import MnistEdgeError, ModelError

PREFERENCES = ("latency", "throughput")
SCHEMA = 1


def cache_dir() -> Path:
    """Where choices are saved: $MNIST_EDGE_CACHE, else $XDG_CACHE_HOME/mnist-edge, else
    ~/.cache/mnist-edge."""
    if os.environ.get("MNIST_EDGE_CACHE"):
        return Path(os.environ["MNIST_EDGE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mnist-edge"


def choice_path(manifest_file: Path) -> Path:
    """The choice file of one export on this device, keyed by the manifest's sha256."""
    from mnist_edge.manifest import MAX_MANIFEST_BYTES
    from mnist_edge.modelfile import read_regular_file

    try:
        data = read_regular_file(Path(manifest_file), MAX_MANIFEST_BYTES, "manifest")
    except OSError as exc:
        raise ModelError(f"{manifest_file}: cannot read ({exc.strerror or exc})") from None
    digest = sha256_hex(data)
    return cache_dir() / f"bench-{digest[:16]}.json"


def save_choice(manifest_file: Path, choice: dict[str, dict[str, Any]],
                device: dict[str, Any] | None = None) -> Path:
    """Write the recommendation ({preference: {"key", "backend", ...}}) atomically."""
    path = choice_path(manifest_file)
    data = {"schema": SCHEMA, "manifest": str(Path(manifest_file).resolve()),
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "device": device, **choice}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        raise MnistEdgeError(f"cannot save the benchmark choice to {path} ({exc.strerror}); set "
                             "MNIST_EDGE_CACHE to a writable folder or pass --no-save") from None
    return path


def load_choice(manifest_file: Path, prefer: str) -> dict[str, Any] | None:
    """The saved {"key", "backend", ...} for ``prefer`` here; None if never benchmarked, or if
    the saved file is damaged (not JSON, or a key or backend that is not one of the manifest's
    files or of the runtime's backends): the manifest's order applies then."""
    from mnist_edge.backends import BACKENDS
    from mnist_edge.manifest import read_manifest

    try:
        data = json.loads(choice_path(manifest_file).read_text())
    except (OSError, ValueError, RecursionError):
        return None
    pick = data.get(prefer) if isinstance(data, dict) else None
    if not (isinstance(pick, dict) and isinstance(pick.get("key"), str)
            and isinstance(pick.get("backend"), str) and pick["backend"] in BACKENDS):
        return None
    keys = {entry.key for entry in read_manifest(Path(manifest_file)).files}
    return pick if pick["key"] in keys else None
