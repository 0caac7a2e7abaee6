"""The line reader: a fully convolutional network that reads a line of digits with CTC.

Input: a grey strip ``HEIGHT`` rows tall, any width that is a multiple of ``STRIDE`` (light ink
on dark, in [0, 1], as ``mnist_edge.lines.line_strip`` makes it). Output: one column of scores
per ``STRIDE`` input columns over the ten digits and the blank (``BLANK``, the last index),
softmax-normalised (the constants live in ``common.strips``). No recurrent layer and no decoder
op, so int8 TFLite and ONNX hold it; the runtime decodes greedily in numpy.
"""

from __future__ import annotations

from common.strips import CLASSES, HEIGHT


def build_line_reader(width: int | None = None, logits: bool = False):
    """Three conv blocks (32x... -> 4 rows), a column conv to one row, two 1-D context convs, 11
    scores per column. ``logits`` returns the model before the softmax (for the CTC loss)."""
    import keras
    from keras import layers

    inp = keras.Input(shape=(HEIGHT, width, 1), name="line")
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1")(inp)
    x = layers.MaxPooling2D(2, name="pool1")(x)                      # 16 rows
    x = layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)                      # 8 rows, width / 4
    x = layers.Conv2D(64, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.MaxPooling2D((2, 1), name="pool3")(x)                 # 4 rows
    x = layers.Conv2D(112, (HEIGHT // 8, 1), padding="valid", activation="relu",
                      name="columns")(x)                             # 1 row
    x = layers.Conv2D(112, (1, 5), padding="same", activation="relu", name="context1")(x)
    x = layers.Conv2D(112, (1, 3), padding="same", activation="relu", name="context2")(x)
    x = layers.Conv2D(CLASSES, 1, name="logits")(x)
    x = layers.Reshape((-1, CLASSES), name="columns_out")(x)       # [batch, width / 4, 11]
    if not logits:
        x = layers.Softmax(name="scores")(x)
    return keras.Model(inp, x, name="mnist_edge_line_reader")
