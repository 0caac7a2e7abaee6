"""python -m checks.parity: every exported format on every installed backend vs Keras
(see --help)."""

from __future__ import annotations

import json
import sys

from checks.parity.run import ParityConfig, ParityError, run
from common import entry
from common.data import DataError
from common.flags import parse
from common.floors import applies, breaches
from common.tf import KerasModelError

PROG = "python -m checks.parity"


def parse_args(argv: list[str] | None = None) -> ParityConfig:
    """Command-line flags -> ParityConfig (flags, help and defaults come from the dataclass)."""
    return parse(ParityConfig, argv, PROG,
                 "Run every file listed in ARTIFACTS/manifest.json on every installed backend "
                 "(ai-edge-litert, tflite-runtime in its own venv, tf.lite, onnxruntime) through "
                 "mnist_edge.Classifier over the MNIST test set, compare each with the Keras model "
                 "and with the same file on the other backends, and write parity.md, parity.json "
                 "and parity.png into OUT. When the export holds the line reader, its files are "
                 "compared the same way with line_reader.keras on lines of MNIST test digits "
                 "(LineReader.scores, read greedily); when it holds the \"no digit\" gate, its "
                 "files' decisions at the manifest's threshold are compared with gate.keras's on "
                 "MNIST's test digits and held-out generated non-digits. Tolerances: the format "
                 "table, common/formats.py.",
                 "Exit status: 0 when every pair is within tolerance and every figure holds its "
                 "regression floor (common/floors.py), 1 when one does not (each printed on "
                 "stderr, naming the pair and the figure) or on an error.")


def main(argv: list[str] | None = None) -> int:
    """Run parity; one stderr line per broken tolerance or for an error, exit status 1."""
    return entry.run(PROG, parse_args(argv), _parity, (ParityError, DataError, KerasModelError))


def _parity(cfg: ParityConfig) -> int:
    result = run(cfg)
    for r in (*result.pairs, *(result.reader.pairs if result.reader else ()),
              *(result.gate.pairs if result.gate else ())):
        print(f"  {'ok  ' if r.passed else 'FAIL'} {r.run.pair.name}")
    print(f"wrote {', '.join(str(p) for p in result.reports.values())} ({result.seconds:.0f} s)")
    if entry.failed(PROG, result.failures):
        print(f"{PROG}: {len(result.failures)} failure(s): tolerances broken or pairs not run; "
              f"see {result.reports['md']}",
              file=sys.stderr)
        return 1
    data = json.loads(result.reports["json"].read_text())
    if not applies(data):
        print(f"regression floors not applied: they hold MNIST figures, and this model was "
              f"trained on {result.dataset['name']}")
    return entry.failed(PROG, breaches("parity", data), "FLOOR")


if __name__ == "__main__":
    entry.exit(main)
