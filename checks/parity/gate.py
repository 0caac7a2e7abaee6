"""The "no digit" gate's part of a parity run: each of its files on every backend that runs it,
against ``gate.keras`` on ``nondigits.verification_set`` (MNIST's test digits and held-out
non-digits), and against itself elsewhere.

Each pair's decisions at the manifest's threshold are held to its row of the gate's format table
by ``common.gate_scores``: agreement with the Keras gate's decisions, accuracy against the truth,
and, for float files, the largest difference of the digit probability.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from checks.parity import pairs as pairs_mod
from checks.parity.compare import CrossReport, GatePairReport, across_backends, gate_against_keras
from common.gate_scores import GateReference, reference, refusal_rates


@dataclass
class GateParity:
    """Every figure of the gate's part of a run."""

    seed: int
    source_sha256: str             # of gate.keras
    ref: GateReference             # the images, their truth and the Keras gate's scores
    pairs: list[GatePairReport]
    cross: list[CrossReport]

    @property
    def failures(self) -> list[str]:
        return [f for r in (*self.pairs, *self.cross) for f in r.failures]

    def keras_figures(self) -> dict:
        """The Keras gate on the verification set: accuracy and refusal rates."""
        false, right = refusal_rates(self.ref.decisions, self.ref.labels)
        return {"accuracy": self.ref.accuracy, "test_false_refusals": false,
                "heldout_refusals": right, "digits": int(np.sum(self.ref.labels == 1)),
                "nondigits": int(np.sum(self.ref.labels == 0))}


def check(files, keras_file: Path, source_sha256: str, threshold: float, x_test: np.ndarray,
          wheres: list[pairs_mod.Where], folder: Path, seed: int,
          log: Callable[[str], None] = print) -> GateParity:
    """Run every gate file (manifest entries) on every usable backend over the verification set
    of ``x_test`` and ``seed``; compare each with the Keras gate and with itself elsewhere."""
    from common.tf import load_keras_model

    model = load_keras_model(keras_file, ((28, 28, 1), (2,)), "the mnist-edge \"no digit\" gate")
    ref = reference(model, x_test, seed, threshold)
    false, right = refusal_rates(ref.decisions, ref.labels)
    log(f"parity: gate on {int(np.sum(ref.labels == 1)):,} test digits and "
        f"{int(np.sum(ref.labels == 0)):,} held-out non-digits (seed {seed}), threshold "
        f"{threshold:.3f}: Keras {ref.accuracy:.2%} right, refuses {right:.1%} of non-digits "
        f"and {false:.2%} of digits")
    runs = pairs_mod.run_pairs(pairs_mod.plan(files, wheres), {w.backend: w for w in wheres},
                               folder, ref.images, log)
    return GateParity(seed, source_sha256, ref, [gate_against_keras(r, ref) for r in runs],
                      across_backends(runs, threshold))
