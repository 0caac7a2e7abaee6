"""The build layer shared by train/, export/ and the checks (parity, bench, reliability, pi-check).

Artifact layout and freshness (artifacts.py), atomic publishing (publish.py), command-line value
checks (flags.py), MNIST loading (data.py), TensorFlow import and quieting (tf.py) and the format
table with its tolerances (formats.py). Stages import this layer and the runtime package
``mnist_edge``, never each other; the layer never starts a stage. Build-time code: run from the
repository, never installed.
"""
