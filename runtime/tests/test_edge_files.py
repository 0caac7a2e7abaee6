"""Model and manifest paths as an attacker or a careless user gives them: special files, symlinks
out of the folder, hand-edited manifests, the wrong kind of path. One line each, no traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mnist_edge import Classifier, ModelError, modelfile
from mnist_edge import manifest as manifest_mod
from mnist_edge.manifest import read_manifest, verify_all

POSIX_SPECIAL = pytest.mark.skipif(not (os.path.exists("/dev/zero") and hasattr(os, "mkfifo")),
                                   reason="needs /dev/zero and named pipes (POSIX)")


def _cap_memory() -> None:  # a regression reads /dev/zero until MemoryError: keep it small
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def run(*args, cwd=None, timeout=120, cap_memory=False):
    done = subprocess.run([sys.executable, "-m", "mnist_edge", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=timeout,
                          preexec_fn=_cap_memory if cap_memory else None)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def one_line(done) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mnist-edge: "), done.stderr
    return lines[0]


def _copy(artifacts: Path, dest: Path) -> Path:
    """manifest.json and the files it lists, the line reader's too (not the 8 MB model.keras)."""
    dest.mkdir(parents=True)
    shutil.copy(artifacts / "manifest.json", dest)
    for entry in read_manifest(artifacts).all_files:
        shutil.copy(entry.path, dest / entry.path.name)
    return dest


def _edit(folder: Path, edit) -> Path:
    m = json.loads((folder / "manifest.json").read_text())
    edit(m)
    (folder / "manifest.json").write_text(json.dumps(m))
    return folder / "manifest.json"


# ------------------------------------------------------------------ 1. special files, symlinks
@POSIX_SPECIAL
def test_devices_and_pipes_are_refused_before_they_are_read(artifacts, tmp_path):
    (tmp_path / "zero.tflite").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "pipe.onnx")
    (tmp_path / "zeros").mkdir()
    (tmp_path / "zeros" / "manifest.json").symlink_to("/dev/zero")
    (tmp_path / "zero.json").symlink_to("/dev/zero")
    for model in ("/dev/zero", tmp_path / "zero.tflite", tmp_path / "pipe.onnx",
                  tmp_path / "zeros", tmp_path / "zero.json"):
        done = run("info", model, timeout=30, cap_memory=True)
        assert done.returncode == 2 and done.stdout == ""
        line = one_line(done)
        assert str(model) in line and "not a regular file" in line, line
    done = run("verify", tmp_path / "zeros", timeout=30, cap_memory=True)
    assert done.returncode == 2 and "not a regular file" in one_line(done)

    folder = _copy(artifacts, tmp_path / "art")
    first = json.loads((folder / "manifest.json").read_text())["files"][0]["path"]
    (folder / first).unlink()
    os.mkfifo(folder / first)  # inside the folder, but it would block the reader forever
    done = run("verify", folder, timeout=30)
    assert done.returncode == 1
    fail = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
    assert len(fail) == 1 and "named pipe" in fail[0] and "not a regular file" in fail[0], fail


@pytest.mark.skipif(not Path("/proc/self/maps").is_file(), reason="needs Linux /proc")
def test_a_file_that_reports_size_0_is_read_only_up_to_the_limit(tmp_path, monkeypatch):
    # /proc files are regular but report st_size 0: only a bounded read keeps the cap
    monkeypatch.setattr(modelfile, "MAX_MODEL_BYTES", 64)
    monkeypatch.setattr(manifest_mod, "MAX_MANIFEST_BYTES", 64)
    (tmp_path / "maps.tflite").symlink_to("/proc/self/maps")
    with pytest.raises(ModelError, match="too large for a model file") as info:
        Classifier.load(tmp_path / "maps.tflite")
    assert "(limit 64 bytes)" in str(info.value)
    (tmp_path / "manifest.json").symlink_to("/proc/self/maps")
    with pytest.raises(ModelError, match="too large for a manifest"):
        read_manifest(tmp_path)


