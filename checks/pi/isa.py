"""x86 instruction-set parity: every classifier file, on each CPU model, against Keras and, for an
int8 file, against the float file of its format.

Backends pick their kernels by CPUID (AVX-512 VNNI, AVX2, SSE4.2), so an int8 file can answer
differently on an older x86 CPU than on the machine that exported it. Each CPU model's answers
are held to the file's rule against Keras in the format table (``common/formats.py``), the same
rule export verification uses, and an int8 file's answers to ``float_min_agreement`` against the
float file of its format.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from checks.pi.targets import CLASSIFIER_KEYS
from common.formats import Tolerance

HOST = "host"
FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni")  # shown per CPU


@dataclass
class IsaRow:
    """One CPU model x classifier file x backend: its figures against Keras and the float file."""

    target: str                  # the target's key, or "host"
    key: str
    backend: str
    images: int
    required_images: int
    accuracy: float | None = None
    keras_accuracy: float | None = None
    keras_agreement: float | None = None   # share of images with Keras's top-1 digit
    max_prob_diff: float | None = None     # max |p - p_keras| over all images and classes
    float_key: str | None = None           # an int8 file's float file of the same format
    float_agreement: float | None = None   # share of images with the float file's top-1 digit
    host_agreement: float | None = None    # share with the host's digit on the same backend
    unsupported: str | None = None         # the backend refused this CPU: why, in one line
    ms_per_image: float | None = None      # under emulation: indicative only
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict:
        return dict(asdict(self), ok=self.ok)


def judge(row: IsaRow, labels: np.ndarray, probabilities: np.ndarray, keras: np.ndarray,
          truth: np.ndarray, tol: Tolerance, float_labels: np.ndarray | None = None) -> IsaRow:
    """Fill ``row`` from one run's first ``row.images`` answers and add each rule it breaks.

    ``keras`` is the Keras model's probabilities and ``truth`` the labels of the same images;
    ``float_labels`` the float file's digits, compared when ``tol`` bounds an int8 file's
    agreement with its float file.
    """
    n = row.images
    if n < row.required_images:
        row.failures.append(f"ran {n:,} images, needs {row.required_images:,}")
    labels, keras_labels = labels[:n], keras[:n].argmax(axis=1)
    row.accuracy = float(np.mean(labels == truth[:n]))
    row.keras_accuracy = float(np.mean(keras_labels == truth[:n]))
    row.keras_agreement = float(np.mean(labels == keras_labels))
    row.max_prob_diff = float(np.abs(probabilities[:n].astype(np.float64)
                                     - keras[:n].astype(np.float64)).max())
    row.failures += [f.split(": ", 1)[1] for f in tol.against_keras(
        row.key, row.accuracy - row.keras_accuracy, row.keras_agreement, row.max_prob_diff)]
    if float_labels is not None and tol.float_min_agreement is not None:
        row.float_agreement = float(np.mean(labels == float_labels[:n]))
        if row.float_agreement < tol.float_min_agreement:
            changed = int(np.sum(labels != float_labels[:n]))
            row.failures.append(f"top-1 agreement with {row.float_key} {row.float_agreement:.2%} "
                                f"is below {tol.float_min_agreement:.2%} ({changed} of {n:,} "
                                "images answered differently)")
    return row


def unsupported(row: IsaRow, message: str) -> IsaRow:
    """Mark ``row`` as a backend that refuses this CPU model: reported, not a failure."""
    row.unsupported = (message.strip().splitlines() or ["no message"])[-1][:300]
    return row


def float_partner(key: str, entries: list[dict]) -> str | None:
    """The float file of an int8 file's format (None for a float file or when none is listed)."""
    entry = next(e for e in entries if e["key"] == key)
    if entry.get("precision") != "int8":
        return None
    return next((e["key"] for e in entries if e.get("format") == entry.get("format")
                 and e.get("precision") == "float32" and e["key"] in CLASSIFIER_KEYS), None)


def host_cpu(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict:
    """The host's CPU model name and which of ``FLAGS`` it has (from /proc/cpuinfo)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return {"model": "unknown", "flags": []}
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    have = set(fields.get("flags", "").split())
    return {"model": fields.get("model name", "unknown"), "flags": [f for f in FLAGS if f in have]}
