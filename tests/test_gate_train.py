"""python -m train --model gate: the "no digit" gate is trained beside the classifier, its
threshold set on held-out training digits by the documented rule, and published with its
metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import local_mnist

MNIST = local_mnist()
needs_mnist = pytest.mark.skipif(not MNIST,
                                 reason="no MNIST here (MNIST_DATA or Keras's cache) to train")


def test_restyled_digits_stay_normalised_like_mnist():
    from train import gate_data

    rng = np.random.default_rng(0)
    digit = np.zeros((28, 28), np.uint8)
    digit[4:24, 12:16] = 255
    for _ in range(20):
        out = gate_data.restyle(digit, rng)
        assert out.shape == (28, 28) and out.dtype == np.uint8 and out.max() == 255
        rows = np.nonzero((out > 127).any(axis=1))[0]
        assert rows[-1] - rows[0] + 1 <= 22          # fits MNIST's 20x20 box


@needs_mnist
def test_a_quick_run_publishes_the_gate_with_its_calibrated_threshold(tmp_path, capsys):
    import keras

    from common import artifacts
    from common.data import load_mnist
    from train import gate_data, gate_train

    out = tmp_path / "a"
    cfg = gate_train.GateConfig(data=MNIST, out=str(out), epochs=1, nondigits=1500,
                                validation_nondigits=300, false_refusals=0.02, workers=1)
    metrics = gate_train.run(cfg)
    assert {p.name for p in out.iterdir()} == artifacts.GATE_TRAIN_FILES
    assert metrics == json.loads((out / artifacts.GATE_METRICS_FILE).read_text())
    assert metrics["weights_sha256"] == artifacts.weights_sha256(out / artifacts.GATE_FILE)
    assert "training the gate on 81000 digits against 1500 non-digits" in capsys.readouterr().out

    # the rule, recomputed from the published model: the threshold refuses 2% of the held-out
    # training digits (the last 10%, as they are and restyled), and nothing of MNIST's test set
    # chose it
    model = keras.models.load_model(out / artifacts.GATE_FILE)
    ds = load_mnist(MNIST)
    val = gate_data.gate_set(ds.x_train[54_000:], cfg.seed + gate_train.VALIDATION_SEED, 300,
                             shuffle=False)
    p = model.predict(val.x[..., None] / np.float32(255), verbose=0)[:, 1]
    refused = p < metrics["threshold"]
    assert abs(refused[val.y == 1].mean() - 0.02) < 0.002
    assert metrics["calibration"]["validation_digits"] == int((val.y == 1).sum()) == 9000
    assert metrics["calibration"]["validation_refusals"] == pytest.approx(
        refused[val.y == 0].mean(), abs=1e-4)
    test_p = model.predict(ds.x_test[..., None] / np.float32(255), verbose=0)[:, 1]
    assert metrics["test_false_refusals"] == pytest.approx((test_p < metrics["threshold"]).mean(),
                                                           abs=1e-4)


@needs_mnist
def test_the_trained_gate_refuses_most_heldout_nondigits_and_few_test_digits():
    """The gate in artifacts/ (when make train made one): the issue's targets, on non-digits
    drawn with other fonts, sizes and photos than training, and MNIST's test digits."""
    from pathlib import Path

    import keras

    from common import artifacts, nondigits
    from common.data import load_mnist

    folder = Path(artifacts.ROOT) / "artifacts"
    if not (folder / artifacts.GATE_FILE).is_file():
        pytest.skip("no trained gate in artifacts/ (make train makes one)")
    metrics = json.loads((folder / artifacts.GATE_METRICS_FILE).read_text())
    model = keras.models.load_model(folder / artifacts.GATE_FILE)
    ds = load_mnist(MNIST)
    others, _ = nondigits.generate(1500, 99_001, nondigits.HELDOUT, digits=ds.x_test, workers=2)
    score = lambda x: model.predict(x[..., None] / np.float32(255), verbose=0)[:, 1]  # noqa: E731
    assert (score(others) < metrics["threshold"]).mean() >= 0.90
    assert (score(ds.x_test) < metrics["threshold"]).mean() <= 0.01
