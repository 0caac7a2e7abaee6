"""The reference CNN: one readable Sequential list with an explicit Input."""

from __future__ import annotations

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
PARAMETER_COUNT = 693_962  # conv 320 + dense 692,352 + output 1,290
OPTIMIZERS = ("adam", "adagrad")
MODELS = ("classifier", "line_reader", "gate")  # what python -m train --model trains


def build_model():
    """Conv2D 32 3x3 relu -> MaxPool 2x2 -> Flatten -> Dense 128 relu -> Dense 10 softmax."""
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


def compile_model(model, optimizer: str = "adam", learning_rate: float | None = None):
    """Compile with sparse categorical cross-entropy on the softmax output (integer labels)."""
    import keras

    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    cls = {"adam": keras.optimizers.Adam, "adagrad": keras.optimizers.Adagrad}[optimizer]
    opt = cls() if learning_rate is None else cls(learning_rate=learning_rate)
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
