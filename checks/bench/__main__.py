"""python -m checks.bench: latency, throughput, load time and memory of every export vs the baselines."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from checks.bench.report import write_reports
from checks.bench.run import SweepConfig, BenchError, run
from mnist_edge.errors import MnistEdgeError
from common.flags import positive_int

PROG = "python -m checks.bench"


def parse_args(argv: list[str] | None = None) -> SweepConfig:
    """Command-line flags -> SweepConfig (defaults come from the dataclass)."""
    d = SweepConfig()
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Time every file in ARTIFACTS/manifest.json on every installed backend and thread "
                    "count with `mnist-edge bench` (a fresh process each), next to the textbook "
                    "interpreter loop, Keras, a default onnxruntime session and the bare interpreter "
                    "call, and one image from a cold start; write bench.md, bench.json and bench.png "
                    "into OUT.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--artifacts", type=str, default=d.artifacts, help="folder with manifest.json and model.keras")
    p.add_argument("--data", type=str, default=d.data,
                   help="MNIST npz or IDX folder; None: $MNIST_DATA, else Keras's download")
    p.add_argument("--out", type=str, default=d.out, help="folder for the reports")
    p.add_argument("--threads", type=str, default=d.threads, help="comma-separated interpreter thread counts")
    p.add_argument("--backends", type=str, default=d.backends,
                   help="'all' or comma-separated: litert, tflite-runtime, tensorflow, onnxruntime")
    p.add_argument("--runs", type=positive_int, default=d.runs, help="timed batch-1 calls per row and baseline")
    p.add_argument("--images", type=positive_int, default=d.images, help="test images for accuracy and agreement")
    p.add_argument("--rounds", type=positive_int, default=d.rounds,
                   help="repetitions of the whole sweep (alternating order); medians are reported")
    p.add_argument("--seconds-per-batch", type=float, default=d.seconds_per_batch,
                   help="throughput timing per batch size")
    p.add_argument("--cli-repeats", type=positive_int, default=d.cli_repeats,
                   help="cold-start runs of each one-image command")
    p.add_argument("--quick", action="store_true", help="1 round, 200 runs, 1,000 images, short throughput timing")
    p.add_argument("--tflite-python", type=str, default=d.tflite_python,
                   help="Python of the venv with tflite-runtime (numpy<2), used when this one cannot load it")
    p.add_argument("--runtime-python", type=str, default=d.runtime_python,
                   help="Python of the device-like venv (no TensorFlow) for the one-image test; else this one")
    return SweepConfig(**vars(p.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the reports; one stderr line and exit 1 on an expected error."""
    cfg = parse_args(argv)
    try:
        result = run(cfg)
    except (BenchError, MnistEdgeError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    paths = write_reports(result, Path(cfg.out))
    for t in result["targets"]:
        print(f"  {'met   ' if t['met'] else 'MISSED'} {t['target']}: {t['value']} (goal {t['goal']})")
    print(f"wrote {', '.join(str(p) for p in paths.values())} ({result['wall_time_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
