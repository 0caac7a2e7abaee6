"""The digit classifiers python -m train can build: the reference CNN and models built for
devices, each one readable Sequential list with an explicit Input, and the training recipe it
was designed with.

    from train.model import CLASSIFIERS
    from common.work import multiply_adds
    model = CLASSIFIERS["edge"].build()
    multiply_adds(model)     # 860,048 for the edge model; 888,192 for the reference

Nothing in the pipeline knows these names: export, parity, bench, the Pi check, the reader and
the gate take whatever model.keras a registered model trained.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
PARAMETER_COUNT = 693_962  # the reference: conv 320 + dense 692,352 + output 1,290
OPTIMIZERS = ("adam", "adagrad")


def build_model():
    """The reference CNN: Conv2D 32 3x3 relu -> MaxPool 2x2 -> Flatten -> Dense 128 relu ->
    Dense 10 softmax."""
    import keras

    return keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE, name="input"),
            keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu", name="conv"),
            keras.layers.MaxPooling2D(pool_size=(2, 2), name="pool"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(128, activation="relu", name="dense"),
            keras.layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities"),
        ],
        name="mnist_edge_cnn",
    )


def build_edge():
    """The edge CNN: the image folded into 2x2 blocks (14x14x4), then a 2x2 and two 3x3
    convolutions with batch normalisation (folded into them at export), the second with stride
    2, then Flatten -> Dense 10 softmax.

    Folding first because a full-resolution first convolution is what costs the reference its
    time on a CPU: an int8 convolution over 28x28 with one input channel is slow per
    multiply-add (the reference's large Dense layer is fast). A 3x3 stride-2 first convolution
    is as quick but sees too little before it subsamples; over the folded image a 2x2 kernel
    sees 4x4 pixels. The 7x7 maps are flattened rather than averaged, so the last layer still
    knows where each stroke is. docs/edge-model.md has the candidates and their figures.
    """
    import keras
    from keras import layers

    def conv(filters: int, kernel: int, stride: int, name: str) -> list:
        return [layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                              name=name),
                layers.BatchNormalization(name=f"{name}_bn"),
                layers.ReLU(name=f"{name}_relu")]

    side = INPUT_SHAPE[0] // 2
    return keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE, name="input"),
            # space to depth: pixel (2i+a, 2j+b) -> position (i, j), channel 2a+b
            layers.Reshape((side, 2, side, 2), name="blocks"),
            layers.Permute((1, 3, 2, 4), name="blocks_last"),
            layers.Reshape((side, side, 4), name="folded"),
            *conv(16, 2, 1, "conv1"),    # 14x14x16
            *conv(32, 3, 2, "conv2"),    # 7x7x32
            *conv(40, 3, 1, "conv3"),    # 7x7x40
            layers.Flatten(name="flatten"),
            layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities"),
        ],
        name="mnist_edge_edge",
    )


@dataclass(frozen=True)
class Architecture:
    """A registered classifier: how to build it and the recipe it was designed with (flags
    left at their defaults take these values; given flags win)."""

    name: str
    description: str
    build: Callable[[], Any]
    recipe: dict[str, Any] = field(default_factory=dict)


CLASSIFIERS: dict[str, Architecture] = {
    a.name: a for a in (
        Architecture("reference", "the tutorial's CNN, unchanged (693,962 parameters)",
                     build_model, {"epochs": 10, "augment": False}),
        Architecture("edge", "a CNN built for devices: stride-2 convolutions, batch "
                             "normalisation, a fraction of the reference's time and size",
                     build_edge, {"epochs": 20, "augment": True, "learning_rate": 3e-3}),
    )
}
DEFAULT_CLASSIFIER = "reference"
# what python -m train --model trains: a registered classifier, the line reader or the gate
MODELS = (*CLASSIFIERS, "line_reader", "gate")


def compile_model(model, optimizer: str = "adam", learning_rate: Any = None):
    """Compile with sparse categorical cross-entropy on the softmax output (integer labels)."""
    import keras

    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    cls = {"adam": keras.optimizers.Adam, "adagrad": keras.optimizers.Adagrad}[optimizer]
    opt = cls() if learning_rate is None else cls(learning_rate=learning_rate)
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
