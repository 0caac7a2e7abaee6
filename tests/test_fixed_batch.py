"""A model exported with a fixed batch size (1 here) still classifies any number of images."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_edge import Classifier


@pytest.fixture(scope="module")
def images(test_artifacts):
    from common.data import load_mnist

    return load_mnist().x_test[:37]


def _fixed_tflite(model_keras, path) -> None:
    from common.tf import import_tensorflow, load_keras_model, quiet

    tf = import_tensorflow()
    import keras

    model = load_keras_model(model_keras)
    one = keras.Input(shape=(28, 28, 1), batch_size=1)
    with quiet():
        converter = tf.lite.TFLiteConverter.from_keras_model(keras.Model(one, model(one)))
        path.write_bytes(converter.convert())


def _fixed_onnx(model_onnx, path) -> None:
    import onnx

    proto = onnx.load(model_onnx)
    for value in (*proto.graph.input, *proto.graph.output):
        value.type.tensor_type.shape.dim[0].dim_value = 1  # replaces the symbolic "batch"
    onnx.save(proto, path)


@pytest.mark.parametrize("kind", ["tflite", "onnx"])
def test_a_fixed_batch_model_answers_like_the_dynamic_one(test_artifacts, images, tmp_path, kind):
    if kind == "tflite":
        fixed, dynamic = tmp_path / "fixed.tflite", test_artifacts / "model_float32.tflite"
        _fixed_tflite(test_artifacts / "model.keras", fixed)
    else:
        fixed, dynamic = tmp_path / "fixed.onnx", test_artifacts / "model.onnx"
        _fixed_onnx(dynamic, fixed)
    clf = Classifier.load(fixed)
    assert clf.input_spec.shape[0] == 1
    expected = Classifier.load(dynamic).predict(images).labels
    assert np.array_equal(clf.predict(images).labels, expected)  # 37 images, one at a time
    assert np.array_equal(clf.predict(images[:1]).labels, expected[:1])
