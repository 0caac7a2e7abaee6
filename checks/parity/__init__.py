"""Accuracy parity: every exported format on every installed backend, against the Keras model.

    python -m checks.parity                          # artifacts/ on the full test set
                                                     # -> reports/parity.*
    python -m checks.parity --limit 2000 --backends litert,onnxruntime

Predictions go through the runtime package (``mnist_edge.Classifier``), the code path users
run; tflite-runtime runs in its numpy<2 venv (.venv-tflite) through
``python -m checks.parity.worker``. The line reader's files, when the export holds one, are read
through ``mnist_edge.linereader.LineReader`` on lines of MNIST test digits against
``line_reader.keras`` (``checks/parity/lines.py``); the "no digit" gate's, when it holds one,
through ``Classifier.predict(refuse=True)`` on MNIST's test digits and held-out non-digits
against ``gate.keras`` (``checks/parity/gate.py``). The tolerances live in the format table
(``common/formats.py``), shared with export. This file stays import-free: the worker imports the
package under a Python that has only numpy and mnist_edge.
"""
