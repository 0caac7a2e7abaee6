"""mnist-edge runtime: classify handwritten digits on a device from exported TFLite/ONNX files.

    from mnist_edge import Classifier, preprocess_image
    clf = Classifier.load("artifacts")              # or a .tflite / .onnx file
    print(clf.predict(images_uint8_28x28).labels)
    for r in clf.predict_files(["digit.jpg"]):
        print(r.path, r.label, r.error)
    print(clf.read("meter.jpg").number)             # a whole number: every digit, in order

Importing this package loads numpy only; interpreters and Pillow are imported when used.
"""

from mnist_edge.classifier import Classifier, FileResult, Prediction
from mnist_edge.errors import (
                               BackendError,
                               BlankImageError,
                               InputError,
                               IntegrityError,
                               MnistEdgeError,
                               ModelError,
                               SelfTestError,
)
from mnist_edge.normalize import preprocess_image
from mnist_edge.reader import Digit, Reading

__version__ = "0.1.0"
__all__ = ["Classifier", "Prediction", "FileResult", "Reading", "Digit", "preprocess_image",
           "MnistEdgeError",
           "ModelError", "IntegrityError", "BackendError", "InputError", "BlankImageError",
           "SelfTestError"]
