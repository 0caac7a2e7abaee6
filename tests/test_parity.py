"""Parity: every exported format on every installed backend answers like the Keras model.

Runs against artifacts/ when it holds a fresh export, else the small fixture model
(checks/testmodels.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from checks.parity.run import ParityConfig, ParityError, run

ROOT = Path(__file__).resolve().parents[1]
TFLITE_PYTHON = str(ROOT / ".venv-tflite" / "bin" / "python")
LIMIT = 2000  # test images per run: enough for 0.05% resolution, a few seconds per run
# lines the line reader's files are read on in the runs that test the classifier's side (the
# reader's own tests below read more): making and reading the default 2,000 took most of a run
CLASSIFIER_RUN_LINES = 20
# as the failure messages name them
FIGURES = ("top-1 agreement", "max |Δprob|", "accuracy differs")


@pytest.fixture(scope="module")
def keras_cache(tmp_path_factory) -> str:
    """One Keras reference cache for the module (the damaged copies share the original
    model.keras)."""
    return str(tmp_path_factory.mktemp("keras-cache"))


def _config(artifacts, out, cache, **kw) -> ParityConfig:
    kw.setdefault("reader_lines", CLASSIFIER_RUN_LINES)
    return ParityConfig(artifacts=str(artifacts), out=str(out), limit=LIMIT, cache=cache,
                        tflite_python=TFLITE_PYTHON, **kw)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.png"))
    return dst


def test_every_format_on_every_backend_matches_keras(test_artifacts, keras_cache, tmp_path):
    result = run(_config(test_artifacts, tmp_path / "reports", keras_cache, reader_lines=1),
                 log=lambda _: None)

    # the classifier's pairs (the line reader's are held to their rules in their own test below)
    assert not [f for f in result.failures if not f.startswith("reader_")], result.failures
    manifest = json.loads((test_artifacts / "manifest.json").read_text())
    from mnist_edge.backends import BACKENDS

    expected = {(f["key"], b) for f in manifest["files"] for b, info in BACKENDS.items()
                if info.format == f["format"]}
    assert {(r.run.pair.key, r.run.pair.backend) for r in result.pairs} == expected
    assert {f["key"] for f in manifest["files"]} == {"tflite_int8", "tflite_float32",
                                                     "onnx_float32", "onnx_int8",
                                                     "tflite_float16", "tflite_dynamic"}
    for r in result.pairs:
        assert r.agreement >= 0.995 and abs(r.accuracy_delta) <= 0.003, r.run.pair.name
        if r.run.pair.precision == "float32":
            assert r.max_abs_prob_diff <= 1e-4, r.run.pair.name
        if r.run.pair.precision == "float16":  # float16 weights, float32 computation
            assert r.max_abs_prob_diff <= 1e-2, r.run.pair.name
    n = len(("litert", "tflite-runtime", "tensorflow"))
    tflite = sum(f["format"] == "tflite" for f in manifest["files"])
    assert len(result.cross) == tflite * n * (n - 1) // 2  # every TFLite file, every two backends


def test_a_backend_that_cannot_run_fails_the_run_and_is_named(test_artifacts, keras_cache,
                                                               tmp_path):
    cfg = _config(test_artifacts, tmp_path / "reports", keras_cache)
    cfg.tflite_python = str(tmp_path / "no-venv" / "bin" / "python")
    result = run(cfg, log=lambda _: None)
    assert not result.passed
    assert [f for f in result.failures if "not run" in f] == [result.failures[0]]
    assert result.failures[0].startswith("tflite-runtime: not run")
    assert all(r.passed for r in result.pairs)  # the pairs that ran are still within tolerance


def test_reports_agree_with_each_other(test_artifacts, keras_cache, tmp_path):
    out = tmp_path / "reports"
    result = run(_config(test_artifacts, out, keras_cache, backends="litert,onnxruntime"),
                 log=lambda _: None)

    data = json.loads((out / "parity.json").read_text())
    md = (out / "parity.md").read_text()
    assert data["passed"] is True and data["test_images"] == LIMIT
    files = json.loads((test_artifacts / "manifest.json").read_text())["files"]
    assert len(data["pairs"]) == len(files)  # one backend per kind: each file once
    for pair in data["pairs"]:
        row = (f"| {pair['key']} | {pair['file']} | {pair['backend']} | {pair['accuracy']:.2%} | "
               f"{pair['accuracy_delta_vs_keras'] * 100:+.2f} pt | "
               f"{pair['agreement_with_keras']:.2%} |")
        assert row in md
        assert f"| {len(pair['disagreements'])} |" in md.split(row)[1].splitlines()[0]
        assert pair["status"] == "pass" and "✅ pass" in md.split(row)[1].splitlines()[0]
        assert len(pair["per_class_accuracy_delta"]) == 10
    # the PNG shows exactly the images some pair answers differently from Keras
    disputed = sorted({i for p in data["pairs"] for i in p["disagreements"]})
    from checks.parity.report import disputed as disputed_images

    assert sorted(disputed_images(result)) == disputed
    png = (out / "parity.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def _damage_onnx(folder: Path, noise: float) -> None:
    """Replace model.onnx with an export of model.keras whose last layer got relative noise
    ``noise``."""
    from common.formats import get_format
    from common.tf import load_keras_model
    from export.context import ExportContext
    from export.export import ExportConfig
    from mnist_edge.digest import sha256_file

    model = load_keras_model(folder / "model.keras")
    dense = model.layers[-1]
    kernel, bias = dense.get_weights()
    rng = np.random.default_rng(0)
    dense.set_weights([kernel + rng.normal(0, noise * kernel.std(),
                                           kernel.shape).astype(np.float32), bias])
    fmt = get_format("onnx_float32")
    ctx = ExportContext(model=model, calibration=np.zeros((1, 28, 28, 1), np.float32),
                        opset=ExportConfig().opset,
                        source_sha256=sha256_file(folder / "model.keras"),
                        weights_sha256="perturbed")
    fmt.load_converter()(ctx, folder / fmt.filename)
    manifest_file = folder / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    for entry in manifest["files"]:  # as if the export had listed the damaged file
        if entry["key"] == fmt.key:
            entry["size"] = (folder / fmt.filename).stat().st_size
            entry["sha256"] = sha256_file(folder / fmt.filename)
    manifest_file.write_text(json.dumps(manifest))


@pytest.mark.parametrize("noise, figures", [(0.5, {"top-1 agreement", "max |Δprob|"}),
                                            (0.002, {"max |Δprob|"})])
def test_damaged_model_is_caught_and_named(test_artifacts, keras_cache, tmp_path, noise, figures):
    """Heavy damage breaks agreement; a tiny drift (same answers) still breaks the Δprob bound."""
    folder = _copy(test_artifacts, tmp_path / "damaged")
    _damage_onnx(folder, noise)

    result = run(_config(folder, tmp_path / "reports", keras_cache, backends="onnxruntime"),
                 log=lambda _: None)

    assert not result.passed
    assert ([r.run.pair.name for r in result.pairs if not r.passed]
            == ["onnx_float32 on onnxruntime"])
    assert all(f.startswith("onnx_float32 on onnxruntime: ") for f in result.failures)
    assert {fig for fig in FIGURES if any(fig in f for f in result.failures)} == figures
    md = (tmp_path / "reports" / "parity.md").read_text()
    assert "TOLERANCE BROKEN" in md and "❌ FAIL" in md


def test_cli_exits_non_zero_naming_the_broken_pair(test_artifacts, keras_cache, tmp_path):
    folder = _copy(test_artifacts, tmp_path / "damaged")
    _damage_onnx(folder, 0.5)

    done = subprocess.run([sys.executable, "-m", "checks.parity", "--artifacts", str(folder),
                           "--limit", str(LIMIT), "--backends", "onnxruntime",
                           "--reader-lines", str(CLASSIFIER_RUN_LINES),
                           "--out", str(tmp_path / "reports"), "--cache", keras_cache],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)

    assert done.returncode == 1, done.stderr
    assert "FAIL onnx_float32 on onnxruntime: top-1 agreement with Keras" in done.stderr
    assert "Traceback" not in done.stderr
    assert json.loads((tmp_path / "reports" / "parity.json").read_text())["passed"] is False


def test_stale_export_is_refused(test_artifacts, tmp_path):
    folder = _copy(test_artifacts, tmp_path / "stale")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["source_model"]["sha256"] = "0" * 64
    (folder / "manifest.json").write_text(json.dumps(manifest))

    with pytest.raises(ParityError, match="different model.keras.*make export"):
        run(_config(folder, tmp_path / "reports", None), log=lambda _: None)


def test_unknown_backend_is_refused(test_artifacts, tmp_path):
    with pytest.raises(ParityError, match="unknown tflite.*choose all or litert"):
        run(_config(test_artifacts, tmp_path / "reports", None, backends="tflite"),
            log=lambda _: None)


def test_int8_tolerances_name_the_figure():
    from common.formats import get_format

    tol = get_format("tflite_int8").tolerance
    ok = tol.against_keras("tflite_int8 on litert", -0.002, 0.996, 0.3)
    worse = tol.against_keras("tflite_int8 on litert", -0.004, 0.996, 0.3)
    split = tol.across_backends("tflite_int8 on litert vs tflite-runtime", 0.998)

    assert ok == []
    assert worse == ["tflite_int8 on litert: accuracy differs from Keras by -0.40 pt, "
                     "beyond ±0.3 pt"]
    assert tol.against_keras("x", 0.0, 0.994, 0.0)[0].startswith(
        "x: top-1 agreement with Keras 99.40% is below 99.50%")
    assert split == ["tflite_int8 on litert vs tflite-runtime: top-1 agreement 99.80% "
                     "is below 99.90%"]


# ------------------------------------------------------------------------------ the line reader
READER_LINES = 60  # lines of MNIST test digits per reader run: a few seconds


@pytest.fixture(scope="module")
def reader_artifacts(test_artifacts) -> Path:
    """The shared test folder, when its export holds the line reader."""
    if "line_reader" not in json.loads((test_artifacts / "manifest.json").read_text()):
        pytest.skip(f"{test_artifacts} holds no line reader (manifest.json has no line_reader)")
    return test_artifacts


def _greedy(scores: np.ndarray) -> str:
    """The documented decoding (manifest: line_reader.decoding): the top class per column,
    repeats merged, blanks (the last class) dropped."""
    best = scores.argmax(axis=1)
    return "".join(str(c) for i, c in enumerate(best)
                   if c != scores.shape[1] - 1 and (i == 0 or c != best[i - 1]))


def _keras_readings(folder: Path, strips: list[np.ndarray]) -> list[str]:
    """line_reader.keras's reading of each strip, one strip per call."""
    from common.tf import import_tensorflow

    import_tensorflow()
    import keras

    model = keras.saving.load_model(folder / "line_reader.keras", compile=False)
    return [_greedy(model(s[None, :, :, None].astype(np.float32) / 255, training=False)
                    .numpy()[0]) for s in strips]


