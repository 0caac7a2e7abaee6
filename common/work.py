"""How much work a Keras model does per image: its multiply-adds, counted layer by layer.

    from common.work import multiply_adds
    multiply_adds(keras.models.load_model("artifacts/model.keras"))   # 888,192: the reference

Training records it in metrics.json; the bench's side-by-side comparison reads it from there.
"""

from __future__ import annotations


def multiply_adds(model) -> int:
    """Multiply-adds of one image through ``model``'s convolutions and dense layers (pooling,
    activations and batch normalisation, folded at export, are not counted)."""
    from keras import layers

    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.DepthwiseConv2D):
            _, h, w, c = layer.output.shape
            total += h * w * c * layer.kernel_size[0] * layer.kernel_size[1]
        elif isinstance(layer, layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            c_in = layer.input.shape[-1] // layer.groups
            total += h * w * c_out * c_in * layer.kernel_size[0] * layer.kernel_size[1]
        elif isinstance(layer, layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total)
