"""The golden set the device's self-test runs (``mnist_edge.selftest``): chosen here from the MNIST
test set, run through every file the manifest lists with the runtime on this machine, written to
``golden.npz`` and described in the manifest's ``golden`` section with each file's rule from the
format table.

Chosen: for each digit, ``PER_DIGIT`` test images that Keras reads right with its best class at
least ``MIN_MARGIN`` of probability above the second (and, with a gate, its digit probability
``MIN_MARGIN`` above its threshold), spread over the range of those margins; with a line reader,
``LINES`` lines of test digits that the Keras reader reads exactly. An image or line that any
exported file answers otherwise is left out (spares stand in): a golden input has one right
answer that every correct interpreter gives.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np

from common import publish
from common.artifacts import GOLDEN_FILE, MANIFEST_FILE
from common.formats import INT8_STEPS, all_formats, get_format
from common.strips import HEIGHT, STRIDE, greedy, make_lines, pad
from mnist_edge.digest import sha256_hex

PER_DIGIT = 10        # golden images per digit
SPARE = 4             # candidates per digit beyond PER_DIGIT
MIN_MARGIN = 0.3      # Keras's top probability minus its second, at least
LINES = 10            # golden lines for the line reader
LINE_CANDIDATES = 24
SOFTMAX_STEP = 1 / 256  # one step of an int8 softmax output, when the file does not say


def pick_digits(labels: np.ndarray, keras_probs: np.ndarray,
                gate_scores: np.ndarray | None = None, threshold: float | None = None
                ) -> np.ndarray:
    """Indices into the test set: up to PER_DIGIT + SPARE candidates per digit, in digit order,
    each read right by Keras (and accepted by the gate, when given) with a clear margin (module
    docstring). A weak model with too few clear images of a digit gives its right answers with the
    largest margins instead, and none for a digit it never reads right."""
    top2 = np.sort(keras_probs, axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    right = keras_probs.argmax(axis=1) == labels
    clear = margin >= MIN_MARGIN
    if gate_scores is not None and threshold is not None:
        right &= gate_scores >= threshold
        clear &= gate_scores >= threshold + MIN_MARGIN
    chosen = [np.zeros(0, np.int64)]
    for digit in range(10):
        idx = np.flatnonzero(right & (labels == digit))
        ranked = idx[np.argsort(margin[idx], kind="stable")]
        wide = ranked[clear[ranked]]
        if len(wide) >= PER_DIGIT:
            spots = np.linspace(0, len(wide) - 1, PER_DIGIT + SPARE).round().astype(int)
            chosen.append(wide[np.unique(spots)])
        else:
            chosen.append(ranked[::-1][:PER_DIGIT + SPARE])
    return np.concatenate(chosen).astype(np.int64)


def pick_lines(reader_model, data: str | None, seed: int) -> tuple[np.ndarray, list[str]]:
    """Lines of MNIST test digits the Keras reader reads exactly, padded to one width: (uint8
    [M, HEIGHT, W], their digits); LINES of them at most."""
    lines = make_lines(data, "test", seed, 0, LINE_CANDIDATES)
    width = max(s.shape[1] for s in lines.strips)
    strips = np.stack([pad(s, width - s.shape[1], 2 * STRIDE) for s in lines.strips])
    scores = reader_model(strips[..., np.newaxis].astype(np.float32) / np.float32(255),
                          training=False).numpy()
    keep = [i for i, (s, label) in enumerate(zip(scores, lines.labels, strict=True))
            if greedy(s) == label][:LINES]
    return strips[keep], [lines.labels[i] for i in keep]


def build(stage: Path, manifest: dict, images: np.ndarray, labels: np.ndarray,
          candidates: np.ndarray, lines: tuple[np.ndarray, list[str]] | None,
          log: Callable[[str], None]) -> dict:
    """Run every file ``manifest`` lists (staged in ``stage``) on the candidates with the
    runtime, keep the inputs every file answers right, write GOLDEN_FILE into ``stage``, and
    return the manifest's ``golden`` section."""
    from mnist_edge import backends, selftest
    from mnist_edge.golden import Golden, expected_answers
    from mnist_edge.manifest import read_manifest

    publish.write_json(stage / MANIFEST_FILE, manifest)  # the runtime reads files through it
    staged = read_manifest(stage)
    strips, texts = lines if lines is not None else (np.zeros((0, HEIGHT, 2 * STRIDE), np.uint8),
                                                     [])
    inputs = Golden(images[candidates], labels[candidates].astype(np.int64), strips,
                             texts, {}, {})
    outputs, right, runs = {}, {}, {}
    for entry in staged.all_files:
        backend = backends.available(entry.format)[0]
        out, answers = selftest.outputs_of(staged, entry, backend, inputs)
        want = expected_answers(entry, staged, inputs)
        outputs[entry.key] = out
        right[entry.key] = np.array([a == b for a, b in zip(answers, want, strict=True)], bool)
        runs[entry.format] = f"{backend} {backends.runtime_version(backend)}"
    is_line = {e.key for e in (staged.reader.files if staged.reader else ())}
    digit_ok = np.logical_and.reduce([ok for k, ok in right.items() if k not in is_line]
                                     or [np.ones(len(candidates), bool)])
    line_ok = np.logical_and.reduce([ok for k, ok in right.items() if k in is_line]
                                    or [np.ones(len(texts), bool)])
    keep = np.concatenate([np.flatnonzero(digit_ok & (labels[candidates] == d))[:PER_DIGIT]
                           for d in range(10)])
    lines_kept = np.flatnonzero(line_ok)
    arrays = {"digits": inputs.digits[keep], "labels": inputs.labels[keep],
              "test_indices": candidates[keep], "strips": strips[lines_kept],
              "texts": np.array([texts[i] for i in lines_kept], dtype=str)}
    for key, out in outputs.items():
        arrays[f"out_{key}"] = out[lines_kept] if key in is_line else out[keep]
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    data = buffer.getvalue()
    publish.write_bytes(stage / GOLDEN_FILE, data)
    dropped = len(candidates) - int(digit_ok.sum()), len(texts) - len(lines_kept)
    log(f"golden set: {len(keep)} test digits and {len(lines_kept)} lines, each file's outputs "
        f"on them ({dropped[0]} candidate digits and {dropped[1]} lines left out: a file answered "
        "them otherwise)")
    return {
        "path": GOLDEN_FILE, "size": len(data), "sha256": sha256_hex(data),
        "digits": int(len(keep)), "lines": int(len(lines_kept)),
        "selection": (f"{PER_DIGIT} MNIST test images per digit that Keras reads right with a "
                      f"margin of at least {MIN_MARGIN} between its two best classes (and the "
                      f"gate's digit probability {MIN_MARGIN} above its threshold), spread over "
                      "those margins; lines of MNIST test digits the Keras reader reads exactly; "
                      "inputs any exported file answers otherwise are left out"),
        "outputs_from": runs,
        "rule": ("every golden input answered as at export (the digit, the gate's decision, the "
                 "line's digits) and outputs within max_diff of the export's, in unit"),
        "files": {e.key: rule(e.key, e.output) for e in staged.all_files},
    }


def rule(key: str, output: dict) -> dict:
    """The format table's self-test bound for the file ``key`` (manifest output spec
    ``output``)."""
    tol = get_format(key, all_formats()).tolerance
    fields: dict = {"unit": tol.device_unit, "max_diff": tol.golden_max_diff}
    if tol.device_unit == INT8_STEPS:
        quant = output.get("quantization") or {}
        fields["step"] = float(quant.get("scale") or SOFTMAX_STEP)
    return fields
