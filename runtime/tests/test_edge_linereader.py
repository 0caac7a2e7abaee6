"""The line reader's side of an artifacts folder, as the device sees it: a folder without a reader
still serves the classifier and says which reader file is missing; a malformed ``line_reader``
section is refused in one line; strips of the wrong shape are refused in one line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from mnist_edge import Classifier, ModelError
from mnist_edge.linereader import LineReader
from mnist_edge.manifest import read_manifest


def _copy(artifacts, tmp_path, section=None):
    """A copy of the artifacts folder whose manifest has ``section`` as its line_reader."""
    folder = tmp_path / "artifacts"
    shutil.copytree(artifacts, folder, ignore=shutil.ignore_patterns(".*"))
    if section is not None:
        path = folder / "manifest.json"
        raw = json.loads(path.read_text())
        raw["line_reader"] = section
        path.write_text(json.dumps(raw))
    return folder


def _without_reader(artifacts, folder):
    """A copy of the classifier's side of the folder: its files (and its gate's), and a manifest
    without ``line_reader`` (as an export made before the line reader existed)."""
    folder.mkdir(parents=True)
    raw = json.loads((artifacts / "manifest.json").read_text())
    raw.pop("line_reader", None)
    for entry in raw["files"] + (raw.get("gate") or {}).get("files", []):
        shutil.copy(artifacts / entry["path"], folder / entry["path"])
    (folder / "manifest.json").write_text(json.dumps(raw))
    return folder


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_a_folder_without_a_reader_still_serves_the_classifier(artifacts, tmp_path):
    artifacts = _without_reader(artifacts, tmp_path / "art")
    manifest = read_manifest(artifacts)
    assert "line_reader" not in manifest.data and manifest.reader is None
    assert Classifier.load(artifacts).predict(np.zeros((1, 28, 28), np.uint8)).labels.shape == (1,)
    with pytest.raises(ModelError) as exc:
        LineReader.load(artifacts)
    text = _one_line(exc)
    assert "line_reader_int8.tflite" in text and "run make train export" in text


SECTION = {"input": {"height": 32}, "output": {"stride": 4, "classes": 11, "blank": 10}}


@pytest.mark.parametrize("section, expected", [
    ([], "line_reader must be an object"),
    ({**SECTION}, "line_reader.files must be an array"),
    ({**SECTION, "files": [], "output": {"stride": 4, "classes": 11, "blank": 11}},
     "line_reader.output.blank is 11, not one of the 11 classes"),
    ({**SECTION, "files": [], "input": {"height": "32"}},
     "line_reader.input.height must be an integer of at least 1"),
    ({**SECTION, "files": [{"path": "line_reader_int8.tflite", "format": "tflite"}]},
     "line_reader.files[0] lacks 'size'"),
])
def test_a_malformed_reader_section_is_refused_in_one_line(artifacts, tmp_path, section,
                                                           expected):
    folder = _copy(artifacts, tmp_path, section)
    with pytest.raises(ModelError) as exc:
        read_manifest(folder)
    assert expected in _one_line(exc)


def test_an_empty_reader_section_names_the_missing_file(artifacts, tmp_path):
    folder = _copy(artifacts, tmp_path, {**SECTION, "files": []})
    assert Classifier.load(folder).path.name == "model_int8.tflite"
    with pytest.raises(ModelError) as exc:
        LineReader.load(folder)
    assert "line_reader_int8.tflite" in _one_line(exc)


def test_a_listed_reader_file_that_is_missing_is_named(artifacts, tmp_path):
    entry = {"key": "reader_tflite_int8", "path": "line_reader_int8.tflite", "format": "tflite",
             "precision": "int8", "size": 1000, "sha256": "0" * 64}
    folder = _copy(artifacts, tmp_path, {**SECTION, "files": [entry]})
    with pytest.raises(ModelError) as exc:
        LineReader.load(folder)
    assert "line_reader_int8.tflite" in _one_line(exc)
