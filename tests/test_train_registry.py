"""The classifier registry (python -m train --model NAME), the edge model's budget, the
multiply-add count, and --augment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import local_mnist

ROOT = Path(__file__).resolve().parents[1]
MNIST = local_mnist()


def test_every_registered_classifier_takes_an_mnist_digit_and_answers_ten_probabilities():
    from train.model import CLASSIFIERS

    assert "reference" in CLASSIFIERS and "edge" in CLASSIFIERS
    for name, arch in CLASSIFIERS.items():
        model = arch.build()
        assert model.input_shape == (None, 28, 28, 1), name
        assert model.output_shape == (None, 10), name
        out = np.asarray(model(np.zeros((2, 28, 28, 1), np.float32)))
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5, err_msg=name)


def test_multiply_adds_are_counted_layer_by_layer():
    from common.work import multiply_adds
    from train.model import CLASSIFIERS

    # the reference by hand: a 3x3 conv to 26x26x32 from one channel, Dense 5408->128, 128->10
    assert multiply_adds(CLASSIFIERS["reference"].build()) \
        == 26 * 26 * 32 * 9 + 13 * 13 * 32 * 128 + 128 * 10 == 888_192


def test_the_edge_model_fits_the_device_budget():
    """At most 50,000 parameters and no more multiply-adds per image than the reference."""
    from common.work import multiply_adds
    from train.model import CLASSIFIERS

    reference, edge = CLASSIFIERS["reference"].build(), CLASSIFIERS["edge"].build()
    assert edge.count_params() <= 50_000
    assert multiply_adds(edge) <= multiply_adds(reference)


def test_the_help_lists_the_registered_classifiers():
    done = subprocess.run([sys.executable, "-m", "train", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "{reference,edge,line_reader,gate}" in done.stdout
    assert "--augment, --no-augment" in done.stdout


def test_an_unknown_model_is_one_line_naming_the_choices():
    done = subprocess.run([sys.executable, "-m", "train", "--model", "tiny"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "invalid choice: 'tiny'" in done.stderr and "reference" in done.stderr
    assert "Traceback" not in done.stderr


def test_augmented_batches_are_seeded_and_keep_the_digit():
    """The same seed and counter draw the same batch; another counter draws another. Turned,
    scaled, shifted and restroked, a digit keeps most of its ink inside the frame and overlaps
    where it was."""
    from train.augment import distort

    x = np.zeros((64, 28, 28, 1), np.float32)
    x[:, 8:20, 12:16, 0] = 1.0   # a bar, as a 1
    a = np.asarray(distort(x, np.array([42, 0])))
    b = np.asarray(distort(x, np.array([42, 0])))
    c = np.asarray(distort(x, np.array([42, 1])))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == x.shape and a.min() >= 0.0 and a.max() <= 1.0
    ink = x.sum(axis=(1, 2, 3))
    assert np.all(a.sum(axis=(1, 2, 3)) > 0.5 * ink)
    overlap = (np.minimum(a, x).sum(axis=(1, 2, 3)) / ink)
    assert np.median(overlap) > 0.4
    assert np.mean(np.abs(a - x).sum(axis=(1, 2, 3)) > 0.05 * ink) > 0.9  # most are changed


def test_augmentation_stays_within_its_documented_bounds():
    """Measured on a centred bar, from its ink alone: the centre of mass moves no further than
    the shift (and the half pixel a dilation adds), the bar turns no more than the rotation,
    and every bound is used."""
    from train import augment

    x = np.zeros((512, 28, 28, 1), np.float32)
    x[:, 8:20, 12:16, 0] = 1.0   # centred on the image's centre: turning and scaling keep it
    a = np.concatenate([np.asarray(augment.distort(x[i:i + 128], np.array([3, i])))
                        for i in range(0, 512, 128)])[..., 0]
    rows, cols = np.mgrid[0:28, 0:28]
    mass = a.sum(axis=(1, 2))
    cy, cx = (a * rows).sum(axis=(1, 2)) / mass, (a * cols).sum(axis=(1, 2)) / mass
    moved = np.hypot(cy - 13.5, cx - 13.5)
    assert moved.max() <= np.hypot(augment.SHIFT, augment.SHIFT) + 0.5 + 0.1
    assert moved.max() > augment.SHIFT  # shifts reach diagonally beyond one axis's bound
    # the bar's long axis from second moments; 0 degrees is upright
    dy, dx = rows - cy[:, None, None], cols - cx[:, None, None]
    myy, mxx = (a * dy * dy).sum(axis=(1, 2)), (a * dx * dx).sum(axis=(1, 2))
    mxy = (a * dx * dy).sum(axis=(1, 2))
    tilt = np.degrees(0.5 * np.arctan2(2 * mxy, myy - mxx))
    assert np.abs(tilt).max() <= augment.ROTATION + 1.5
    assert np.abs(tilt).max() > 0.7 * augment.ROTATION
    ink = mass / x[0].sum()
    assert ink.min() > 0.3 and ink.max() < 2.0   # thinned and thickened, never erased


@pytest.mark.skipif(not MNIST, reason="no MNIST here (MNIST_DATA or Keras's cache) to train")
def test_a_short_edge_training_records_its_model_and_recipe(tmp_path):
    out = tmp_path / "artifacts-edge"
    args = [sys.executable, "-m", "train", "--model", "edge", "--data", MNIST, "--epochs", "1",
            "--limit", "3000", "--out", str(out)]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "training the edge classifier" in done.stdout and "augmented" in done.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    config = json.loads((out / "config.json").read_text())
    from common.work import multiply_adds
    from train.model import CLASSIFIERS

    edge = CLASSIFIERS["edge"].build()
    assert metrics["model"] == "edge" and metrics["augment"] is True
    assert metrics["parameters"] == edge.count_params()
    assert metrics["multiply_adds"] == multiply_adds(edge)
    # the recipe fills what was not given, and config.json records the values used
    assert config["epochs"] == 1 and config["augment"] is True
    assert config["learning_rate"] == CLASSIFIERS["edge"].recipe["learning_rate"]

    again = subprocess.run(args + ["--no-augment", "--out", str(tmp_path / "plain")], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "plain" / "metrics.json").read_text())["augment"] is False