def _readings(reader, strips: list[np.ndarray]) -> list[str]:
    return [_greedy(reader.scores(s)) for s in strips]


def test_every_reader_file_on_every_backend_reads_like_the_keras_reader(reader_artifacts,
                                                                       keras_cache, tmp_path):
    from common.formats import READER_FORMATS, get_format
    from common.strips import make_lines
    from mnist_edge.backends import BACKENDS, unusable_reason
    from mnist_edge.linereader import LineReader

    result = run(_config(reader_artifacts, tmp_path / "reports", keras_cache,
                         reader_lines=READER_LINES, reader_seed=5), log=lambda _: None)

    assert not [f for f in result.failures if not f.startswith("reader_")], result.failures
    reader = json.loads((tmp_path / "reports" / "parity.json").read_text())["line_reader"]
    manifest = json.loads((reader_artifacts / "manifest.json").read_text())
    expected = {(f["key"], b) for f in manifest["line_reader"]["files"]
                for b, info in BACKENDS.items() if info.format == f["format"]}
    assert {(p["key"], p["backend"]) for p in reader["pairs"]} == expected
    # the truth: the same lines made here, their labels and the Keras reader's readings
    lines = make_lines(None, "test", 5, 0, READER_LINES)
    keras = _keras_readings(reader_artifacts, lines.strips)
    assert reader["lines"] == len(lines.labels)
    assert reader["keras"]["exact_rate"] == pytest.approx(
        np.mean([k == t for k, t in zip(keras, lines.labels, strict=True)]), abs=1e-6)
    md = (tmp_path / "reports" / "parity.md").read_text()
    for p in reader["pairs"]:
        rule = get_format(p["key"], READER_FORMATS).tolerance
        unlike = {d["line"] for d in p["disagreements"]}
        for d in p["disagreements"]:  # each listed line: its label and Keras's reading
            assert (d["label"], d["keras"]) == (lines.labels[d["line"]], keras[d["line"]])
            assert d["read"] != d["keras"]
        if unusable_reason(p["backend"]) is None:  # what a user's LineReader reads here
            got = _readings(LineReader.load(reader_artifacts, key=p["key"],
                                            backend=p["backend"]), lines.strips)
            assert unlike == {i for i, (g, k) in enumerate(zip(got, keras, strict=True))
                              if g != k}, p["key"]
            assert p["exact_rate"] == pytest.approx(
                np.mean([g == t for g, t in zip(got, lines.labels, strict=True)]), abs=1e-6)
        assert p["agreement_with_keras"] == pytest.approx(1 - len(unlike) / len(keras), abs=1e-6)
        # the documented rule decides the status (an int8 file may move a line or two: on a
        # few hundred lines one line is several tenths of a point, the int8 bound 0.5 pt)
        broken = (p["agreement_with_keras"] < rule.min_agreement
                  or rule.max_accuracy_diff is not None
                  and abs(p["exact_rate"] - reader["keras"]["exact_rate"])
                  > rule.max_accuracy_diff + 1e-9
                  or rule.max_prob_diff is not None and p["max_abs_prob_diff"] > rule.max_prob_diff)
        assert p["status"] == ("fail" if broken else "pass"), p
        if p["precision"] == "float32":  # far inside its rule: scores within 1e-4 of Keras's
            assert p["status"] == "pass", p
        assert f"| {p['key']} | {p['file']} | {p['backend']} | {p['exact_rate']:.2%} |" in md
    n = len(("litert", "tflite-runtime", "tensorflow"))
    tflite_files = sum(f["format"] == "tflite" for f in manifest["line_reader"]["files"])
    assert len(reader["cross_backend"]) == tflite_files * n * (n - 1) // 2
    for c in reader["cross_backend"]:  # the format table's rule for two backends of one machine
        rule = get_format(c["key"], READER_FORMATS).tolerance
        assert c["status"] == ("pass" if c["agreement"] >= rule.cross_min_agreement else "fail"), c
    failing = [f"{p['key']} on {p['backend']}" for p in reader["pairs"] if p["status"] == "fail"]
    failing += [f"{c['key']} on {' vs '.join(c['backends'])}" for c in reader["cross_backend"]
                if c["status"] == "fail"]
    assert result.passed == (not failing)
    assert {f.split(":")[0] for f in result.failures} == set(failing)


