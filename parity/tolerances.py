"""The parity tolerances, in one place: what 'answers like the Keras model' means for each file.

Figures are fractions (0.9995 = 99.95%); accuracy differences are fractions too (0.003 = 0.3 pt).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tolerances:
    """Pass rules for a (format, backend) pair against Keras, and for one file on two backends."""

    float_min_agreement: float = 0.9995       # float files: same top-1 as Keras on >= 99.95% of images
    tflite_float_max_prob_diff: float = 1e-4  # float TFLite: max |p - p_keras| over all images and classes
    onnx_float_max_prob_diff: float = 1e-5    # float ONNX: the same, tighter (no XNNPACK reassociation)
    int8_max_accuracy_diff: float = 0.003     # int8 files: accuracy within 0.3 point of Keras (either way)
    int8_min_agreement: float = 0.995         # int8 files: same top-1 as Keras on >= 99.5% of images
    cross_backend_min_agreement: float = 0.999  # one file on two backends: same top-1 on >= 99.9%

    def max_prob_diff(self, fmt: str, precision: str) -> float | None:
        """The max |Δprob| allowed against Keras (float files only)."""
        if precision != "float32":
            return None
        return self.onnx_float_max_prob_diff if fmt == "onnx" else self.tflite_float_max_prob_diff

    def min_agreement(self, precision: str) -> float:
        """The top-1 agreement with Keras required of a file of this precision."""
        return self.float_min_agreement if precision == "float32" else self.int8_min_agreement

    def rule(self, fmt: str, precision: str) -> str:
        """The pass rule of a pair in words, for the report."""
        if precision == "float32":
            return (f"agreement >= {self.float_min_agreement:.2%}, "
                    f"max |Δp| <= {self.max_prob_diff(fmt, precision):.0e}")
        return (f"|Δ accuracy| <= {self.int8_max_accuracy_diff * 100:.1f} pt, "
                f"agreement >= {self.int8_min_agreement:.2%}")

    def pair_failures(self, name: str, fmt: str, precision: str, accuracy_delta: float,
                      agreement: float, max_prob_diff: float) -> list[str]:
        """Why pair ``name`` (e.g. 'tflite_int8 on litert') breaks a tolerance; [] when it passes."""
        found = []
        need = self.min_agreement(precision)
        if agreement < need:
            found.append(f"{name}: top-1 agreement with Keras {agreement:.2%} is below {need:.2%}")
        limit = self.max_prob_diff(fmt, precision)
        if limit is not None and max_prob_diff > limit:
            found.append(f"{name}: max |Δprob| vs Keras {max_prob_diff:.2e} is above {limit:.0e}")
        if precision != "float32" and abs(accuracy_delta) > self.int8_max_accuracy_diff + 1e-12:
            found.append(f"{name}: accuracy differs from Keras by {accuracy_delta * 100:+.2f} pt, "
                         f"beyond ±{self.int8_max_accuracy_diff * 100:.1f} pt")
        return found

    def cross_failures(self, name: str, agreement: float) -> list[str]:
        """Why one file on two backends (``name``) disagrees too much; [] when it passes."""
        need = self.cross_backend_min_agreement
        if agreement < need:
            return [f"{name}: top-1 agreement {agreement:.2%} is below {need:.2%}"]
        return []


DEFAULT = Tolerances()
