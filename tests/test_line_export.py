"""The line reader through export: three verified files with a dynamic width, a manifest section
the runtime reads, scores that match Keras's through the runtime's LineReader, and refusals.

One small reader is trained briefly with CTC (a session fixture), published beside the shared
test model and exported once; the tests read that folder.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from common.formats import READER_FORMATS, get_format
from common.strips import BLANK, CLASSES, HEIGHT, STRIDE, greedy, make_lines
from tests.conftest import local_mnist

TRAIN_LINES, TEST_LINES = 256, 64
WIDTHS = (40, 96, 200)  # strips of other widths than the lines', to resize the interpreters


def _train_briefly(data: str):
    """A line reader after a few hundred CTC steps on lines of MNIST training digits."""
    from common.strips import batches
    from common.tf import import_tensorflow
    from train.line_model import build_line_reader

    tf = import_tensorflow()
    import keras

    keras.utils.set_random_seed(3)
    lines = make_lines(data, "train", 7, 0, TRAIN_LINES)
    logits = build_line_reader(logits=True)
    opt = keras.optimizers.Adam(2e-3)

    @tf.function(reduce_retracing=True)
    def step(x, y, label_len, out_len):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.ctc_loss(y, logits(x, training=True), label_len, out_len,
                                                 logits_time_major=False, blank_index=BLANK))
        grads = tape.gradient(loss, logits.trainable_variables)
        opt.apply_gradients(zip(grads, logits.trainable_variables, strict=True))
        return loss

    rng = np.random.default_rng(0)
    for _ in range(3):
        for x, y, label_len, out_len in batches(lines, 32, rng):
            step(x, y, label_len, out_len)
    model = build_line_reader()
    model.set_weights(logits.get_weights())
    return model


@pytest.fixture(scope="session")
def reader_folder(test_artifacts, tmp_path_factory):
    """The shared test model's folder plus a briefly trained line_reader.keras, exported."""
    from common.artifacts import READER_FILE
    from export.export import ExportConfig, run

    data = local_mnist()
    if data is None:
        pytest.skip("no MNIST to make lines from")
    folder = tmp_path_factory.mktemp("reader") / "artifacts"
    shutil.copytree(test_artifacts, folder, ignore=shutil.ignore_patterns(".*"))
    model = _train_briefly(data)
    model.save(folder / READER_FILE)
    result = run(ExportConfig(artifacts=str(folder), data=data, reader_lines=TEST_LINES,
                              reader_calibration=32,
                              formats=",".join(f.key for f in READER_FORMATS)), log=lambda _: None)
    return folder, model, result


@pytest.fixture(scope="session")
def strips():
    """Strips of lines of MNIST test digits (a seed the export did not verify on), and of other
    widths cut from them."""
    lines = make_lines(local_mnist(), "test", 11, 0, 6)
    made = [s.astype(np.float32) / 255 for s in lines.strips]
    wide = np.concatenate(made, axis=1)
    return made + [wide[:, :w] for w in WIDTHS]


def _keras(model, strip: np.ndarray) -> np.ndarray:
    return model(strip[np.newaxis, :, :, np.newaxis], training=False).numpy()[0]


def test_every_reader_format_is_exported_verified_and_listed(reader_folder):
    from mnist_edge.manifest import read_manifest

    folder, _, result = reader_folder
    assert not result.failures, result.failures
    manifest = read_manifest(folder)
    assert manifest.reader is not None
    assert [e.key for e in manifest.reader.files] == [f.key for f in READER_FORMATS]
    assert (manifest.reader.height, manifest.reader.stride, manifest.reader.classes,
            manifest.reader.blank) == (HEIGHT, STRIDE, CLASSES, BLANK)
    # the classifier's files are still there, and the classifier still loads first
    assert [e.key for e in manifest.files] == ["tflite_int8", "tflite_float32", "onnx_float32",
                                               "onnx_int8", "tflite_float16", "tflite_dynamic"]
    raw = json.loads((folder / "manifest.json").read_text())["line_reader"]
    assert raw["output"]["labels"][BLANK] == "blank" and raw["keras_reference"]["lines"] > 0
    for entry in raw["files"]:
        assert entry["input"]["shape"] == [None, HEIGHT, None, 1]  # width stays dynamic
        assert entry["verification"]["test_lines"] == raw["keras_reference"]["lines"]


