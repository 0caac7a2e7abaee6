"""python -m train: train the reference CNN and write artifacts/ (see --help)."""

from __future__ import annotations

import sys

from common.data import DataError
from common.flags import parse
from train.train import TrainConfig, run, summary


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    """Command-line flags -> TrainConfig (flags, help and defaults come from the dataclass)."""
    return parse(TrainConfig, argv, "python -m train",
                 "Train the mnist-edge reference CNN on MNIST and write the model, its history, "
                 "training-curve and confusion-matrix plots and test metrics to --out.",
                 "Offline: --data or MNIST_DATA=path takes a Keras mnist.npz or a folder of the "
                 "four IDX files (gzipped or raw); without either, Keras downloads and caches "
                 "MNIST.")


def main(argv: list[str] | None = None) -> int:
    """Entry point: one line on stderr and exit 1 for expected mistakes."""
    cfg = parse_args(argv)
    try:
        metrics = run(cfg)
    except (DataError, ValueError, FileNotFoundError, PermissionError) as exc:
        print(f"python -m train: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("python -m train: interrupted; artifacts left as they were", file=sys.stderr)
        return 130
    print(summary(metrics, cfg.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
