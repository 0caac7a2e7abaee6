"""The line reader's part of a parity run: each of its files on every backend that runs it,
against ``line_reader.keras`` on lines of MNIST test digits, and against itself elsewhere.

Lines come from ``common.strips.make_lines`` (the test split, a seed of their own, so they differ
from the lines the export verified on); each pair is held to its row of the reader's format table
by ``common.line_scores``, the comparison export verification makes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from checks.parity import pairs as pairs_mod
from checks.parity.compare import CrossReport, LinePairReport, across_backends, reader_against_keras
from common.line_scores import ReaderReference, reference
from common.strips import CLASSES, HEIGHT


@dataclass
class ReaderParity:
    """Every figure of the line reader's part of a run."""

    seed: int
    source_sha256: str             # of line_reader.keras
    ref: ReaderReference           # the lines and the Keras reader's scores of them
    pairs: list[LinePairReport]
    cross: list[CrossReport]

    @property
    def failures(self) -> list[str]:
        return [f for r in (*self.pairs, *self.cross) for f in r.failures]


def check(files, keras_file: Path, source_sha256: str, wheres: list[pairs_mod.Where],
          folder: Path, data: str | None, seed: int, n: int,
          log: Callable[[str], None] = print) -> ReaderParity:
    """Run every reader file (manifest entries) on every usable backend over ``n`` lines of
    seed ``seed`` and compare each with the Keras reader and with itself on other backends."""
    from common.tf import load_keras_model

    model = load_keras_model(keras_file, ((HEIGHT, None, 1), (None, CLASSES)),
                             "the mnist-edge line reader")
    ref = reference(model, data, seed, n)
    log(f"parity: line reader on {len(ref.lines.labels)} lines of MNIST test digits (seed "
        f"{seed}), Keras reads {ref.exact_rate:.2%} exactly")
    runs = pairs_mod.run_pairs(pairs_mod.plan(files, wheres), {w.backend: w for w in wheres},
                               folder, ref.lines, log)
    return ReaderParity(seed, source_sha256, ref, [reader_against_keras(r, ref) for r in runs],
                        across_backends(runs))