def _swap_reader_onnx(folder: Path) -> None:
    """Ship the int8 reader ONNX under the float32 one's name, the manifest updated to match."""
    from mnist_edge.digest import sha256_file

    shutil.copyfile(folder / "line_reader_int8.onnx", folder / "line_reader.onnx")
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    for entry in manifest["line_reader"]["files"]:
        if entry["key"] == "reader_onnx_float32":
            entry["size"] = (folder / "line_reader.onnx").stat().st_size
            entry["sha256"] = sha256_file(folder / "line_reader.onnx")
    path.write_text(json.dumps(manifest))


def test_a_wrong_reader_file_fails_parity_and_is_named(reader_artifacts, keras_cache, tmp_path):
    folder = _copy(reader_artifacts, tmp_path / "swapped")
    if not (folder / "line_reader_int8.onnx").is_file():
        pytest.skip("the test export holds no int8 reader ONNX")
    _swap_reader_onnx(folder)

    done = subprocess.run([sys.executable, "-m", "checks.parity", "--artifacts", str(folder),
                           "--limit", str(LIMIT), "--backends", "onnxruntime",
                           "--reader-lines", str(READER_LINES), "--out", str(tmp_path / "r"),
                           "--cache", keras_cache],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)

    assert done.returncode == 1, done.stderr
    assert "FAIL reader_onnx_float32 on onnxruntime" in done.stdout
    assert "reader_onnx_float32 on onnxruntime: max |Δprob| vs Keras" in done.stderr
    assert "Traceback" not in done.stderr
    data = json.loads((tmp_path / "r" / "parity.json").read_text())
    assert data["passed"] is False and all(p["status"] == "pass" for p in data["pairs"])
    failed = {p["key"]: p["failures"] for p in data["line_reader"]["pairs"]
              if p["status"] == "fail"}
    assert any("max |Δprob|" in f for f in failed["reader_onnx_float32"])


