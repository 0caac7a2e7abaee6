"""python -m export: model.keras -> int8/float TFLite, float/int8 ONNX + manifest.json
(see --help)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from common.artifacts import MANIFEST_FILE
from common.data import DataError
from common.flags import parse
from export.export import ExportConfig, ExportError, run

PROG = "python -m export"


def parse_args(argv: list[str] | None = None) -> ExportConfig:
    """Command-line flags -> ExportConfig (flags, help and defaults come from the dataclass)."""
    return parse(ExportConfig, argv, PROG,
                 "Export the trained Keras model (ARTIFACTS/model.keras) to every format, verify "
                 "each file against Keras on the whole MNIST test set through the runtime, and "
                 f"publish the files with {MANIFEST_FILE} atomically into ARTIFACTS.",
                 "Exit status: 0 when every requested format passed, 1 when one failed "
                 "verification (the passing files are published with a manifest listing only "
                 "them) or on an error (nothing is published).")


def main(argv: list[str] | None = None) -> int:
    """Entry point: one line on stderr and a non-zero exit for expected problems."""
    cfg = parse_args(argv)
    before = _manifest(cfg.artifacts)
    try:
        result = run(cfg, log=lambda line: print(line, flush=True))
    except (ExportError, DataError, ValueError, FileNotFoundError, PermissionError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        after = _manifest(cfg.artifacts)
        if after is not None and after != before:  # every publish writes a new manifest
            print(f"{PROG}: interrupted after publishing: the new set is in place",
                  file=sys.stderr)
        else:
            print(f"{PROG}: interrupted; artifacts left as they were", file=sys.stderr)
        return 130
    print()
    print(result.table())
    files = ", ".join(e["path"] for e in result.manifest["files"]) or "no files"
    print(f"\npublished in {cfg.artifacts}/: {files}, {MANIFEST_FILE}")
    if result.failures:
        print(f"{PROG}: error: {'; '.join(result.failures)}; left out of {MANIFEST_FILE}",
              file=sys.stderr)
        return 1
    return 0


def _manifest(folder: str) -> bytes | None:
    try:
        return (Path(folder) / MANIFEST_FILE).read_bytes()
    except OSError:
        return None


if __name__ == "__main__":
    code = main()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # done: a Ctrl-C during shutdown changes nothing
    sys.exit(code)
