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
    """Three conv blocks (32 rows down to 4), a column conv to one row, two 1-D context convs
    along the line, 11 scores per column; batch normalisation after each conv (folded into the
    convolutions by the converters). ``logits`` returns the model before the softmax (for the
    CTC loss)."""
    import keras
    from keras import layers

    def conv(x, filters: int, kernel, name: str, padding: str = "same"):
        x = layers.Conv2D(filters, kernel, padding=padding, use_bias=False, name=name)(x)
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
        return layers.ReLU(name=f"{name}_relu")(x)

    inp = keras.Input(shape=(HEIGHT, width, 1), name="line")
    x = conv(inp, 16, 3, "conv1")
    x = layers.MaxPooling2D(2, name="pool1")(x)                      # 16 rows
    x = conv(x, 64, 3, "conv2")
    x = layers.MaxPooling2D(2, name="pool2")(x)                      # 8 rows, width / 4
    x = conv(x, 64, 3, "conv3")
    x = layers.MaxPooling2D((2, 1), name="pool3")(x)                 # 4 rows
    x = conv(x, 112, (HEIGHT // 8, 1), "columns", padding="valid")   # 1 row
    x = conv(x, 112, (1, 5), "context1")
    x = conv(x, 112, (1, 3), "context2")
    x = layers.Conv2D(CLASSES, 1, name="logits")(x)
    x = layers.Reshape((-1, CLASSES), name="columns_out")(x)       # [batch, width / 4, 11]
    if not logits:
        x = layers.Softmax(name="scores")(x)
    return keras.Model(inp, x, name="mnist_edge_line_reader")
