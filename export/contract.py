"""What every exported file promises its caller: the labels and the preprocessing contract.

The manifest carries these, and the converters embed them in each file where the format allows,
so a file copied alone still says what it is.
"""

from __future__ import annotations

import json

from common.strips import BLANK, CLASSES, HEIGHT, STRIDE
from mnist_edge.formats import GATE_FORMATS, READER_FORMATS

LABELS: tuple[str, ...] = tuple(str(d) for d in range(10))

# Matches common.data.to_model_input: uint8 [N,28,28] -> float32 [N,28,28,1] in [0, 1].
PREPROCESSING: dict = {
    "image_size": [28, 28],
    "channels": 1,
    "layout": "NHWC",
    "polarity": "light digit on dark background",
    "scale": "value / 255, float32 in [0, 1]",
    "mean": 0.0,
    "std": 1.0,
}


# The line reader's contract: what mnist_edge.lines.line_strip makes, and what the scores mean.
READER_LABELS: tuple[str, ...] = (*LABELS, "blank")
READER_INPUT: dict = {
    "height": HEIGHT,
    "width_multiple": STRIDE * 2,  # what line_strip pads to; any multiple of STRIDE works
    "dtype": "float32",
    "range": [0, 1],
    "polarity": "light ink on dark",
    "made_by": "mnist_edge.lines.line_strip",
}
READER_OUTPUT: dict = {"stride": STRIDE, "classes": CLASSES, "blank": BLANK,
                       "labels": list(READER_LABELS), "activation": "softmax"}
READER_DECODING = "greedy: the top class per column, repeats merged, blanks dropped"


def embedded_metadata(format_key: str, weights_sha256: str,
                      labels: tuple[str, ...] | None = None,
                      dataset: dict | None = None) -> dict[str, str]:
    """String key/value pairs stored inside an exported file (ONNX metadata_props, TFLite metadata);
    ``labels``: the outputs' names where the model's training says them (the gate's classes, a
    classifier's class names); ``dataset``: the classifier's (name, kind), when recorded.

    The source is identified by its weights, not by the model.keras file: the .keras zip holds a
    save date, which would make two identical trainings export different bytes.
    """
    if format_key in {f.key for f in READER_FORMATS}:
        return {
            "mnist_edge.format": format_key,
            "mnist_edge.labels": json.dumps(list(READER_LABELS)),
            "mnist_edge.preprocessing": json.dumps(READER_INPUT),
            "mnist_edge.output": f"per-column scores (softmax applied), one column per "
                                 f"{STRIDE} input columns, one score per label; decoding: "
                                 f"{READER_DECODING}",
            "mnist_edge.source_weights_sha256": weights_sha256,
        }
    if format_key in {f.key for f in GATE_FORMATS}:
        return {
            "mnist_edge.format": format_key,
            "mnist_edge.labels": json.dumps(list(labels or ())),
            "mnist_edge.preprocessing": json.dumps(PREPROCESSING),
            "mnist_edge.output": "probabilities (softmax applied), one per label; the manifest's "
                                 "gate.threshold on the digit's says when an image is refused",
            "mnist_edge.source_weights_sha256": weights_sha256,
        }
    out = {
        "mnist_edge.format": format_key,
        "mnist_edge.labels": json.dumps(list(labels or LABELS)),
        "mnist_edge.preprocessing": json.dumps(PREPROCESSING),
        "mnist_edge.output": "probabilities (softmax applied), one per label",
        "mnist_edge.source_weights_sha256": weights_sha256,
    }
    if dataset is not None:
        out["mnist_edge.dataset"] = json.dumps(dataset)
    return out
