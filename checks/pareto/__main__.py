"""python -m checks.pareto: every model x exported file on accuracy, size, work and speed (see
--help)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from checks.pareto.report import write_reports
from checks.pareto.run import ParetoConfig, ParetoError, run
from common import entry
from common.data import DataError
from common.flags import parse
from common.floors import breaches
from mnist_edge.errors import MnistEdgeError

PROG = "python -m checks.pareto"


def parse_args(argv: list[str] | None = None) -> ParetoConfig:
    """Command-line flags -> ParetoConfig (flags, help and defaults come from the dataclass)."""
    return parse(ParetoConfig, argv, PROG,
                 "For every exported classifier file of every artifacts set (each registered "
                 "model: make train export MODEL=NAME): its MNIST test accuracy, its accuracy on "
                 "the reader report's single-digit photos, the model's parameters and "
                 "multiply-adds, the file's size and microcontroller arena, and its batch-1 p50 "
                 "and batch-256 throughput on this machine. Writes pareto.md, pareto.json and "
                 "pareto.png (accuracy against latency, marker area = file size) into OUT and "
                 "names the fastest file that reaches --floor.",
                 "Exit status: 0 when the report was written and every figure holds its "
                 "regression floor (common/floors.py), 1 when one does not (each named on "
                 "stderr) or on an error. Method: docs/pareto.md.")


def main(argv: list[str] | None = None) -> int:
    """Write the report; one stderr line and exit 1 on an expected error."""
    command = " ".join([PROG, shlex.join(sys.argv[1:] if argv is None else argv)]).strip()
    return entry.run(PROG, parse_args(argv), lambda cfg: _pareto(cfg, command),
                     (ParetoError, DataError, MnistEdgeError, OSError))


def _pareto(cfg: ParetoConfig, command: str) -> int:
    result = run(cfg, command, log=lambda line: print(line, file=sys.stderr))
    paths = write_reports(result, Path(cfg.out))
    c = result["choice"]
    best = c["fastest"]
    print(f"fastest file reaching {c['floor']:.1%}: " + (
        "none" if best is None else f"{best['folder']}/{best['path']} ({best['model']}, "
                                    f"{best['accuracy']:.2%}, {best['p50_us']:.0f} µs)"))
    print(f"wrote {', '.join(str(p) for p in paths.values())} ({result['wall_time_s']:.0f} s)")
    return entry.failed(PROG, result["errors"] + breaches("pareto", result), "FLOOR")


if __name__ == "__main__":
    entry.exit(main)
