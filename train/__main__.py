"""python -m train: train the reference CNN and write artifacts/ (see --help)."""

from __future__ import annotations

import argparse
import sys

from common.data import DataError
from common.flags import fraction, positive_int
from train.model import OPTIMIZERS
from train.train import LR_SCHEDULES, TrainConfig, run, summary


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    """Command-line flags -> TrainConfig (defaults come from the dataclass)."""
    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="python -m train",
        description="Train the mnist-edge reference CNN on MNIST and write the model, its history, "
                    "training-curve and confusion-matrix plots and test metrics to --out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="Offline: --data or MNIST_DATA=path takes a Keras mnist.npz or a folder of the four "
               "IDX files (gzipped or raw); without either, Keras downloads and caches MNIST.",
    )
    p.add_argument("--data", type=str, default=d.data,
                   help="mnist.npz or IDX folder (default: $MNIST_DATA, else download)")
    p.add_argument("--out", type=str, default=d.out, help="artifacts folder to publish into")
    p.add_argument("--epochs", type=positive_int, default=d.epochs, help="training epochs")
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size, help="batch size")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer, help="optimizer")
    p.add_argument("--learning-rate", type=float, default=d.learning_rate,
                   help="learning rate (default: the optimizer's Keras default)")
    p.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=d.lr_schedule,
                   help="learning-rate schedule: cosine decays to 0 over the run")
    p.add_argument("--validation-split", type=fraction, default=d.validation_split,
                   help="fraction of the training data held out for validation")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed for a reproducible run")
    p.add_argument("--limit", type=positive_int, default=d.limit,
                   help="use only the first N training images (quick runs)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from its last completed epoch")
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's C++ logs")
    return TrainConfig(**vars(p.parse_args(argv)))


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
