"""The build layer shared by train/, export/ and the checks (parity, bench, reliability, pi-check).

Artifact layout and freshness (artifacts.py), atomic publishing (publish.py), command-line value
checks (flags.py), MNIST loading (data.py), TensorFlow import and quieting (tf.py), the format
table with its tolerances (formats.py), the regression floors of the reports (floors.py), the
build tools' entry point (entry.py), and photos of handwritten digits and numbers with their
scoring (photos.py, photo_score.py; numpy and Pillow only: the runtime's tests use them too).
Stages import this layer and the runtime package ``mnist_edge``, never each other; the layer never
starts a stage. Build-time code: run from the repository, never installed.
"""
