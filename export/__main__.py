"""python -m export: model.keras -> int8/float TFLite, float/int8 ONNX + manifest.json (see --help)."""

from __future__ import annotations

import argparse
import sys

from common.artifacts import MANIFEST_FILE
from common.data import DataError
from common.flags import positive_int
from common.formats import KEYS
from export.export import MAX_OPSET, MIN_OPSET, ExportConfig, ExportError, run

PROG = "python -m export"


def _opset(text: str) -> int:
    value = positive_int(text)
    if not MIN_OPSET <= value <= MAX_OPSET:
        raise argparse.ArgumentTypeError(f"{value} is not supported; choose {MIN_OPSET}..{MAX_OPSET}")
    return value


def parse_args(argv: list[str] | None = None) -> ExportConfig:
    """Command-line flags -> ExportConfig (defaults come from the dataclass)."""
    d = ExportConfig()
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Export the trained Keras model (ARTIFACTS/model.keras) to every format, verify "
                    "each file against Keras on the whole MNIST test set, and publish the files "
                    f"with {MANIFEST_FILE} atomically into ARTIFACTS.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="Exit status: 0 when every requested format passed, 1 when one failed verification "
               "(the passing files are published with a manifest listing only them) or on an error "
               "(nothing is published).",
    )
    p.add_argument("--artifacts", type=str, default=d.artifacts,
                   help="folder holding model.keras; the exported files are published into it")
    p.add_argument("--formats", type=str, default=d.formats,
                   help=f"'all' or comma-separated keys: {', '.join(KEYS)}")
    p.add_argument("--calibration-samples", type=positive_int, default=d.calibration_samples,
                   help="training images used to calibrate the int8 formats")
    p.add_argument("--opset", type=_opset, default=d.opset,
                   help=f"ONNX opset ({MIN_OPSET}..{MAX_OPSET})")
    p.add_argument("--data", type=str, default=d.data,
                   help="mnist.npz or IDX folder; unset: $MNIST_DATA, else the Keras download")
    p.add_argument("--seed", type=int, default=d.seed, help="seed for the calibration sample")
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's and the converters' logs")
    return ExportConfig(**vars(p.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    """Entry point: one line on stderr and a non-zero exit for expected problems."""
    cfg = parse_args(argv)
    try:
        result = run(cfg, log=lambda line: print(line, flush=True))
    except (ExportError, DataError, ValueError, FileNotFoundError, PermissionError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
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


if __name__ == "__main__":
    sys.exit(main())
