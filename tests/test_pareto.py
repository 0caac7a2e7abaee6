"""make pareto: the frontier and the choice follow their documented rules, every exported file is
measured, and the photo accuracy is what predict_files gives a user on the same photos."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from checks.pareto.run import ParetoConfig, ParetoError, choose, folders, frontier, run

ROOT = Path(__file__).resolve().parents[1]


def _row(name: str, accuracy: float, p50: float, size: int = 1000, throughput: int = 1000) -> dict:
    return {"model": name, "folder": "f", "key": name, "path": f"{name}.tflite",
            "accuracy": accuracy, "p50_us": p50, "images_per_cpu_s": throughput,
            "size_bytes": size}


def test_the_frontier_holds_exactly_the_files_no_other_beats_on_accuracy_and_latency():
    rows = [_row("a", 0.990, 50), _row("b", 0.985, 20), _row("c", 0.985, 30),
            _row("d", 0.995, 80), _row("e", 0.990, 50), _row("f", 0.980, 90)]
    rows.append({**_row("g", 0.999, 1), "p50_us": None})  # not timed: never on the frontier
    # b beats c (as accurate, faster); d beats f; a and e tie and neither beats the other
    assert frontier(rows) == [0, 1, 3, 4]


def test_the_choice_is_the_fastest_smallest_and_highest_throughput_file_over_the_floor():
    rows = [_row("slow", 0.995, 90, size=10, throughput=500),
            _row("fast", 0.991, 20, size=900, throughput=800),
            _row("wide", 0.992, 40, size=500, throughput=2000),
            _row("fastest_but_below", 0.985, 5, size=1, throughput=9000)]
    c = choose(rows, 0.99)
    assert (c["meeting"], c["fastest"]["key"], c["highest_throughput"]["key"],
            c["smallest"]["key"]) == (3, "fast", "wide", "slow")
    none = choose(rows, 0.999)
    assert none["meeting"] == 0 and none["fastest"] is None and none["smallest"] is None


def test_every_file_is_measured_and_photo_accuracy_is_what_predict_files_gives(
        test_artifacts, tmp_path):
    from common import photos as sets
    from common.data import DataError, load_mnist
    from mnist_edge import Classifier
    from mnist_edge.manifest import read_manifest

    try:
        mnist = load_mnist()
    except DataError as exc:
        pytest.skip(f"no MNIST: {exc}")
    cfg = ParetoConfig(artifacts=str(test_artifacts), out=str(tmp_path), singles=30, runs=30,
                       seconds_per_batch=0.02, rounds=1, python=sys.executable, floor=0.5)
    result = run(cfg, log=lambda line: None)
    manifest = read_manifest(Path(test_artifacts) / "manifest.json")
    assert [r["key"] for r in result["rows"]] == [e.key for e in manifest.files]
    assert result["errors"] == []
    for row, entry in zip(result["rows"], manifest.files, strict=True):
        assert row["accuracy"] == entry.verification["accuracy"]
        assert row["size_bytes"] == entry.path.stat().st_size
        assert row["p50_us"] > 0 and row["images_per_cpu_s"] > 0
    # the photos as files, through predict_files, as a user classifies them
    folder = tmp_path / "photos"
    folder.mkdir()
    samples = list(sets.singles(sets.split_digits(mnist, "test"), cfg.seed, cfg.singles))
    paths = [s.write(folder / f"{s.index:05d}") for s in samples]
    labels = np.array([s.glyphs[0].label for s in samples])
    for row in result["rows"][:2]:
        clf = Classifier.load(test_artifacts, key=row["key"])
        got = np.array([-1 if r.label is None else r.label
                        for r in clf.predict_files(paths, refuse=False)])
        assert row["photo_accuracy"] == round(float(np.mean(got == labels)), 4)
    # the choice names a file over the floor, and none faster is
    best = result["choice"]["fastest"]
    assert best["accuracy"] >= 0.5
    assert best["p50_us"] == min(r["p50_us"] for r in result["rows"] if r["accuracy"] >= 0.5)


def test_the_report_sets_every_file_of_each_set_side_by_side(test_artifacts, tmp_path):
    other = tmp_path / "artifacts-copy"  # a second set, as make train export MODEL=NAME makes
    shutil.copytree(test_artifacts, other, ignore=shutil.ignore_patterns(".*"))
    out = tmp_path / "reports"
    done = subprocess.run([sys.executable, "-m", "checks.pareto", "--artifacts",
                           f"{test_artifacts},{other}", "--out", str(out), "--singles", "10",
                           "--runs", "10", "--seconds-per-batch", "0.01", "--rounds", "1",
                           "--python", sys.executable, "--floor", "0.5"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    data = json.loads((out / "pareto.json").read_text())
    n = len(data["rows"]) // 2
    assert [r["folder"] for r in data["rows"]] == [str(test_artifacts)] * n + [str(other)] * n
    md = (out / "pareto.md").read_text()
    assert all(f"`{r['path']}`" in md for r in data["rows"])
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "fastest file reaching 50.0%: " in done.stdout


def test_a_folder_without_an_export_is_refused_with_one_line(tmp_path):
    with pytest.raises(ParetoError, match="no manifest.json; export it first"):
        folders(ParetoConfig(artifacts=str(tmp_path)))
    done = subprocess.run([sys.executable, "-m", "checks.pareto", "--artifacts", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert "no manifest.json" in done.stderr
    done = subprocess.run([sys.executable, "-m", "checks.pareto", "--floor", "1.5"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "must be in [0, 1)" in done.stderr
