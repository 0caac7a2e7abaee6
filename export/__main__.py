"""python -m export: model.keras -> int8/float TFLite, float/int8 ONNX + manifest.json, and
line_reader.keras and gate.keras -> their int8/float TFLite and ONNX files when present (see
--help)."""

from __future__ import annotations

import sys
from pathlib import Path

from common import entry
from common.artifacts import (
    GATE_FILE,
    MANIFEST_FILE,
    QUANT_JSON_FILE,
    QUANT_MD_FILE,
    READER_FILE,
)
from common.data import DataError
from common.flags import parse
from export.export import ExportConfig, ExportError, run

PROG = "python -m export"


def parse_args(argv: list[str] | None = None) -> ExportConfig:
    """Command-line flags -> ExportConfig (flags, help and defaults come from the dataclass)."""
    return parse(ExportConfig, argv, PROG,
                 "Export the trained Keras model (ARTIFACTS/model.keras) to every format, verify "
                 "each file against Keras on the whole MNIST test set through the runtime, and "
                 f"publish the files with {MANIFEST_FILE} atomically into ARTIFACTS. When "
                 f"ARTIFACTS holds the line reader ({READER_FILE}), its files are exported too, "
                 "verified through the runtime's LineReader on lines of MNIST test digits "
                 "(--reader-lines), and listed in the manifest's line_reader section. When it "
                 f"holds the \"no digit\" gate ({GATE_FILE}), its files are exported too, "
                 "verified through the runtime on MNIST's test digits and held-out generated "
                 "non-digits at the gate's calibrated threshold, and listed in the manifest's "
                 "gate section.",
                 "Exit status: 0 when every requested format passed, 1 when one failed "
                 "verification (the passing files are published with a manifest listing only "
                 "them) or on an error (nothing is published).")


def main(argv: list[str] | None = None) -> int:
    """Entry point: one line on stderr and a non-zero exit for expected problems."""
    cfg = parse_args(argv)
    # every publish writes a new manifest
    return entry.run(PROG, cfg, _export,
                     (ExportError, DataError, ValueError, FileNotFoundError, PermissionError),
                     published=Path(cfg.artifacts) / MANIFEST_FILE)


def _export(cfg: ExportConfig) -> int:
    result = run(cfg, log=lambda line: print(line, flush=True))
    print()
    print(result.table())
    if result.quantization is not None:
        print()
        print(result.quantization.table())
    listed = [e["path"] for e in result.manifest["files"]] + [
        e["path"] for side in ("line_reader", "gate") for e in
        (result.manifest.get(side) or {"files": []})["files"]] + [
        name for name in ((result.manifest.get("golden") or {}).get("path"),) if name] + [
        e["path"] for e in (result.manifest.get("micro") or {"files": []})["files"]] + (
        [QUANT_MD_FILE, QUANT_JSON_FILE] if result.quantization is not None else [])
    files = ", ".join(listed) or "no files"
    print(f"\npublished in {cfg.artifacts}/: {files}, {MANIFEST_FILE}")
    if result.failures:
        print(f"{PROG}: error: {'; '.join(result.failures)}; left out of {MANIFEST_FILE}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    entry.exit(main)