def test_a_reader_exported_from_another_keras_file_is_refused(reader_artifacts, tmp_path):
    folder = _copy(reader_artifacts, tmp_path / "stale")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["line_reader"]["source_model"]["sha256"] = "0" * 64
    (folder / "manifest.json").write_text(json.dumps(manifest))

    with pytest.raises(ParityError, match="different line_reader.keras.*make export"):
        run(_config(folder, tmp_path / "reports", None), log=lambda _: None)


PARTS = {"line_reader": ("line_reader.keras", "reader"),  # manifest section: keras file, attribute
         "gate": ("gate.keras", "gate")}


@pytest.mark.parametrize("sections,said", [
    (("line_reader",), "Not checked: the export holds no line reader"),
    (("gate", "line_reader"), "Not checked: the export holds no gate"),
])
def test_without_a_part_parity_checks_the_classifier_and_says_so(test_artifacts, keras_cache,
                                                                tmp_path, sections, said):
    from common.formats import GATE_FORMATS, READER_FORMATS

    folder = _copy(test_artifacts, tmp_path / "without")
    manifest = json.loads((folder / "manifest.json").read_text())
    for section in sections:
        manifest.pop(section, None)
        for f in READER_FORMATS if section == "line_reader" else GATE_FORMATS:
            (folder / f.filename).unlink(missing_ok=True)
        (folder / PARTS[section][0]).unlink(missing_ok=True)
    (folder / "manifest.json").write_text(json.dumps(manifest))

    result = run(_config(folder, tmp_path / "reports", keras_cache, backends="onnxruntime"),
                 log=lambda _: None)

    assert result.passed
    assert all(getattr(result, PARTS[section][1]) is None for section in sections)
    assert [r.run.pair.key for r in result.pairs] == ["onnx_float32", "onnx_int8"]
    data = json.loads((tmp_path / "reports" / "parity.json").read_text())
    assert all(data[section] is None for section in sections)
    assert said in (tmp_path / "reports" / "parity.md").read_text()


