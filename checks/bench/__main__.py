"""python -m checks.bench: latency, throughput, load time and memory of every export vs the
baselines."""

from __future__ import annotations

from pathlib import Path

from checks.bench.report import write_reports
from checks.bench.run import BenchError, SweepConfig, run
from common import entry
from common.flags import parse
from common.floors import applies, breaches
from mnist_edge.errors import MnistEdgeError

PROG = "python -m checks.bench"


def parse_args(argv: list[str] | None = None) -> SweepConfig:
    """Command-line flags -> SweepConfig (flags, help and defaults come from the dataclass)."""
    return parse(SweepConfig, argv, PROG,
                 "Time every file in ARTIFACTS/manifest.json on every installed backend and thread "
                 "count with `mnist-edge bench` (a fresh process each), next to the textbook "
                 "interpreter loop, Keras, a default onnxruntime session and the bare interpreter "
                 "call, one image from a cold start, and the live reader (a generated video on one "
                 "CPU; outside --quick, memory over a long live stream); write bench.md, "
                 "bench.json and bench.png into OUT.",
                 "Exit status: 0 when every figure holds its regression floor (common/floors.py; "
                 "the targets in the report inform, they do not gate), 1 when one does not (each "
                 "named on stderr) or on an error.")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the reports; one stderr line and exit 1 on an expected error."""
    return entry.run(PROG, parse_args(argv), _bench, (BenchError, MnistEdgeError))


def _bench(cfg: SweepConfig) -> int:
    result = run(cfg)
    paths = write_reports(result, Path(cfg.out))
    for t in result["targets"]:
        print(f"  {'met   ' if t['met'] else 'MISSED'} {t['target']}: {t['value']} "
              f"(goal {t['goal']})")
    print(f"wrote {', '.join(str(p) for p in paths.values())} ({result['wall_time_s']:.0f} s)")
    if not applies(result):
        print(f"regression floors not applied: they hold MNIST figures, and this model was "
              f"trained on {result['dataset']['name']}")
    return entry.failed(PROG, breaches("bench", result), "FLOOR")


if __name__ == "__main__":
    entry.exit(main)
