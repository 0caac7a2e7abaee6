"""What the runtime writes, walks and prints when files around it are hostile: links planted in
the --crops folder, links out of a walked folder, file names and manifest text that carry tabs,
newlines or terminal escapes, a damaged saved benchmark choice, ONNX weights kept outside the
model file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mnist_edge import Classifier, MnistEdgeError

EDGE = [sys.executable, "-m", "mnist_edge"]
PRECIOUS = b"the user's own file\n"


def run(*args, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([*EDGE, *map(str, args)], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env=env)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def photo(digit: np.ndarray, path: Path) -> Path:
    """One MNIST digit as dark ink on white paper, with a margin: what `read` is for."""
    from PIL import Image

    page = np.full((120, 120), 255, np.uint8)
    page[30:86, 30:86] = 255 - np.asarray(Image.fromarray(digit).resize((56, 56)))
    Image.fromarray(page).save(path)
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory, mnist_test) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    x, _ = mnist_test
    photo(x[0], folder / "a.png")
    photo(x[1], folder / "b.png")
    return folder


def crop_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.is_symlink())


# ------------------------------------------------------------------------------------ --crops
def test_crops_never_write_through_a_link_planted_at_a_crop_name(artifacts, photos, tmp_path):
    crops, outside = tmp_path / "crops", tmp_path / "outside"
    crops.mkdir()
    outside.mkdir()
    victims = []
    for i in range(4):  # every name the first input's digits could get
        for label in range(10):
            victim = outside / f"victim-{i}-{label}"
            victim.write_bytes(PRECIOUS)
            (crops / f"00000-a-{i}-{label}.png").symlink_to(victim)
            victims.append(victim)
    done = run("read", artifacts, photos / "a.png", "--crops", crops)
    assert done.returncode == 0, done.stderr
    assert all(v.read_bytes() == PRECIOUS for v in victims)
    assert sorted(p.name for p in outside.iterdir()) == sorted(v.name for v in victims)
    written = crop_files(crops)
    assert written, "the digit's crop was not written next to the planted links"
    from PIL import Image

    for path in written:
        with Image.open(path) as img:
            assert img.size == (28, 28)


def test_crops_keep_files_already_in_the_folder(artifacts, photos, tmp_path):
    crops = tmp_path / "crops"
    assert run("read", artifacts, photos / "a.png", "--crops", crops).returncode == 0
    first = {p.name: p.read_bytes() for p in crop_files(crops)}
    assert first
    mine = crops / "notes.txt"
    mine.write_bytes(PRECIOUS)
    assert run("read", artifacts, photos / "a.png", "--crops", crops).returncode == 0
    after = {p.name: p.read_bytes() for p in crop_files(crops)}
    assert all(after[name] == data for name, data in first.items())  # none overwritten
    assert len(after) == 2 * len(first) + 1  # the second run's crops under new names
    assert mine.read_bytes() == PRECIOUS


def test_read_never_reads_its_own_crops_back(artifacts, photos, tmp_path):
    folder = tmp_path / "photos"
    shutil.copytree(photos, folder)
    for _ in range(2):  # the second run meets the first run's crops already there
        done = run("read", artifacts, folder, "--crops", folder / "crops")
        assert done.returncode == 0, done.stderr
        names = [line.split("\t")[0] for line in done.stdout.splitlines()]
        assert names == [str(folder / "a.png"), str(folder / "b.png")]
    assert crop_files(folder / "crops")


def test_a_crops_folder_named_as_an_input_is_not_read(artifacts, photos, tmp_path):
    crops = tmp_path / "crops"
    assert run("read", artifacts, photos / "a.png", "--crops", crops).returncode == 0
    done = run("read", artifacts, crops, "--crops", crops)
    assert done.returncode == 1
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 2  # the folder refused, then the count


# ------------------------------------------------------------------------------- folder walk
def test_the_folder_walk_never_follows_a_link_out_of_the_folder(artifacts, photos, tmp_path):
    folder, outside = tmp_path / "in", tmp_path / "outside"
    folder.mkdir()
    shutil.copytree(photos, outside)
    shutil.copyfile(photos / "a.png", folder / "a.png")
    (folder / "everything").symlink_to(outside)
    (folder / "up").symlink_to(tmp_path)
    done = run("predict", artifacts, folder)
    names = [line.split("\t")[0] for line in done.stdout.splitlines()]
    assert names == [str(folder / "a.png")]
    assert str(outside) not in done.stdout
    assert done.returncode == 1  # the links out are named on stderr, one line each
    assert sum("everything" in line for line in done.stderr.splitlines()) == 1


def test_a_link_within_the_folder_is_walked_once_and_a_loop_ends(artifacts, photos, tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    shutil.copyfile(photos / "a.png", folder / "sub" / "a.png")
    (folder / "alias").symlink_to(folder / "sub")
    (folder / "sub" / "back").symlink_to(folder)
    done = run("predict", artifacts, folder)
    assert done.returncode == 0, done.stderr
    assert [line.split("\t")[0] for line in done.stdout.splitlines()] == \
        [str(folder / "sub" / "a.png")]


# ------------------------------------------------------------------------- forged output lines
FORGING = "a.png\t9\t0.9999\nforged.png"


@pytest.mark.parametrize("command", ["predict", "read"])
def test_a_file_name_cannot_forge_result_lines(artifacts, photos, tmp_path, command):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copyfile(photos / "a.png", folder / f"{FORGING}.png")
    shutil.copyfile(photos / "b.png", folder / "zz.png")
    (folder / "bad\x1b[2J\nfake.png").write_bytes(b"not an image")
    done = run(command, artifacts, folder)
    assert done.returncode == 1
    rows = done.stdout.splitlines()
    assert len(rows) == 2 and all(len(row.split("\t")) == 3 for row in rows), rows
    assert rows[0].split("\t")[0] == str(folder / "a.png\\t9\\t0.9999\\nforged.png.png")
    assert "\x1b" not in done.stderr
    assert len(done.stderr.splitlines()) == 2  # the unreadable file, then the count
    as_json = [json.loads(line) for line in run(command, artifacts, folder, "--json")
               .stdout.splitlines()]
    assert {row["input"] for row in as_json} >= {str(folder / f"{FORGING}.png")}  # exact names


def copied_artifacts(artifacts: Path, folder: Path) -> Path:
    folder.mkdir()
    for item in artifacts.iterdir():
        if item.is_file():
            shutil.copyfile(item, folder / item.name)
    return folder


def test_info_and_verify_escape_control_characters_of_the_manifest(artifacts, tmp_path):
    folder = copied_artifacts(artifacts, tmp_path / "art")
    meta = json.loads((folder / "manifest.json").read_text())
    meta["created_utc"] = "2026\x1b]0;pwned\x07\x1b[2J\nforged line"
    extra = dict(meta["files"][0], path="gone\x1b[31m\r\n.tflite", key="evil\x1b[1m")
    meta["files"].append(extra)
    (folder / "manifest.json").write_text(json.dumps(meta))
    info = run("info", folder)
    assert info.returncode == 0, info.stderr
    assert "\x1b" not in info.stdout and "\x07" not in info.stdout and "\r" not in info.stdout
    created = [line for line in info.stdout.splitlines() if line.startswith("created_utc")]
    assert created == ["created_utc     2026\\x1b]0;pwned\\x07\\x1b[2J\\nforged line"]
    verify = run("verify", folder)
    assert verify.returncode == 1
    assert "\x1b" not in verify.stdout + verify.stderr and "\r" not in verify.stdout
    assert len(verify.stdout.splitlines()) == len(meta["files"]) + sum(
        len((meta.get(side) or {}).get("files", [])) for side in ("line_reader", "gate"))


# -------------------------------------------------------------------- the saved benchmark choice
@pytest.mark.parametrize("saved", [
    {"latency": {"key": ["tflite_int8"], "backend": "litert"}},
    {"latency": {"key": "tflite_int8", "backend": ["litert"]}},
    {"latency": {"key": {"a": 1}, "backend": {"b": 2}}},
    {"latency": {"key": "no-such-file", "backend": "litert"}},
    {"latency": {"key": None, "backend": None}},
    {"latency": ["tflite_int8", "litert"]},
    ["latency"],
    "latency",
])
def test_a_damaged_saved_choice_falls_back_to_the_manifests_order(artifacts, tmp_path, monkeypatch,
                                                                   saved):
    from mnist_edge.choice import choice_path

    monkeypatch.setenv("MNIST_EDGE_CACHE", str(tmp_path))
    path = choice_path(artifacts / "manifest.json")
    path.write_text(json.dumps(saved))
    default = Classifier.load(artifacts)
    clf = Classifier.load(artifacts, prefer="latency")
    assert (clf.entry.key, clf.backend) == (default.entry.key, default.backend)


# ------------------------------------------------------------------------ ONNX external weights
@pytest.fixture()
def onnx_with_external_weights(artifacts, tmp_path) -> Path:
    """The exported ONNX model saved with its weights in a separate file, next to it."""
    onnx = pytest.importorskip("onnx", reason="the onnx package writes external weights")
    pytest.importorskip("onnxruntime", reason="onnxruntime runs ONNX models")
    folder = tmp_path / "ext"
    folder.mkdir()
    model = onnx.load(str(artifacts / "model.onnx"))
    onnx.save_model(model, str(folder / "model.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.bin")
    assert (folder / "weights.bin").stat().st_size > 0
    return folder / "model.onnx"


def test_onnx_weights_outside_the_model_file_are_refused(onnx_with_external_weights, tmp_path,
                                                         mnist_test, monkeypatch):
    model = onnx_with_external_weights
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    # a weights file of the same name in the current folder, zeroed: it must never be read
    (elsewhere / "weights.bin").write_bytes(bytes((model.parent / "weights.bin").stat().st_size))
    for cwd in (model.parent, elsewhere):
        monkeypatch.chdir(cwd)
        with pytest.raises(MnistEdgeError, match="external"):
            Classifier.load(model)
    done = run("predict", model, photos_npy(mnist_test, tmp_path), cwd=model.parent)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1
    assert "external" in done.stderr


def test_onnx_external_weights_are_refused_through_a_manifest(onnx_with_external_weights,
                                                              artifacts, tmp_path, monkeypatch):
    from mnist_edge.digest import sha256_hex

    folder = copied_artifacts(artifacts, tmp_path / "art")
    shutil.copyfile(onnx_with_external_weights, folder / "model.onnx")
    shutil.copyfile(onnx_with_external_weights.parent / "weights.bin", folder / "weights.bin")
    meta = json.loads((folder / "manifest.json").read_text())
    entry = next(f for f in meta["files"] if f["path"] == "model.onnx")
    data = (folder / "model.onnx").read_bytes()
    entry["size"], entry["sha256"] = len(data), sha256_hex(data)  # vouched for, yet incomplete
    (folder / "manifest.json").write_text(json.dumps(meta))
    monkeypatch.chdir(folder)  # where onnxruntime, given the bytes alone, looks for weights.bin
    with pytest.raises(MnistEdgeError, match="external"):
        Classifier.load(folder, key=entry["key"])


def photos_npy(mnist_test, folder: Path) -> Path:
    path = folder / "x.npy"
    np.save(path, mnist_test[0][:4])
    return path