# ------------------------------------------------------------------------------ the gate
def test_a_gate_file_is_held_to_its_row_on_decisions_at_the_threshold():
    """The documented rule: refused when the digit probability is below the threshold; accuracy
    against the truth, agreement with the Keras gate's decisions, |Δp| on the digit probability."""
    from common.formats import GATE_FORMATS, get_format
    from common.gate_scores import GateReference, against_keras

    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(1800, np.int64), np.zeros(200, np.int64)]
    keras = np.where(labels == 1, rng.uniform(0.35, 1, 2000), rng.uniform(0, 0.25, 2000))
    keras[:9] = 0.1                       # nine digits the Keras gate refuses
    keras[1800:1810] = 0.9                # ten non-digits it lets through
    ref = GateReference(np.zeros((2000, 28, 28), np.uint8), labels, keras, 0.3)
    int8 = get_format("gate_tflite_int8", GATE_FORMATS).tolerance
    flt = get_format("gate_tflite_float32", GATE_FORMATS).tolerance

    same = against_keras(int8, "gate_tflite_int8 on litert", keras, ref)
    at_threshold = keras.copy()
    at_threshold[100] = 0.3               # exactly the threshold: a digit, not refused
    nudged = against_keras(flt, "gate_tflite_float32 on litert", at_threshold, ref)
    flipped = keras.copy()
    flipped[1000:1012] = 0.05             # twelve more digits refused: 0.6% of decisions differ
    worse = against_keras(int8, "gate_tflite_int8 on litert", flipped, ref)

    assert same.failures == [] and same.agreement_with_keras == 1.0
    assert same.accuracy == (2000 - 9 - 10) / 2000
    assert same.false_refusals == 9 / 1800 and same.refusals == 190 / 200
    assert nudged.agreement_with_keras == 1.0 and nudged.disagreements == []
    assert any("max |Δprob|" in f for f in nudged.failures)   # float: |Δp| beyond 1e-4
    assert worse.disagreements == list(range(1000, 1012))
    assert worse.accuracy == (2000 - 21 - 10) / 2000
    assert [f.split(":")[0] for f in worse.failures] == ["gate_tflite_int8 on litert"] * 2
    assert "agreement with Keras 99.40% is below 99.50%" in worse.failures[0]
    assert "accuracy differs from Keras by -0.60 pt" in worse.failures[1]


