"""python -m train: train the reference CNN and write artifacts/ (see --help)."""

from __future__ import annotations

from pathlib import Path

from common import entry
from common.artifacts import METRICS_FILE
from common.data import DataError
from common.flags import parse
from train.train import TrainConfig, run, summary

PROG = "python -m train"


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    """Command-line flags -> TrainConfig (flags, help and defaults come from the dataclass)."""
    return parse(TrainConfig, argv, PROG,
                 "Train the mnist-edge reference CNN on MNIST and write the model, its history, "
                 "training-curve and confusion-matrix plots and test metrics to --out.",
                 "Offline: --data or MNIST_DATA=path takes a Keras mnist.npz or a folder of the "
                 "four IDX files (gzipped or raw); without either, Keras downloads and caches "
                 "MNIST.")


def main(argv: list[str] | None = None) -> int:
    """Entry point: one line on stderr and exit 1 for expected mistakes."""
    cfg = parse_args(argv)
    # every published set writes a new metrics.json (it names the weights)
    return entry.run(PROG, cfg, _train, (DataError, ValueError, OSError),
                     published=Path(cfg.out) / METRICS_FILE)


def _train(cfg: TrainConfig) -> int:
    print(summary(run(cfg), cfg.out))
    return 0


if __name__ == "__main__":
    entry.exit(main)
