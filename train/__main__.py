"""python -m train: train the reference CNN and write artifacts/ (see --help)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from common.artifacts import METRICS_FILE
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
    before = published_marker(cfg.out)
    try:
        metrics = run(cfg)
        print(summary(metrics, cfg.out))
    except (DataError, ValueError, OSError) as exc:
        print(f"python -m train: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"python -m train: {interrupted(before, published_marker(cfg.out))}",
              file=sys.stderr)
        return 130
    return 0


def published_marker(folder: str) -> bytes | None:
    """The folder's metrics.json: every published set writes a new one (it names the weights)."""
    try:
        return (Path(folder) / METRICS_FILE).read_bytes()
    except OSError:
        return None


def interrupted(before: bytes | None, after: bytes | None) -> str:
    """What a Ctrl-C left behind, from a file the publish replaces, read before and after."""
    if after is not None and after != before:
        return "interrupted after publishing: the new set is in place"
    return "interrupted; artifacts left as they were"


if __name__ == "__main__":
    code = main()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # done: a Ctrl-C during shutdown changes nothing
    sys.exit(code)
