"""The golden set and its rule: what the self-test (``mnist_edge.selftest``) compares.

``make export`` writes ``golden.npz`` beside the model files and lists it in the manifest's
``golden`` section: a few MNIST test digits with a clear margin between their two best classes
(and lines of test digits for the line reader), and each file's outputs on them as the export
machine's interpreter gave them. A file passes when, run here, it gives the same answer on every
golden input (the digit; the gate's decision at its threshold; the line reader's greedy reading)
and its outputs differ from the export's by at most the rule the manifest gives for it, taken
from the format table: a number of quantization steps for int8 files, of probability for float
ones. An interpreter whose kernels are wrong on this CPU fails here instead of answering wrong
with confidence.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from mnist_edge.digest import sha256_hex
from mnist_edge.errors import IntegrityError, ModelError, SelfTestError
from mnist_edge.modelfile import read_regular_file

if TYPE_CHECKING:
    from mnist_edge.linereader import LineReader
    from mnist_edge.manifest import FileEntry, Manifest

SECTION = "golden"                    # the manifest's key
MAX_GOLDEN_BYTES = 16 * 1024 * 1024
INT8_STEPS, PROBABILITY = "int8 steps", "probability"
_EXPORT_AGAIN = "export again (make export) to write it"


@dataclass(frozen=True)
class Rule:
    """How far one file's outputs may move from the export's: ``max_diff`` in ``unit``; ``step``
    is one quantization step of its output in probability (int8 files)."""

    unit: str
    max_diff: float
    step: float | None = None


@dataclass(frozen=True)
class Golden:
    """The golden inputs, and each file's outputs and rule (by format key)."""

    digits: np.ndarray            # uint8 [N, 28, 28], light ink on dark like MNIST
    labels: np.ndarray            # int [N], the true digits
    strips: np.ndarray            # uint8 [M, height, W]: lines for the line reader (M may be 0)
    texts: list[str]              # the digits of each line
    outputs: dict[str, np.ndarray]
    rules: dict[str, Rule]


@dataclass(frozen=True)
class SelfTest:
    """One file's self-test on one backend."""

    key: str
    file: str
    backend: str
    inputs: int                   # golden inputs run
    changed: int                  # inputs answered unlike the export
    max_diff: float               # in ``unit``
    allowed: float
    unit: str
    error: str | None = None      # the file could not be run here: why

    @property
    def passed(self) -> bool:
        return self.error is None and self.changed == 0 and self.max_diff <= self.allowed

    def summary(self) -> str:
        """What was measured, in words: 'on litert: 100 of 100 golden answers as at export,
        outputs within 2 int8 steps of it (allowed 24)'."""
        if self.error is not None:
            return f"on {self.backend}: {self.error}"
        same = self.inputs - self.changed
        diff = (f"{_figure(self.max_diff)} {self.unit}" if self.unit == INT8_STEPS
                else f"|Δp| {_figure(self.max_diff)}")
        return (f"on {self.backend}: {same} of {self.inputs} golden answers as at export, "
                f"outputs {'within' if self.max_diff <= self.allowed else 'differ by'} {diff} "
                f"(allowed {_figure(self.allowed)})")


def read_golden(manifest: Manifest) -> Golden:
    """The manifest's golden set, its size and sha256 checked; ModelError without one."""
    section = manifest.data.get(SECTION)
    folder = manifest.path.parent
    if not isinstance(section, dict) or not isinstance(section.get("path"), str):
        raise ModelError(f"{manifest.path}: lists no golden set for the self-test; "
                         f"{_EXPORT_AGAIN}")
    path = folder / section["path"]
    if path.resolve().parent != folder.resolve():
        raise ModelError(f"{manifest.path}: golden.path must name a file inside its folder")
    try:
        data = read_regular_file(path, MAX_GOLDEN_BYTES, "golden set")
    except FileNotFoundError:
        raise ModelError(f"{path}: not found; the manifest lists it: copy the artifacts folder "
                         "again") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(data) != section.get("size") or sha256_hex(data) != str(section.get("sha256")).lower():
        raise IntegrityError(f"{path}: size or sha256 differs from the manifest; copy the "
                             "artifacts folder again")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (ValueError, OSError, KeyError) as exc:
        raise ModelError(f"{path}: not a golden set ({exc}); {_EXPORT_AGAIN}") from None
    try:
        rules = {str(key): Rule(str(r["unit"]), float(r["max_diff"]),
                                None if r.get("step") is None else float(r["step"]))
                 for key, r in section["files"].items()}
    except (AttributeError, KeyError, TypeError, ValueError):
        raise ModelError(f"{manifest.path}: golden.files must map each file's key to its unit "
                         f"and max_diff; the manifest is corrupt or hand-edited, "
                         f"{_EXPORT_AGAIN}") from None
    outputs = {name[4:]: a for name, a in arrays.items() if name.startswith("out_")}
    try:
        return Golden(arrays["digits"], arrays["labels"],
                      arrays.get("strips", np.zeros((0, 32, 8), np.uint8)),
                      [str(t) for t in arrays.get("texts", np.zeros(0, str))], outputs, rules)
    except KeyError as exc:
        raise ModelError(f"{path}: holds no {exc} array; {_EXPORT_AGAIN}") from None


