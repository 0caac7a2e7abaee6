"""python -m checks.reader: the number reader on photos of handwritten numbers, thin and broken
single digits through predict_files, and read's speed (see --help)."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

from checks.reader.report import write_reports
from checks.reader.run import ReaderConfig, run
from common import entry
from common import photos as sets
from common.data import DataError
from common.flags import parse
from common.floors import breaches
from mnist_edge.errors import MnistEdgeError

PROG = "python -m checks.reader"


def parse_args(argv: list[str] | None = None) -> ReaderConfig:
    """Command-line flags -> ReaderConfig (flags, help and defaults come from the dataclass)."""
    return parse(ReaderConfig, argv, PROG,
                 "Make two seeded sets of photos from MNIST digits of one split: numbers of 2-6 "
                 "digits (touching, thin, broken, slanted, mixed sizes, on uneven paper, blurred, "
                 "JPEG) and single digits with thin or broken strokes. Read the numbers with "
                 "Classifier.read, classify the single digits with predict_files (and the same "
                 "MNIST digits with predict), time read against predict_files on 640x480 "
                 "photos, and write reader.md, reader.json and reader_failures.png into OUT. "
                 "Report on --split test; tune the reader on --split train.",
                 "Exit status: 0 when the report was written and every figure holds its "
                 "regression floor (common/floors.py; the targets in the report inform, they "
                 "do not gate), 1 when one does not (each named on stderr) or on an error. "
                 "Method: docs/reader.md.")


def main(argv: list[str] | None = None) -> int:
    """Write the sets (--save-sets) or the report; one stderr line and exit 1 on an expected
    error."""
    command = " ".join([PROG, shlex.join(sys.argv[1:] if argv is None else argv)]).strip()
    return entry.run(PROG, parse_args(argv), lambda cfg: _reader(cfg, command),
                     (DataError, MnistEdgeError, OSError))


def _reader(cfg: ReaderConfig, command: str) -> int:
    if cfg.save_sets:
        from common.data import load_mnist

        start = time.perf_counter()
        digits = sets.split_digits(load_mnist(cfg.data), cfg.split)
        truth = sets.save_sets(digits, cfg.save_sets, cfg.seed, cfg.n_numbers, cfg.n_singles)
        print(f"wrote {cfg.n_numbers} number and {cfg.n_singles} single-digit photos "
              f"({digits.split} split, seed {cfg.seed}) and {truth} "
              f"({time.perf_counter() - start:.0f} s)")
        return 0
    result = run(cfg, command)
    paths = write_reports(result, Path(cfg.out), cfg.failures)
    for t in result.data["targets"]:
        status = "not measured" if t["met"] is None else "met   " if t["met"] else "MISSED"
        print(f"  {status} {t['target']}: {t['value']} (goal {t['goal']})")
    print(f"wrote {', '.join(str(p) for p in paths.values())} "
          f"({result.data['wall_time_s']:.0f} s)")
    return entry.failed(PROG, breaches("reader", result.data), "FLOOR")


if __name__ == "__main__":
    entry.exit(main)
