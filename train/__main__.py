"""python -m train: train a digit classifier (the reference CNN, or --model edge), or with --model
line_reader the line reader, with --model gate the "no digit" gate, and write artifacts/ (see
--help)."""

from __future__ import annotations

import sys
from pathlib import Path

from common import entry
from common.artifacts import GATE_METRICS_FILE, METRICS_FILE, READER_METRICS_FILE
from common.data import DataError
from common.flags import parse
from train import gate_train, line_train
from train.model import DEFAULT_CLASSIFIER
from train.train import TrainConfig, run, summary

PROG = "python -m train"


Config = TrainConfig | line_train.LineReaderConfig | gate_train.GateConfig


def parse_args(argv: list[str] | None = None) -> Config:
    """Command-line flags -> the chosen model's config (flags, help and defaults come from the
    dataclass; ``--model line_reader --help`` lists the line reader's)."""
    args = sys.argv[1:] if argv is None else argv
    if _model(args) == line_train.MODEL:
        return parse(line_train.LineReaderConfig, argv, PROG,
                     "Train the mnist-edge line reader (reads a whole line of digits, CTC) on "
                     "photographed lines of MNIST training digits and write it, its history, "
                     "curves and metrics to --out.",
                     "Offline: --data or MNIST_DATA=path as for the classifier.")
    if _model(args) == gate_train.MODEL:
        return parse(gate_train.GateConfig, argv, PROG,
                     "Train the mnist-edge \"no digit\" gate (a small CNN beside the classifier "
                     "that tells one handwritten digit from anything else) on MNIST training "
                     "digits against generated non-digits, set its threshold on held-out data "
                     "and write it and its metrics to --out.",
                     "Offline: --data or MNIST_DATA=path as for the classifier.")
    return parse(TrainConfig, argv, PROG,
                 "Train an mnist-edge digit classifier (the reference CNN unless --model names "
                 "another) on MNIST and write the model, its history, "
                 "training-curve and confusion-matrix plots and test metrics to --out.",
                 "Offline: --data or MNIST_DATA=path takes a Keras mnist.npz or a folder of the "
                 "four IDX files (gzipped or raw); without either, Keras downloads and caches "
                 "MNIST.")


def _model(args: list[str]) -> str:
    """The value of --model (or --model=...) in ``args``; the default classifier when absent."""
    for i, arg in enumerate(args):
        if arg == "--model" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--model="):
            return arg.partition("=")[2]
    return DEFAULT_CLASSIFIER


def main(argv: list[str] | None = None) -> int:
    """Entry point: one line on stderr and exit 1 for expected mistakes."""
    cfg = parse_args(argv)
    # every published set writes a new metrics file (it names the weights)
    metrics = (READER_METRICS_FILE if isinstance(cfg, line_train.LineReaderConfig)
               else GATE_METRICS_FILE if isinstance(cfg, gate_train.GateConfig) else METRICS_FILE)
    return entry.run(PROG, cfg, _train, (DataError, ValueError, OSError),
                     published=Path(cfg.out) / metrics)


def _train(cfg: Config) -> int:
    if isinstance(cfg, gate_train.GateConfig):
        print(gate_train.summary(gate_train.run(cfg), cfg.out))
    elif isinstance(cfg, line_train.LineReaderConfig):
        print(line_train.summary(line_train.run(cfg), cfg.out))
    else:
        print(summary(run(cfg), cfg.out))
    return 0


if __name__ == "__main__":
    entry.exit(main)