# ------------------------------------------------------------------ running a file on the set
class Predicts(Protocol):
    """A Classifier, as far as the self-test needs one (classifier.py imports this module)."""

    def predict(self, images: np.ndarray, refuse: bool = False) -> Any: ...


def classifier_outputs(clf: Predicts, golden: Golden) -> tuple[np.ndarray, list[Any]]:
    """A classifier file's raw outputs on the golden digits, and its digit for each."""
    if not len(golden.digits):  # a model that reads no test digit right has none
        return np.zeros((0, 0), np.float32), []
    raw = clf.predict(golden.digits).raw
    return raw, raw.argmax(axis=1).tolist()


def gate_outputs(gate: Predicts, threshold: float, digit: int, golden: Golden
                 ) -> tuple[np.ndarray, list[Any]]:
    """A gate file's raw outputs on the golden digits, and its decision (digit or not) for each."""
    if not len(golden.digits):
        return np.zeros((0, 0), np.float32), []
    pred = gate.predict(golden.digits)
    return pred.raw, (pred.probabilities[:, digit] >= threshold).tolist()


def reader_outputs(reader: LineReader, golden: Golden) -> tuple[np.ndarray, list[Any]]:
    """The line reader's scores on the golden lines, and its greedy reading of each."""
    from mnist_edge.reader import greedy

    scores = [reader.scores(strip) for strip in golden.strips]
    texts = ["".join(str(label) for label, _, _ in greedy(s, reader.blank)) for s in scores]
    return np.stack(scores) if scores else np.zeros((0, 0, 0), np.float32), texts


def compare(entry: FileEntry, backend: str, outputs: np.ndarray, answers: list[Any],
            golden: Golden, expected_answers: list[Any]) -> SelfTest:
    """``outputs`` and ``answers`` of ``entry``'s file run here, against the export's."""
    rule = golden.rules.get(entry.key)
    expected = golden.outputs.get(entry.key)
    if rule is None or expected is None:
        raise ModelError(f"{entry.path}: the golden set has no outputs for {entry.key}; "
                         f"{_EXPORT_AGAIN}")
    if outputs.shape != expected.shape:
        raise SelfTestError(f"{entry.path}: gives outputs of shape {list(outputs.shape)} on the "
                            f"golden set, the export's were {list(expected.shape)}")
    diff = np.abs(outputs.astype(np.float64) - expected.astype(np.float64))
    worst = float(diff.max()) if diff.size else 0.0
    if rule.unit == INT8_STEPS and not np.issubdtype(outputs.dtype, np.integer):
        worst /= rule.step or 1.0       # dequantized outputs (int8 ONNX, the reader's scores)
    if not np.isfinite(worst):
        worst = float("inf")
    changed = sum(a != b for a, b in zip(answers, expected_answers, strict=True))
    return SelfTest(entry.key, entry.path.name, backend, len(answers), changed, worst,
                    rule.max_diff, rule.unit)


def expected_answers(entry: FileEntry, manifest: Manifest, golden: Golden) -> list[Any]:
    """What every file of ``entry``'s section must answer on the golden inputs: the true digits,
    "digit" for the gate, the true lines for the reader."""
    if manifest.reader is not None and entry in manifest.reader.files:
        return list(golden.texts)
    if manifest.gate is not None and entry in manifest.gate.files:
        return [True] * len(golden.digits)
    return [int(label) for label in golden.labels]


def raise_on_failure(results: list[SelfTest]) -> None:
    """SelfTestError naming the first file that failed, with what was measured."""
    for r in results:
        if not r.passed:
            raise SelfTestError(f"{r.file} failed its self-test {r.summary()}: this device's "
                                f"interpreter does not answer as at export; try another backend "
                                f"or file, and see mnist-edge verify")


def _figure(x: float) -> str:
    if not np.isfinite(x) or x < 1 or x != int(x):
        return f"{x:.3g}"
    return f"{int(x)}"
