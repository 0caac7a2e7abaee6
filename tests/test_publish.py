"""All-or-nothing publishing (common/publish.py): what it refuses, keeps and never deletes."""

from __future__ import annotations

import errno
import json
import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from common import publish

ROOT = Path(__file__).resolve().parents[1]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def _debris(parent: Path) -> list[str]:
    """Staging / old-set / lock entries a run left beside its artifacts folder."""
    return sorted(p.name for p in parent.iterdir()
                  if p.name.startswith((".staging-", ".old-")) or p.name.endswith(".lock"))


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message, message
    return message


# --- 1. never delete what mnist-edge did not write -----------------------------------------------

def test_folder_with_foreign_entries_is_refused_and_kept(tmp_path):
    v = tmp_path / "v"
    (v / "src" / "deep").mkdir(parents=True)
    (v / "src" / "deep" / "code.py").write_text("print('mine')\n")
    (v / ".git").mkdir()
    (v / ".git" / "config").write_text("[core]\n")
    (v / "model.keras").write_bytes(b"model")
    before = _snapshot(v)
    with pytest.raises(ValueError) as exc, publish.staging(v) as stage:
        publish.write_json(stage / "metrics.json", {"test_accuracy": 0.99})
    message = _one_line(exc)
    assert str(v) in message and ".git" in message and "src" in message
    assert _snapshot(v) == before
    assert _debris(tmp_path) == []
    with pytest.raises(ValueError, match="src"), publish.exclusive(v):  # a stage's early check
        pass
    assert _snapshot(v) == before and _debris(tmp_path) == []


