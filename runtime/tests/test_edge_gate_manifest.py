"""The manifest's ``gate`` section as the device reads it: its files, classes, threshold and
calibration; a folder without one has no gate; a malformed one is refused in one line naming the
field; the gate's files are checked like every other listed file."""

from __future__ import annotations

import json

import pytest

from mnist_edge import ModelError
from mnist_edge.manifest import read_manifest, verify_all

CLASSIFIER = {"key": "tflite_int8", "path": "model_int8.tflite", "format": "tflite",
              "precision": "int8", "size": 3, "sha256": "a" * 64}
GATE_FILE = {"key": "gate_tflite_int8", "path": "gate_int8.tflite", "format": "tflite",
             "precision": "int8", "size": 5, "sha256": "b" * 64,
             "verification": {"accuracy": 0.98}}
CALIBRATION = {"threshold": 0.29, "method": "the 0.5% quantile of held-out digits",
               "validation_refusals": 0.95}
SECTION = {"files": [GATE_FILE], "classes": ["not a digit", "digit"], "threshold": 0.29,
           "calibration": CALIBRATION, "source_model": {"path": "gate.keras"}}


def _folder(tmp_path, **extra):
    """A folder whose manifest lists one classifier file and the keys in ``extra``."""
    folder = tmp_path / "artifacts"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps(
        {"schema_version": 1, "files": [CLASSIFIER], **extra}))
    return folder


def test_the_gate_section_is_read(tmp_path):
    manifest = read_manifest(_folder(tmp_path, gate=SECTION))
    gate = manifest.gate
    assert gate is not None
    assert [e.key for e in gate.files] == ["gate_tflite_int8"]
    entry = gate.files[0]
    assert (entry.path.name, entry.format, entry.precision, entry.size) == (
        "gate_int8.tflite", "tflite", "int8", 5)
    assert entry.verification == {"accuracy": 0.98}
    assert gate.classes == ("not a digit", "digit") and gate.threshold == 0.29
    assert gate.calibration == CALIBRATION and gate.data["source_model"] == {"path": "gate.keras"}
    # every listed file: the classifier's, then the gate's
    assert [e.key for e in manifest.all_files] == ["tflite_int8", "gate_tflite_int8"]


@pytest.mark.parametrize("extra", [{}, {"gate": None}])
def test_without_a_gate_section_there_is_no_gate(tmp_path, extra):
    manifest = read_manifest(_folder(tmp_path, **extra))
    assert manifest.gate is None and [e.key for e in manifest.all_files] == ["tflite_int8"]


def test_unknown_keys_of_the_gate_section_are_ignored(tmp_path):
    gate = read_manifest(_folder(tmp_path, gate={**SECTION, "kernel": "future"})).gate
    assert gate is not None and gate.threshold == 0.29


@pytest.mark.parametrize("section, expected", [
    ([], "gate must be an object"),
    ({**SECTION, "files": None}, "gate.files must be an array"),
    ({**SECTION, "threshold": 1.5}, "gate.threshold must be a number between 0 and 1"),
    ({**SECTION, "threshold": 0}, "gate.threshold must be a number between 0 and 1"),
    ({**SECTION, "threshold": "0.29"}, "gate.threshold must be a number between 0 and 1"),
    ({**SECTION, "threshold": True}, "gate.threshold must be a number between 0 and 1"),
    ({k: v for k, v in SECTION.items() if k != "threshold"}, "gate.threshold must be a number"),
    ({**SECTION, "classes": ["no", "yes"]}, "gate.classes must be an array of at least 2 strings"),
    ({**SECTION, "classes": "digit"}, "gate.classes must be an array"),
    ({**SECTION, "calibration": [0.29]}, "gate.calibration must be an object"),
    ({**SECTION, "files": [{"path": "gate_int8.tflite", "format": "tflite"}]},
     "gate.files[0] lacks 'size'"),
])
def test_a_malformed_gate_section_is_refused_in_one_line(tmp_path, section, expected):
    with pytest.raises(ModelError) as exc:
        read_manifest(_folder(tmp_path, gate=section))
    text = str(exc.value)
    assert expected in text and "\n" not in text and "export again" in text


def test_the_gate_files_are_checked_like_every_listed_file(tmp_path):
    folder = _folder(tmp_path, gate=SECTION)
    (folder / "model_int8.tflite").write_bytes(b"abc")
    (folder / "gate_int8.tflite").write_bytes(b"12345")  # the right size, another sha256
    problems = {entry.key: problem for entry, problem in verify_all(folder)}
    assert set(problems) == {"tflite_int8", "gate_tflite_int8"}
    assert "sha256" in str(problems["gate_tflite_int8"])
