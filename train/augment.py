"""--augment: each training batch redrawn on the fly, seeded, the way handwriting varies.

    from train.augment import augmented
    ds = augmented(x, y, batch_size=64, seed=42)   # tf.data: new variants every epoch

Every image is turned by up to ``ROTATION`` degrees, scaled by up to ``SCALE``, shifted by up
to ``SHIFT`` pixels, and some get a thicker or thinner stroke. The random numbers come from
stateless generators keyed on the seed and a counter that advances with every batch, so a run
is the same on every repeat with the same seed (a resumed run draws from the start again, as
its shuffle order does).
"""

from __future__ import annotations

import math

import numpy as np

ROTATION = 10.0      # degrees, either way
SCALE = 0.1          # 0.9x to 1.1x
SHIFT = 2.0          # pixels, each axis
THICKER = 0.15       # share of images whose strokes are thickened (a 2x2 dilation)...
THINNER = 0.15       # ...and thinned (a 2x2 erosion)


def augmented(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int):
    """Float images [N,28,28,1] in [0,1] and labels -> a shuffled, augmented tf.data.Dataset."""
    import tensorflow as tf

    ds = (tf.data.Dataset.from_tensor_slices((x, y))
          .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
          .batch(batch_size))
    keys = tf.data.Dataset.counter().map(lambda i: tf.stack([tf.constant(seed, tf.int64), i]))
    # The counter runs on across epochs: a repeated dataset draws new variants each time
    ds = tf.data.Dataset.zip((ds, keys.repeat()))
    return ds.map(lambda batch, key: (distort(batch[0], key), batch[1]),
                  num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(2)


def distort(images, key):
    """One batch [B,H,W,1] float32 redrawn with random turns, scales, shifts and strokes drawn
    from the stateless seed ``key`` (two int64s)."""
    import tensorflow as tf

    n = tf.shape(images)[0]
    h, w = images.shape[1], images.shape[2]
    seeds = tf.random.experimental.stateless_split(tf.cast(key, tf.int64), 4)
    angle = tf.random.stateless_uniform([n], seeds[0], -1.0, 1.0) * math.radians(ROTATION)
    scale = 1.0 + tf.random.stateless_uniform([n], seeds[1], -1.0, 1.0) * SCALE
    shift = tf.random.stateless_uniform([n, 2], seeds[2], -1.0, 1.0) * SHIFT
    # the transform maps each output pixel to the input pixel it samples: rotate and scale
    # about the centre, then shift
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    tx = cx - cos * cx + sin * cy - shift[:, 0]
    ty = cy - sin * cx - cos * cy - shift[:, 1]
    zeros = tf.zeros_like(cos)
    transforms = tf.stack([cos, -sin, tx, sin, cos, ty, zeros, zeros], axis=1)
    moved = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.constant([h, w]),
        fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")
    pick = tf.random.stateless_uniform([n, 1, 1, 1], seeds[3])
    thick = tf.nn.max_pool2d(moved, 2, 1, "SAME")
    thin = -tf.nn.max_pool2d(-moved, 2, 1, "SAME")
    return tf.where(pick < THICKER, thick, tf.where(pick > 1.0 - THINNER, thin, moved))