def test_an_mnist_edge_set_empty_or_missing_folder_is_published(tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    for name in ("model.keras", "history.json", "manifest.json", "model_int8.tflite",
                 ".model-abcd_123.keras"):  # the last: an atomic_path temp file of an old run
        (full / name).write_bytes(name.encode())
    (tmp_path / "empty").mkdir()
    for folder in (full, tmp_path / "empty", tmp_path / "missing"):
        with publish.staging(folder) as stage:
            publish.write_json(stage / "metrics.json", {"test_accuracy": 0.99})
        assert json.loads((folder / "metrics.json").read_text()) == {"test_accuracy": 0.99}
    assert sorted(p.name for p in full.iterdir()) == [
        "history.json", "manifest.json", "metrics.json", "model.keras", "model_int8.tflite"]
    assert _debris(tmp_path) == []


def test_a_sub_folder_or_symlink_under_a_known_name_is_foreign(tmp_path):
    v = tmp_path / "v"
    (v / "model.keras").mkdir(parents=True)
    (v / "model.keras" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="model.keras"), publish.staging(v):
        pass
    assert (v / "model.keras" / "keep.txt").read_text() == "mine"


# --- 2. two runs at once -------------------------------------------------------------------------

_RUN = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from common import publish
    out, name, ready, go = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
    with publish.staging(out) as stage:
        publish.write_json(stage / name, {"by": name})
        ready.touch()
        deadline = time.monotonic() + 30
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        publish.write_json(stage / "config.json", {"by": name})
""")


def _start(out: Path, name: str, ready: Path, go: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _RUN, str(out), name, str(ready), str(go)],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)


def test_two_runs_at_once_publish_one_after_the_other(tmp_path):
    out = tmp_path / "artifacts"
    first = _start(out, "metrics.json", tmp_path / "first-ready", tmp_path / "go")
    deadline = time.monotonic() + 30
    while not (tmp_path / "first-ready").exists():
        assert first.poll() is None and time.monotonic() < deadline, first.stderr
        time.sleep(0.05)
    second = _start(out, "history.json", tmp_path / "second-ready", tmp_path / "never")
    # the first run holds its staging folder until the second says it is waiting for it, so the
    # two runs provably overlap (the second's first stderr line, read before the first may go on)
    waiting = second.stderr.readline()
    assert "waiting for another run" in waiting, waiting
    assert not (tmp_path / "second-ready").exists()
    (tmp_path / "never").touch()  # the second run, once it holds the lock, need not wait again
    (tmp_path / "go").touch()
    _, err1 = first.communicate(timeout=60)
    _, err2 = second.communicate(timeout=60)
    assert first.returncode == 0, err1
    assert second.returncode == 0, waiting + err2
    # the second run waited, was seeded with the first one's set and published on top of it
    assert json.loads((out / "metrics.json").read_text()) == {"by": "metrics.json"}
    assert json.loads((out / "history.json").read_text()) == {"by": "history.json"}
    assert json.loads((out / "config.json").read_text()) == {"by": "history.json"}
    assert _debris(tmp_path) == []


def test_clean_leftovers_keeps_a_live_runs_staging_folder(tmp_path):
    out = tmp_path / "artifacts"
    out.mkdir()
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(done.stdout)
    live = tmp_path / f".staging-artifacts-{os.getpid()}-abcd1234"
    dead = tmp_path / f".staging-artifacts-{dead_pid}-abcd1234"
    other = tmp_path / f".staging-artifacts-2-{dead_pid}-abcd1234"  # belongs to "artifacts-2"
    for folder in (live, dead, other):
        folder.mkdir()
        (folder / "model.keras").write_bytes(b"staged")
    publish.clean_leftovers(out)
    assert live.is_dir() and other.is_dir() and not dead.exists()


def test_a_second_process_waits_then_refuses_in_one_line(tmp_path):
    out = tmp_path / "artifacts"
    snippet = ("import sys\nfrom common import publish\n"
               "try:\n    with publish.exclusive(sys.argv[1], timeout=0.5):\n        pass\n"
               "except ValueError as exc:\n    sys.exit(str(exc))\n")
    with publish.exclusive(out):
        with publish.staging(out) as stage:  # the holder itself may stage (no self-deadlock)
            publish.write_json(stage / "metrics.json", {})
        done = subprocess.run([sys.executable, "-c", snippet, str(out)], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()  # a notice that it waits, then the one-line error
    assert len(lines) == 2 and lines[0].startswith("waiting for another run"), done.stderr
    assert str(out) in lines[1] and "another run" in lines[1] and "0.5 s" in lines[1]
    with publish.exclusive(out, timeout=0.5):  # released: free again
        pass
    assert _debris(tmp_path) == []


# --- 3. a symlinked artifacts folder -------------------------------------------------------------

def test_symlinked_folder_is_published_into_its_target(tmp_path):
    target = tmp_path / "other" / "arts"
    target.mkdir(parents=True)
    (target / "model.keras").write_bytes(b"model")
    link = tmp_path / "work" / "artifacts"
    link.parent.mkdir()
    link.symlink_to(target)
    with publish.staging(link) as stage:
        publish.write_json(stage / "metrics.json", {"test_accuracy": 0.99})
    assert link.is_symlink() and link.resolve() == target
    assert sorted(p.name for p in target.iterdir()) == ["metrics.json", "model.keras"]
    assert _debris(link.parent) == [] and _debris(target.parent) == []


def test_staging_symlink_leftover_is_cleaned(tmp_path):
    out = tmp_path / "artifacts"
    gone = tmp_path / ".staging-artifacts-abcd1234"  # what the old code left: a link
    gone.symlink_to(tmp_path / "nowhere")
    with publish.staging(out) as stage:
        publish.write_json(stage / "metrics.json", {})
    assert not gone.is_symlink()
    assert _debris(tmp_path) == []


# --- 4. strict JSON ------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_write_json_refuses_nan_and_inf(tmp_path, value):
    path = tmp_path / "metrics.json"
    with pytest.raises(ValueError) as exc:
        publish.write_json(path, {"test_loss": value})
    assert str(path) in _one_line(exc)
    assert list(tmp_path.iterdir()) == []


def test_nan_metric_fails_before_publishing(tmp_path):
    out = tmp_path / "artifacts"
    out.mkdir()
    (out / "metrics.json").write_text('{"test_loss": 0.1}\n')
    before = _snapshot(out)
    with pytest.raises(ValueError, match="metrics.json"), publish.staging(out) as stage:
        publish.write_json(stage / "metrics.json", {"test_loss": math.nan})
    assert _snapshot(out) == before
    assert _debris(tmp_path) == []


# --- 5. full disk / read-only folder -------------------------------------------------------------

def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_while_staging_is_one_line_and_keeps_the_previous_set(tmp_path, monkeypatch):
    out = tmp_path / "artifacts"
    out.mkdir()
    (out / "model.keras").write_bytes(b"previous model")
    (out / "metrics.json").write_text('{"test_accuracy": 0.9}\n')
    before = _snapshot(out)
    monkeypatch.setattr(Path, "write_bytes", _full_disk)
    with pytest.raises(publish.PublishError) as exc, publish.staging(out) as stage:
        publish.write_json(stage / "metrics.json", {"test_accuracy": 0.99})
    message = _one_line(exc)
    assert isinstance(exc.value, ValueError)
    assert str(out) in message and "intact" in message and "No space left" in message
    monkeypatch.undo()
    assert _snapshot(out) == before
    assert _debris(tmp_path) == []


def test_read_only_target_is_one_line_and_keeps_the_previous_set(tmp_path, monkeypatch):
    out = tmp_path / "artifacts"
    out.mkdir()
    (out / "model.keras").write_bytes(b"previous model")
    before = _snapshot(out)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(publish.tempfile, "mkdtemp", read_only)
    with pytest.raises(publish.PublishError) as exc, publish.staging(out):
        pass
    assert str(out) in _one_line(exc) and "intact" in str(exc.value)
    assert _snapshot(out) == before


def test_full_disk_in_atomic_path_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "report.json"
    path.write_text("{}\n")
    monkeypatch.setattr(Path, "write_bytes", _full_disk)
    with pytest.raises(publish.PublishError) as exc:
        publish.write_bytes(path, b"new")
    assert str(path) in _one_line(exc) and "intact" in str(exc.value)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
    assert path.read_text() == "{}\n"


def test_full_disk_for_a_new_file_says_none_was_written(tmp_path, monkeypatch):
    path = tmp_path / "new.json"
    monkeypatch.setattr(Path, "write_bytes", _full_disk)
    with pytest.raises(publish.PublishError) as exc:
        publish.write_bytes(path, b"new")
    assert "no new.json was written" in _one_line(exc) and "intact" not in str(exc.value)
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


# --- free space, checked before long work --------------------------------------------------------

def test_check_space_refuses_too_little_free_space_in_one_line(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(
        10_000_000, 9_000_000, 1_000_000))
    publish.check_space(tmp_path / "not" / "yet" / "artifacts", 900_000, "training")  # fits
    with pytest.raises(publish.PublishError) as exc:
        publish.check_space(tmp_path / "not" / "yet" / "artifacts", 25_000_000, "training")
    assert "1.0 MB free" in _one_line(exc) and "training needs about 25.0 MB" in str(exc.value)
    assert not (tmp_path / "not").exists()