@pytest.mark.parametrize("key", [f.key for f in READER_FORMATS])
def test_runtime_scores_match_keras_at_every_width(reader_folder, strips, key):
    from mnist_edge.linereader import LineReader

    folder, model, _ = reader_folder
    fmt = get_format(key, READER_FORMATS)
    reader = LineReader.load(folder, key=key)
    assert (reader.key, reader.precision, reader.height, reader.stride, reader.blank) == (
        key, fmt.precision, HEIGHT, STRIDE, BLANK)
    diffs, same = [], []
    for strip in strips + strips[:2]:  # back to earlier widths: the interpreter is resized again
        got, want = reader.scores(strip), _keras(model, strip)
        assert got.shape == (strip.shape[1] // STRIDE, CLASSES)
        diffs.append(float(np.abs(got - want).max()))
        same.append(greedy(got) == greedy(want))
    rule = fmt.tolerance
    if rule.max_prob_diff is not None:
        assert max(diffs) <= rule.max_prob_diff
    assert np.mean(same) >= rule.min_agreement


def test_a_tampered_reader_file_is_refused(reader_folder, tmp_path):
    from mnist_edge.errors import IntegrityError
    from mnist_edge.linereader import LineReader

    folder, _, _ = reader_folder
    copy = tmp_path / "artifacts"
    shutil.copytree(folder, copy)
    target = copy / "line_reader_int8.tflite"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="line_reader_int8.tflite: sha256"):
        LineReader.load(copy)
    assert LineReader.load(copy, key="reader_tflite_float32").key == "reader_tflite_float32"
    # mnist-edge verify checks the reader's files too
    from mnist_edge.manifest import verify_all

    failed = [entry.key for entry, problem in verify_all(copy) if problem is not None]
    assert failed == ["reader_tflite_int8"]


def test_reader_keys_without_a_reader_are_refused(test_artifacts, tmp_path):
    from export.export import ExportConfig, ExportError, run

    folder = tmp_path / "artifacts"
    shutil.copytree(test_artifacts, folder, ignore=shutil.ignore_patterns(".*", "line_reader*"))
    with pytest.raises(ExportError, match="line_reader.keras not found"):
        run(ExportConfig(artifacts=str(folder), formats="reader_tflite_int8"))


def test_without_a_reader_the_export_is_the_classifiers(test_artifacts, tmp_path):
    from export.export import ExportConfig, run

    folder = tmp_path / "artifacts"
    # an export with a reader, whose line_reader.keras is then taken away
    shutil.copytree(test_artifacts, folder, ignore=shutil.ignore_patterns(".*"))
    (folder / "line_reader.keras").unlink()
    run(ExportConfig(artifacts=str(folder), formats="tflite_float32"), log=lambda _: None)
    raw = json.loads((folder / "manifest.json").read_text())
    assert "line_reader" not in raw and "reader_lines" not in raw["export"]
    assert not [f.filename for f in READER_FORMATS if (folder / f.filename).exists()]
    assert [f["key"] for f in raw["files"]] == [f["key"] for f in json.loads(
        (test_artifacts / "manifest.json").read_text())["files"]]


@pytest.mark.parametrize("strip, expected", [
    (np.zeros((32, 42), np.float32), r"shape \[32, 42\]; the line reader takes \[32, W\]"),
    (np.zeros((28, 40), np.float32), r"shape \[28, 40\]"),
    (np.full((32, 40), 2.0, np.float32), r"within \[0, 1\]"),
    (np.zeros((32, 40), np.int32), "dtype int32"),
    ([[0.0] * 40] * 32, "must be a numpy array"),
])
def test_a_wrong_strip_is_refused_in_one_line(reader_folder, strip, expected):
    from mnist_edge.errors import InputError
    from mnist_edge.linereader import LineReader

    reader = LineReader.load(reader_folder[0])
    with pytest.raises(InputError, match=expected) as exc:
        reader.scores(strip)
    assert "\n" not in str(exc.value)