def test_a_gate_file_on_two_backends_is_compared_by_its_decisions():
    from dataclasses import replace

    from checks.parity.compare import across_backends
    from checks.parity.pairs import Pair, Run

    scores = np.linspace(0, 1, 1001, dtype=np.float32)
    other = scores.copy()
    other[300] = 0.2999                    # 0.3 -> refused: one decision of 1001 changes
    pair = Pair("gate_tflite_int8", "gate_int8.tflite", "tflite", "int8", "litert")
    runs = [Run(pair, digit_scores=scores),
            Run(replace(pair, backend="tflite-runtime"), digit_scores=other)]

    (cross,) = across_backends(runs, threshold=float(scores[300]))

    assert cross.disagreements == [300] and cross.agreement == 1000 / 1001
    assert cross.failures == []           # 99.90% decided alike: the row's floor


def test_the_keras_gate_reference_is_its_digit_probability_on_test_digits_and_nondigits():
    from common.gate_scores import reference
    from common.tf import import_tensorflow

    import_tensorflow()
    import keras

    from train.gate_model import build_gate

    keras.utils.set_random_seed(0)
    model = build_gate()
    digits = np.random.default_rng(1).integers(0, 256, (50, 28, 28)).astype(np.uint8)

    ref = reference(model, digits, seed=3, threshold=0.5, nondigits=20)

    assert ref.images.shape == (70, 28, 28) and np.array_equal(ref.images[:50], digits)
    assert ref.labels.tolist() == [1] * 50 + [0] * 20
    expected = model.predict(ref.images[..., None].astype(np.float32) / 255, verbose=0)[:, 1]
    np.testing.assert_allclose(ref.scores, expected, atol=1e-6)
    assert ref.accuracy == np.mean((expected >= 0.5) == (ref.labels == 1))


@pytest.fixture(scope="module")
def gate_artifacts(test_artifacts) -> Path:
    """The shared test folder, when its export holds the gate."""
    if not json.loads((test_artifacts / "manifest.json").read_text()).get("gate"):
        pytest.skip(f"{test_artifacts} holds no gate (manifest.json has no gate section)")
    return test_artifacts


def test_every_gate_file_on_every_backend_decides_like_the_keras_gate(gate_artifacts,
                                                                      keras_cache, tmp_path):
    from common.nondigits import verification_set
    from common.tf import import_tensorflow
    from mnist_edge import Classifier
    from mnist_edge.backends import BACKENDS

    result = run(_config(gate_artifacts, tmp_path / "reports", keras_cache, reader_lines=1,
                         gate_seed=5), log=lambda _: None)

    manifest = json.loads((gate_artifacts / "manifest.json").read_text())
    gate = manifest["gate"]
    expected = {(f["key"], b) for f in gate["files"] for b, info in BACKENDS.items()
                if info.format == f["format"]}
    assert result.gate is not None
    assert {(r.run.pair.key, r.run.pair.backend) for r in result.gate.pairs} == expected
    assert not result.gate.failures, result.gate.failures
    import_tensorflow()
    import keras

    from common.data import load_mnist

    model = keras.saving.load_model(gate_artifacts / "gate.keras", compile=False)
    images, labels = verification_set(load_mnist().x_test, 5)
    keras_digit = model.predict(images[..., None].astype(np.float32) / 255, verbose=0)[:, 1]
    keras_decision = keras_digit >= gate["threshold"]
    for r in result.gate.pairs:
        if r.run.pair.backend == "tflite-runtime":
            continue  # runs in its own venv; its figures are held by the cross-backend rows
        clf = Classifier.load(gate_artifacts, backend=r.run.pair.backend,
                              key=r.run.pair.key.removeprefix("gate_"), gate=True)
        scores = clf.predict(images, refuse=True).digit_scores
        decision = scores >= gate["threshold"]
        assert np.mean(decision == keras_decision) >= 0.995, r.run.pair.name
        assert r.figures.agreement_with_keras == np.mean(decision == keras_decision)
        assert r.figures.accuracy == np.mean(decision == (labels == 1))
    data = json.loads((tmp_path / "reports" / "parity.json").read_text())
    assert data["gate"]["passed"] and len(data["gate"]["pairs"]) == len(expected)
    assert "\"No digit\" gate: every file on every backend" in (
        tmp_path / "reports" / "parity.md").read_text()