def test_a_manifest_entry_may_not_lead_out_of_its_folder(artifacts, tmp_path):
    folder = _copy(artifacts, tmp_path / "art")
    files = json.loads((folder / "manifest.json").read_text())["files"]
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$salt$hash:19000:0:99999:7:::\n" * 37)  # 1369 bytes
    (folder / files[0]["path"]).unlink()
    (folder / files[0]["path"]).symlink_to(secret)
    with pytest.raises(ModelError, match="outside the manifest's folder") as info:
        Classifier.load(folder, key=files[0]["key"])
    message = str(info.value)
    assert "\n" not in message and str(secret.stat().st_size) not in message
    results = verify_all(folder)
    assert "outside the manifest's folder" in results[0][1]
    assert str(secret.stat().st_size) not in results[0][1]
    assert all(problem is None for _, problem in results[1:])

    # a symlinked sub-folder, holding a genuine copy of the model, leads out just the same
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(artifacts / files[0]["path"], elsewhere / files[0]["path"])
    (folder / "sub").symlink_to(elsewhere, target_is_directory=True)
    _edit(folder, lambda m: m["files"][0].update(path=f"sub/{files[0]['path']}"))
    with pytest.raises(ModelError, match="outside the manifest's folder"):
        Classifier.load(folder, key=files[0]["key"])
    done = run("verify", folder)
    assert done.returncode == 1 and "outside the manifest's folder" in done.stdout


def test_a_folder_reached_through_a_symlink_and_links_inside_it_still_work(artifacts, tmp_path):
    folder = _copy(artifacts, tmp_path / "real" / "art")
    files = json.loads((folder / "manifest.json").read_text())["files"]
    (folder / "store").mkdir()
    (folder / files[0]["path"]).rename(folder / "store" / files[0]["path"])
    (folder / files[0]["path"]).symlink_to(Path("store") / files[0]["path"])
    link = tmp_path / "link"
    link.symlink_to(folder, target_is_directory=True)
    assert [problem for _, problem in verify_all(link)] == [None] * len(
        read_manifest(folder).all_files)
    clf = Classifier.load(link, key=files[0]["key"])
    assert clf.predict(np.zeros((28, 28), np.uint8)).probabilities.shape == (1, 10)


# ------------------------------------------------------------------ 2. hand-edited manifests
def _set(key, value):
    return lambda m: m.update({key: value})


def _set_file(key, value):
    return lambda m: m["files"][0].update({key: value})


@pytest.mark.parametrize("edit, message", [
    (_set_file("input", "x"), "files[0].input must be an object, found a string"),
    (_set_file("output", 3), "files[0].output must be an object, found a number"),
    (_set_file("verification", [1, 2]), "files[0].verification must be an object, found an array"),
    (lambda m: m["files"][0]["input"].update(quantization="x"),
     "files[0].input.quantization must be an object or null"),
    (lambda m: m["files"][0]["input"].update(quantization={"scale": "abc"}),
     "files[0].input.quantization"),
    (_set_file("path", "model\x00.tflite"), "files[0].path must be a string without NUL"),
    (_set_file("path", ""), "files[0] has path ''"),
    (_set_file("key", 5), "files[0].key must be a string"),
    (_set_file("precision", ["int8"]), "files[0].precision must be a string"),
    (_set_file("key", "tflite\x00int8"), "files[0].key must be a string without NUL"),
    (_set_file("size", True), "files[0] has a malformed size"),
    (_set_file("size", 1.5), "files[0] has a malformed size"),
    (_set_file("sha256", "z" * 64), "files[0] has a malformed size or sha256"),
    (_set("labels", 7), "labels must be an array of 10 strings, one per class, found a number"),
    (_set("dataset", "MNIST"), "dataset must be an object, found a string"),
    (_set("dataset", {"name": "x"}), "dataset.kind must be a non-empty string, found null"),
    (_set("dataset", {"name": "", "kind": "items"}),
     'dataset.name must be a non-empty string, found ""'),
    (_set("labels", [str(d) for d in range(9)]), "labels must be an array of 10 strings"),
    (_set("labels", list(range(10))), "labels must be an array of 10 strings"),
    (_set("schema_version", True), "schema_version must be the integer 1, found true"),
    (_set("schema_version", 1.0), "schema_version must be the integer 1, found 1.0"),
    (_set("schema_version", "1"), 'schema_version must be the integer 1, found "1"'),
])
def test_hand_edited_manifests_are_refused_in_one_line(artifacts, tmp_path, edit, message):
    folder = _copy(artifacts, tmp_path / "art")
    mpath = _edit(folder, edit)
    with pytest.raises(ModelError) as info:
        read_manifest(folder)
    text = str(info.value)
    assert message in text and text.startswith(f"{mpath}: ") and "\n" not in text, text


