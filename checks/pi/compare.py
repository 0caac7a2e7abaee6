"""Device vs host: the same images through the same API must give the same digits.

Backends are not bit-exact across CPUs (different SIMD kernels and rounding), so outputs may
differ a little; the predicted digit may not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from common.formats import INT8_STEPS, Tolerance

SOFTMAX_INT8_SCALE = 1 / 256  # TFLite's fixed int8 softmax output scale: one step of probability


@dataclass
class Row:
    """One target x file x backend: the figures the report shows, and what failed."""

    target: str
    key: str
    backend: str
    images: int
    required_images: int
    agreement: float | None = None
    accuracy: float | None = None
    host_accuracy: float | None = None
    max_diff: float | None = None
    diff_unit: str = ""
    tolerance: float | None = None
    ms_per_image: float | None = None
    host_ms_per_image: float | None = None
    install_bytes: int | None = None
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    information: bool = False  # an informational target's: its findings are notes, never failures

    @property
    def ok(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict:
        return dict(asdict(self), ok=self.ok)


def output_step(entry: dict) -> float:
    """Size of one quantization step of an int8 file's output, in probability."""
    quant = (entry.get("output") or {}).get("quantization") or {}
    return float(quant.get("scale") or SOFTMAX_INT8_SCALE)


def compare(row: Row, entry: dict, device: dict, host: dict, labels: np.ndarray,
            tol: Tolerance) -> Row:
    """Fill ``row`` from device and host outputs (dicts of labels/probabilities/raw arrays).

    ``tol`` is the file's tolerance from the format table: its rule against the host.
    """
    n = row.images
    d_lab, h_lab = device["labels"][:n], host["labels"][:n]
    row.agreement = float(np.mean(d_lab == h_lab))
    row.accuracy = float(np.mean(d_lab == labels[:n]))
    row.host_accuracy = float(np.mean(h_lab == labels[:n]))
    d_raw, h_raw = device["raw"][:n], host["raw"][:n]
    row.diff_unit, row.tolerance = tol.device_unit, tol.device_max_diff
    if tol.device_unit == INT8_STEPS:
        if np.issubdtype(d_raw.dtype, np.integer):
            row.max_diff = float(np.abs(d_raw.astype(np.int64) - h_raw.astype(np.int64)).max())
        else:  # int8 ONNX dequantizes its output to float32
            diff = np.abs(d_raw.astype(np.float64) - h_raw.astype(np.float64)).max()
            row.max_diff = float(diff / output_step(entry))
    else:
        row.max_diff = float(np.abs(device["probabilities"][:n].astype(np.float64)
                                    - host["probabilities"][:n]).max())
    return _judge(row, tol, int(np.sum(d_lab != h_lab)), "predicted digit differs from",
                  "outputs")


def compare_gate(row: Row, entry: dict, device: np.ndarray, host: np.ndarray,
                 labels: np.ndarray, threshold: float, tol: Tolerance) -> Row:
    """Fill ``row`` from a gate file's digit probabilities on the device and on the host: the
    decision at ``threshold`` may not change, the probability may differ within ``tol``."""
    from common.gate_scores import decide

    n = row.images
    d, h = device[:n].astype(np.float64), host[:n].astype(np.float64)
    d_dec, h_dec = decide(d, threshold), decide(h, threshold)
    row.agreement = float(np.mean(d_dec == h_dec))
    row.accuracy = float(np.mean(d_dec == labels[:n]))
    row.host_accuracy = float(np.mean(h_dec == labels[:n]))
    row.diff_unit, row.tolerance = tol.device_unit, tol.device_max_diff
    diff = float(np.abs(d - h).max()) if n else 0.0
    row.max_diff = diff / output_step(entry) if tol.device_unit == INT8_STEPS else diff
    return _judge(row, tol, int(np.sum(d_dec != h_dec)), "the gate decides unlike",
                  "digit probabilities")


def _judge(row: Row, tol: Tolerance, changed: int, answer: str, outputs: str) -> Row:
    """Add to ``row`` each way its filled figures break ``tol`` against the host."""
    n = row.images
    if n < row.required_images:
        row.failures.append(f"ran {n} images, needs {row.required_images}")
    if row.agreement is not None and row.agreement < tol.device_min_agreement:
        row.failures.append(f"{answer} the host on {changed} of {n} images")
    if row.max_diff is not None and row.tolerance is not None and row.max_diff > row.tolerance:
        row.failures.append(f"{outputs} differ from the host by {row.max_diff:.3g} "
                            f"{row.diff_unit} (allowed {row.tolerance:g})")
    return row


def as_information(row: Row) -> Row:
    """An informational target's row: what broke the rules is noted, never failed."""
    row.notes[:0], row.failures = row.failures, []
    row.information = True
    return row


def load_outputs(path: Path) -> dict:
    """labels / probabilities / raw arrays written by a predict job (checks/worker.py)."""
    with np.load(path) as npz:
        return {k: npz[k] for k in ("labels", "probabilities", "raw")}
