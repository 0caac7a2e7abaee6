"""The runtime never loads TensorFlow or Keras, from import to prediction."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import numpy as np
import mnist_edge
from mnist_edge import Classifier
after_import = sorted(m for m in sys.modules if m.split('.')[0] in \
('tensorflow', 'keras', 'tf2onnx'))
clf = Classifier.load(sys.argv[1])
clf.predict(np.zeros((3, 28, 28), np.uint8))
clf.predict_files([])
after_predict = sorted(m for m in sys.modules if m.split('.')[0] in \
('tensorflow', 'keras', 'tf2onnx'))
print(after_import, after_predict, clf.backend, sep='|')
"""


def test_import_and_predict_load_no_tensorflow(artifacts):
    done = subprocess.run([sys.executable, "-c", CHECK, str(artifacts)], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    after_import, after_predict, backend = done.stdout.strip().split("|")
    assert after_import == "[]"
    assert after_predict == "[]", f"{backend} pulled in {after_predict}"


def test_import_alone_loads_no_interpreter_or_pillow():
    code = ("import sys, mnist_edge, mnist_edge.cli; print(sorted(m for m in ('onnxruntime', "
            "'ai_edge_litert', 'tflite_runtime', 'tensorflow', 'PIL') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