@pytest.mark.parametrize("text, message", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"schema_version": 1, "a": ' + '{"b": ' * 100_000 + "1" + "}" * 100_001,
     "nested too deeply"),
    ('{"schema_version": 1, "files": [{"size": 1' + "0" * 5000 + "}]}", "not valid JSON"),
])
def test_json_that_breaks_the_parser_gives_one_line(tmp_path, text, message):
    (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(ModelError, match=message) as info:
        read_manifest(tmp_path)
    assert "\n" not in str(info.value)


def test_edited_manifests_that_used_to_load_are_refused_by_the_cli(artifacts, tmp_path):
    folder = _copy(artifacts, tmp_path / "art")
    _edit(folder, _set("labels", 7))
    done = run("info", folder)
    assert done.returncode == 2 and "labels must be an array of 10 strings" in one_line(done)
    (folder / "manifest.json").write_text('{"a": ' * 100_000 + "1" + "}" * 100_000)
    done = run("predict", folder, tmp_path / "none.png")
    assert done.returncode == 2 and "nested too deeply" in one_line(done)


def test_null_and_unknown_keys_stay_accepted(artifacts, tmp_path):
    folder = _copy(artifacts, tmp_path / "art")

    def edit(m):
        m.update(labels=None, future_field={"x": [1, {"y": None}]})
        m["files"][-1].update(verification=None, scheme=None, extra=[1, 2])

    _edit(folder, edit)
    m = read_manifest(folder)
    assert m.labels == [str(d) for d in range(10)] and m.files[-1].verification == {}


# ------------------------------------------------------------------ 3. the right message
def test_verify_on_a_model_file_says_to_pass_its_folder(artifacts, manifest):
    model = artifacts / manifest["files"][0]["path"]
    done = run("verify", model)
    assert done.returncode == 2
    line = one_line(done)
    assert "is a model file, not an artifacts folder or manifest.json" in line, line
    assert f"mnist-edge verify {artifacts}" in line and "utf-8" not in line


def test_verify_on_a_path_that_does_not_exist_says_so(tmp_path):
    done = run("verify", "artifact", cwd=tmp_path)
    line = one_line(done)
    assert done.returncode == 2 and "artifact: no such file or folder" in line, line
    assert "has no manifest.json" not in line
    done = run("verify", "missing.json", cwd=tmp_path)
    line = one_line(done)
    assert "missing.json: no such file" in line and "has no manifest.json" not in line, line
    done = run("verify", tmp_path)
    assert f"{tmp_path} has no manifest.json" in one_line(done)


@pytest.mark.parametrize("content", ['{"epochs": 10, "seed": 42}', "[1, 2]", '"text"'])
def test_a_json_file_that_is_not_a_manifest_is_named_as_such(tmp_path, content):
    (tmp_path / "config.json").write_text(content)
    done = run("predict", tmp_path / "config.json", tmp_path / "none.png")
    assert done.returncode == 2
    line = one_line(done)
    assert "not an mnist-edge manifest" in line and "upgrade" not in line, line


def test_a_newer_or_incomplete_manifest_gets_its_own_message(artifacts, tmp_path):
    folder = _copy(artifacts, tmp_path / "art")
    _edit(folder, _set("schema_version", 2))
    with pytest.raises(ModelError, match="upgrade mnist-edge"):
        read_manifest(folder)
    _edit(folder, lambda m: m.pop("schema_version"))
    with pytest.raises(ModelError, match="lacks 'schema_version'"):
        read_manifest(folder)
