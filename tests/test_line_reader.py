"""The line reader's training lines, its decoding rule and python -m train --model line_reader."""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import local_mnist

MNIST = local_mnist()
needs_mnist = pytest.mark.skipif(not MNIST,
                                 reason="no MNIST here (MNIST_DATA or Keras's cache) to train")


def test_greedy_decoding_merges_repeats_and_drops_blanks():
    from common.strips import BLANK, CLASSES, greedy

    def scores(path):
        s = np.full((len(path), CLASSES), 0.01, dtype=np.float32)
        s[np.arange(len(path)), path] = 0.9
        return s

    b = BLANK
    assert greedy(scores([b, 4, 4, b, 7, b, b])) == "47"
    assert greedy(scores([1, 1, b, 1])) == "11"       # a blank between repeats keeps both
    assert greedy(scores([b, b, b])) == ""


@pytest.mark.parametrize(("a", "b", "d"), [("", "", 0), ("123", "123", 0), ("123", "13", 1),
                                          ("123", "1234", 1), ("123", "193", 1), ("", "42", 2),
                                          ("4712", "7421", 3)])
def test_edit_distance_counts_insertions_deletions_and_substitutions(a, b, d):
    from common.strips import edit_distance

    assert edit_distance(a, b) == d == edit_distance(b, a)


@needs_mnist
def test_training_lines_are_one_line_whose_digits_are_the_truth():
    from common import photos
    from common.data import load_mnist
    from common.strips import HEIGHT, make_lines

    digits = photos.split_digits(load_mnist(MNIST), "train")
    lengths = []
    for i in range(40):
        s = photos.line_sample(digits, 3, i)
        assert s.truth == "".join(str(g.label) for g in s.glyphs)
        assert {g.line for g in s.glyphs} == {0}
        assert 1 <= len(s.truth) <= 8
        lengths.append(len(s.truth))
    assert len(set(lengths)) >= 5
    made = make_lines(MNIST, "train", 3, 0, 40, workers=1)
    assert len(made.labels) + made.skipped == 40 and made.skipped <= 6
    assert all(s.shape[0] == HEIGHT and s.shape[1] % 8 == 0 and s.dtype == np.uint8
               for s in made.strips)
    # the strip's ink: light on dark, with some ink in every strip
    assert all(s.max() > 100 and np.median(s) < 30 for s in made.strips)


def _tiny(out: Path, **changes):
    from train.line_train import LineReaderConfig

    return replace(LineReaderConfig(data=MNIST, out=str(out), lines=160, test_lines=40, epochs=2,
                                    batch_size=32, workers=1), **changes)


@needs_mnist
def test_an_interrupted_run_resumes_from_its_checkpoint_and_publishes_every_file(
        tmp_path, monkeypatch, capsys):
    from common import artifacts
    from train import checkpoint, line_train

    @contextlib.contextmanager
    def interrupted(out):
        raise KeyboardInterrupt
        yield

    out = tmp_path / "a"
    with monkeypatch.context() as m:
        m.setattr(line_train.publish, "staging", interrupted)
        with pytest.raises(KeyboardInterrupt):
            line_train.run(_tiny(out))
    assert not out.exists()                       # nothing published
    state = json.loads((checkpoint.folder_for(str(out), "line_reader") / "state.json")
                       .read_text())
    assert state["epoch"] == 2
    capsys.readouterr()
    metrics = line_train.run(_tiny(out, resume=True))
    printed = capsys.readouterr().out
    assert "resuming after epoch 2" in printed and "making" not in printed  # lines reused
    assert {p.name for p in out.iterdir()} == artifacts.READER_TRAIN_FILES
    history = json.loads((out / artifacts.READER_HISTORY_FILE).read_text())
    assert len(history["loss"]) == len(history["exact_rate"]) == 2
    assert metrics == json.loads((out / artifacts.READER_METRICS_FILE).read_text())
    assert metrics["weights_sha256"] == artifacts.weights_sha256(out / artifacts.READER_FILE)
    assert metrics["test_lines"] <= 40 and 0.0 <= metrics["test_exact_rate"] <= 1.0
    assert not checkpoint.folder_for(str(out), "line_reader").exists()


@needs_mnist
def test_the_published_reader_scores_every_column_and_keeps_the_classifier_files(tmp_path):
    import keras

    from common import artifacts
    from common.strips import CLASSES, HEIGHT, STRIDE
    from train import line_train

    out = tmp_path / "a"
    out.mkdir()
    (out / artifacts.METRICS_FILE).write_text("{}")   # a classifier's file, left as it was
    line_train.run(_tiny(out, epochs=1))
    assert (out / artifacts.METRICS_FILE).read_text() == "{}"
    reader = keras.saving.load_model(out / artifacts.READER_FILE)
    for width in (8, 40, 96):
        scores = np.asarray(reader(np.zeros((2, HEIGHT, width, 1), np.float32)))
        assert scores.shape == (2, width // STRIDE, CLASSES)
        np.testing.assert_allclose(scores.sum(axis=-1), 1.0, atol=1e-5)   # probabilities
