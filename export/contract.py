"""What every exported file promises its caller: the labels and the preprocessing contract.

The manifest carries these, and the converters embed them in each file where the format allows,
so a file copied alone still says what it is.
"""

from __future__ import annotations

import json

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


def embedded_metadata(format_key: str, weights_sha256: str) -> dict[str, str]:
    """String key/value pairs stored inside an exported file (ONNX metadata_props, TFLite metadata).

    The source is identified by its weights, not by the model.keras file: the .keras zip holds a
    save date, which would make two identical trainings export different bytes.
    """
    return {
        "mnist_edge.format": format_key,
        "mnist_edge.labels": json.dumps(list(LABELS)),
        "mnist_edge.preprocessing": json.dumps(PREPROCESSING),
        "mnist_edge.output": "probabilities (softmax applied), one per label",
        "mnist_edge.source_weights_sha256": weights_sha256,
    }
