"""The benchmark's correctness (never its speed): it runs, reports every field, percentiles are
ordered, the saved choice is used by Classifier.load(prefer=...), baselines agree with the
runtime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mnist_edge import Classifier, MnistEdgeError
from mnist_edge import bench as edge_bench
from mnist_edge.choice import save_choice

ROOT = Path(__file__).resolve().parents[1]
STATS = ("min", "p50", "p90", "p99", "max")
ROW_FIELDS = {"schema", "path", "key", "format", "precision", "backend", "runtime", "threads",
              "size_bytes", "load_ms", "first_inference_ms", "runs", "latency_us", "floor_us",
              "overhead", "throughput", "throughput_cpu", "peak_rss_mb", "device"}


@pytest.fixture(scope="module")
def images(tmp_path_factory, test_artifacts):
    from common.data import DataError, load_mnist

    try:
        m = load_mnist()
    except DataError as exc:
        pytest.skip(f"no MNIST: {exc}")
    path = tmp_path_factory.mktemp("bench") / "images.npy"
    np.save(path, m.x_test[:300])
    return path, m.x_test[:300], m.y_test[:300]


def _edge(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mnist_edge", "bench", *args], capture_output=True,
                          text=True, env=env, timeout=600)


def _assert_ordered(stats: dict) -> None:
    values = [stats[k] for k in STATS]
    assert values == sorted(values) and values[0] > 0, stats


def test_bench_one_file_reports_every_field_in_order(test_artifacts, images):
    path, x, y = images
    done = _edge(str(test_artifacts / "model_int8.tflite"), "--quick", "--json", "--images",
                 str(path))
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout)
    assert row.keys() >= ROW_FIELDS
    _assert_ordered(row["latency_us"])
    _assert_ordered(row["floor_us"])
    assert set(row["throughput"]) == {str(b) for b in edge_bench.BATCHES}
    assert set(row["throughput_cpu"]) == set(row["throughput"])
    assert all(v > 0 for v in (*row["throughput"].values(), *row["throughput_cpu"].values()))
    assert row["size_bytes"] == (test_artifacts / "model_int8.tflite").stat().st_size
    assert row["peak_rss_mb"] > 0 and row["load_ms"] > 0 and row["overhead"] > 0
    # the labels it reports are the runtime's answers for those images
    expected = Classifier.load(test_artifacts / "model_int8.tflite",
                               backend=row["backend"]).predict(x).labels
    assert row["labels"] == expected.tolist()
    assert np.mean(np.asarray(row["labels"]) == y) > 0.9


def test_bench_folder_saves_a_choice_that_load_prefer_uses(test_artifacts, tmp_path, monkeypatch):
    env = {**os.environ, "MNIST_EDGE_CACHE": str(tmp_path)}
    done = _edge(str(test_artifacts), "--quick", "--json", "--runs", "20", "--seconds-per-batch",
                 "0.01", env=env)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    keys = {e["key"] for e in json.loads((test_artifacts / "manifest.json").read_text())["files"]}
    assert {r["key"] for r in out["rows"]} == keys  # every listed file, on some installed backend
    ok = [r for r in out["rows"] if "error" not in r]
    best = min(ok, key=lambda r: r["latency_us"]["p50"])
    assert out["recommended"]["latency"]["key"] == best["key"]
    assert out["recommended"]["latency"]["backend"] == best["backend"]
    assert Path(out["saved"]).is_file() and Path(out["saved"]).parent == tmp_path

    monkeypatch.setenv("MNIST_EDGE_CACHE", str(tmp_path))
    clf = Classifier.load(test_artifacts, prefer="latency")
    assert (clf.entry.key, clf.backend) == (best["key"], best["backend"])


def test_prefer_follows_the_saved_choice_and_falls_back_without_one(test_artifacts, tmp_path,
                                                                     monkeypatch):
    monkeypatch.setenv("MNIST_EDGE_CACHE", str(tmp_path))
    default = Classifier.load(test_artifacts)
    # nothing saved
    assert Classifier.load(test_artifacts, prefer="latency").entry.key == default.entry.key
    manifest = test_artifacts / "manifest.json"
    save_choice(manifest, {"latency": {"key": "onnx_float32", "backend": "onnxruntime"},
                           "throughput": {"key": "tflite_float32",
                                          "backend": "auto-not-a-backend"}})
    clf = Classifier.load(test_artifacts, prefer="latency")
    assert (clf.entry.key, clf.backend) == ("onnx_float32", "onnxruntime")
    assert Classifier.load(test_artifacts, prefer="throughput").entry.key == default.entry.key
    with pytest.raises(MnistEdgeError, match="prefer must be"):
        Classifier.load(test_artifacts, prefer="fastest")
    with pytest.raises(MnistEdgeError, match="need an artifacts folder"):
        Classifier.load(test_artifacts / "model_int8.tflite", prefer="latency")


def test_bench_refuses_bad_flags_with_one_line(test_artifacts):
    done = _edge(str(test_artifacts / "model_int8.tflite"), "--runs", "0")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "--runs" in done.stderr


def test_make_bench_quick_writes_reports_with_every_row_and_agreeing_baselines(test_artifacts,
                                                                              images, tmp_path):
    from checks.bench.run import SweepConfig, run

    path, x, y = images
    cfg = SweepConfig(artifacts=str(test_artifacts), out=str(tmp_path), threads="1",
                      backends="litert,onnxruntime", runs=30, images=300, rounds=1,
                      seconds_per_batch=0.01, cli_repeats=1, live_minutes=0, serve_seconds=0)
    result = run(cfg)
    from checks.bench.report import write_reports

    paths = write_reports(result, tmp_path)
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.values())
    data = json.loads(paths["json"].read_text())
    rows = [r for r in data["rows"] if "error" not in r]
    # every file of the export on the one selected backend of its kind
    from mnist_edge.manifest import read_manifest

    files = read_manifest(Path(test_artifacts)).files
    assert {(r["key"], r["backend"]) for r in rows} == {
        (e.key, "litert" if e.format == "tflite" else "onnxruntime") for e in files}
    assert {"tflite_int8", "tflite_float32", "onnx_float32", "onnx_int8", "tflite_float16",
            "tflite_dynamic"} <= {e.key for e in files}
    md = paths["md"].read_text()
    for r in rows:
        _assert_ordered(r["latency_us"])
        assert f"| {r['key']} | {r['backend']} | 1 |" in md
        baseline = "textbook" if r["format"] == "tflite" else "ort-default"
        assert {baseline, "keras-call", "keras-predict", "keras-predict-cpu"} <= r["speedup"].keys()
        # the runtime and the textbook loop / default session / Keras give the same answers
        for name, agreement in r["agreement"].items():
            assert agreement >= (0.99 if r["precision"] == "float32" or name != "keras"
                                 else 0.97), (r["key"], name)
        assert 0.9 < r["accuracy"] <= 1.0
    kinds = {b["baseline"] for b in data["baselines"] if "error" not in b}
    assert kinds == {"textbook", "ort-default", "keras"}
    assert {"mnist-edge predict", "bare ai-edge-litert script",
            "TensorFlow+Keras script"} <= data["one_image"].keys()
    assert all(c.get("output") == ["7"]
               for c in data["one_image"].values()), data["one_image"]  # x_test[0] is a 7
    assert any(t["target"].startswith("best throughput") for t in data["targets"])
    manifest = json.loads((test_artifacts / "manifest.json").read_text())
    _assert_gate_rows(data, manifest, md)
    # the live reader: the generated video read to its end, each change once; no long stream
    read = data["live"]["read"]
    assert "error" not in read and read["frames"] == data["live"]["video"]["frames"], read
    assert read["readings_wrong"] == 0 and read["fps"] > 0
    assert (f"| {read['key']} | {read['backend']} | yes | {read['frames']} | "
            f"{read['fps']:.1f} ({read['fps_cpu']:.1f}) |") in md
    assert "The long live stream (memory over time) was skipped (--live-minutes 0)." in md
    assert any(t["target"].startswith("live: frames/s") for t in data["targets"])
    assert data["serve"] is None and "Not measured (`--serve-seconds 0`" in md
    # the line reader's files, each on the backends asked for that run it, as their own rows
    if "line_reader" not in manifest:
        assert data["reader_rows"] is None and "Not timed: the export holds no line reader" in md
        return
    files = manifest["line_reader"]["files"]
    backend = {"tflite": "litert", "onnx": "onnxruntime"}
    assert {(r["key"], r["backend"]) for r in data["reader_rows"]} == {
        (f["key"], backend[f["format"]]) for f in files}
    for r in data["reader_rows"]:
        assert "error" not in r, r
        _assert_ordered(r["latency_us"])
        assert r["size_bytes"] == (test_artifacts / Path(r["path"]).name).stat().st_size
        assert r["strip"] == [32, 128] and data["reader_strip"] == [32, 128]
        assert (f"| {r['key']} | {r['backend']} | 1 | {r['size_bytes'] / 1024:.0f} | "
                f"{r['latency_us']['p50']:.1f} | {r['latency_us']['p90']:.1f} |") in md


def _assert_gate_rows(data: dict, manifest: dict, md: str) -> None:
    """The gate's rows: each classifier file with a gate file beside it, timed with and without
    it in the same run, and the reference int8 file's ratio among the targets."""
    if not manifest.get("gate"):
        assert data["gate_rows"] is None and "Not timed: the export holds no gate" in md
        return
    twins = {f["key"].removeprefix("gate_") for f in manifest["gate"]["files"]}
    ran = {(r["key"], r["backend"]) for r in data["rows"] if "error" not in r}
    assert {(g["key"], g["backend"]) for g in data["gate_rows"]} == {
        (k, b) for k, b in ran if k in twins}
    for g in data["gate_rows"]:
        assert "error" not in g, g
        _assert_ordered(g["latency_us"])
        _assert_ordered(g["gate_latency_us"])
        _assert_ordered(g["latency_with_gate_us"])
        assert g["gate_ratio"] == pytest.approx(
            g["gate_latency_us"]["p50"] / g["latency_us"]["p50"], abs=1e-3)
        added = g["latency_with_gate_us"]["p50"] - g["latency_us"]["p50"]
        assert g["refuse_ratio"] == pytest.approx(added / g["latency_us"]["p50"], abs=1e-3)
    assert any(t["target"].startswith("gate cost / predict, batch 1, tflite_int8")
               for t in data["targets"])


def test_the_gate_cost_target_is_met_at_half_the_reference_files_time_and_no_more():
    from checks.bench.run import MAX_GATE_COST, targets

    def row(key: str, ratio: float | None) -> dict:
        return ({"key": key, "backend": "litert", "error": "failed"} if ratio is None
                else {"key": key, "backend": "litert", "gate_ratio": ratio})

    found = targets([], [], {}, [row("tflite_int8", 0.5), row("tflite_float32", 0.9)])
    assert MAX_GATE_COST == 0.5
    assert [(t["value"], t["met"]) for t in found] == [(0.5, True)]  # the reference file only
    assert targets([], [], {}, [row("tflite_int8", 0.51)])[0]["met"] is False
    assert targets([], [], {}, [row("tflite_int8", None)])[0]["met"] is None
    assert targets([], [], {}, None) == []


def test_the_typical_reader_strip_is_four_test_digits_in_the_readers_input():
    from checks.bench.run import typical_strip
    from common.strips import HEIGHT, STRIDE

    x = np.random.default_rng(0).integers(1, 256, size=(5, 28, 28), dtype=np.uint8)
    strip = typical_strip(x)
    assert strip.dtype == np.uint8 and strip.shape == (HEIGHT, 128) and strip.shape[1] % STRIDE == 0
    for i in range(4):  # each digit untouched, side by side, centred in the height
        assert np.array_equal(strip[2:30, 28 * i:28 * (i + 1)], x[i])
    assert not strip[:2].any() and not strip[30:].any() and not strip[:, 112:].any()


def test_bench_reader_times_the_line_readers_scores_and_refuses_a_folder_without_one(
        test_artifacts, tmp_path):
    from mnist_edge.errors import ModelError

    manifest = json.loads((test_artifacts / "manifest.json").read_text())
    if "line_reader" in manifest:
        strip = np.zeros((32, 128), np.uint8)
        strip[6:26, 10:110:7] = 255
        for entry in manifest["line_reader"]["files"]:
            row = edge_bench.bench_reader(str(test_artifacts), strip, runs=20, warmup=2,
                                          key=entry["key"])
            _assert_ordered(row["latency_us"])
            assert (row["key"], row["size_bytes"], row["strip"]) == (entry["key"], entry["size"],
                                                                     [32, 128])
            assert row["format"] == entry["format"] and row["load_ms"] > 0
    folder = tmp_path / "no-reader"
    folder.mkdir()
    manifest.pop("line_reader", None)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="line_reader"):
        edge_bench.bench_reader(str(folder), np.zeros((32, 128), np.uint8), runs=1)


def test_live_bench_reads_the_video_on_one_core_and_samples_a_short_live_stream(test_artifacts,
                                                                                tmp_path):
    from checks.bench.live import MAX_LIVE_RSS_GROWTH, MIN_LIVE_FPS, measure, targets
    from common.data import DataError, load_mnist

    try:
        mnist = load_mnist()
    except DataError as exc:
        pytest.skip(f"no MNIST: {exc}")
    scenes = (("4097", 40, 1, 0), ("2358", 40, 0, 1))  # a short video: 80 frames
    live = measure(mnist, str(test_artifacts / "manifest.json"), tmp_path, rounds=1,
                   minutes=0.1, scenes=scenes)
    read, stream = live["read"], live["stream"]
    assert "error" not in read, read
    assert read["frames"] == 80 and read["fps"] > 0 and read["fps_cpu"] > 0
    # the textbook OpenCV pass over the same file does less than the reader, so it is faster;
    # the ratio CI holds is the reader's frames/s over its
    assert read["textbook_fps"] > read["fps"]
    assert read["fps_vs_textbook"] == pytest.approx(read["fps"] / read["textbook_fps"], rel=0.01)
    assert read["cpu"] in os.sched_getaffinity(0) and read["gate"]
    # every number shown, reported once, in order, from about the frame it appeared on
    assert [n for _, n in read["readings"]] == ["4097", "2358"] and read["readings_wrong"] == 0
    assert read["changes"] == [[0, "4097"], [40, "2358"]] and read["max_lag_frames"] <= 5
    assert live["video"]["size"] == [640, 480] and live["video"]["frames"] == 80
    # 6 s of a camera-like source at 30 frames/s, memory compared over its first and last 3 s
    assert stream["measured"] and "error" not in stream, stream
    assert stream["window_s"] == 3 and stream["samples"] >= 15
    assert stream["frames_read"] > 0 and stream["frames_read"] + stream["frames_dropped"] <= 6 * 31
    assert stream["changes"] >= 2  # the clip starts on an empty page, then shows 4097
    assert stream["first_window_peak_mb"] == stream["window_peaks_mb"][0] > 0
    assert stream["last_window_peak_mb"] == stream["window_peaks_mb"][-1] > 0
    assert stream["rss_growth"] == pytest.approx(
        stream["last_window_peak_mb"] / stream["first_window_peak_mb"], abs=1e-3)
    assert stream["peak_rss_mb"] >= max(stream["window_peaks_mb"])
    goals = {t["goal"] for t in targets(live)}
    assert {f">= {MIN_LIVE_FPS}", "0", f"<= {MAX_LIVE_RSS_GROWTH}"} == goals


def test_live_bench_targets_and_floors_catch_a_slow_or_wrong_reader_and_growing_memory():
    from checks.bench.live import readings_wrong, targets, window_peaks
    from common.floors import breaches

    changes = [[0, ""], [15, "4096"], [55, "4097"]]
    assert readings_wrong([[0, ""], [17, "4096"], [57, "4097"]], changes) == 0
    assert readings_wrong([[0, ""], [17, "4097"]], changes) == 2              # one missed
    assert readings_wrong([[0, ""], [17, "4096"], [30, "4"], [57, "4097"]], changes) == 2
    # peaks per window; the last window is the last seconds of the stream
    samples = [(float(t), 100.0 + t) for t in range(11)]
    assert window_peaks(samples, 4) == [103.0, 107.0, 110.0]
    live = {"read": {"fps": 29.9, "fps_vs_textbook": 0.069, "readings_wrong": 0},
            "stream": {"measured": False, "skipped": "--quick"}}
    assert [t["met"] for t in targets(live)] == [False, True]  # no memory target when skipped
    lines = breaches("bench", {"live": live})
    assert any(line.startswith("live.read.fps_vs_textbook = 0.069, below its floor 0.07")
               for line in lines)
    live["read"]["fps_vs_textbook"] = 0.071  # a slower machine: frames/s alone is not held
    assert not any(line.startswith("live.read.fps") for line in breaches("bench", {"live": live}))
    assert not any(line.startswith(("live.read.readings_wrong", "live.stream")) for line in lines)
    live["read"]["readings_wrong"] = 1
    assert any(line.startswith("live.read.readings_wrong = 1, above its ceiling 0") for line in
               breaches("bench", {"live": live}))
    live["stream"] = {"measured": True, "rss_growth": 1.06, "seconds": 600, "window_s": 60}
    assert [t["met"] for t in targets(live)] == [False, False, False]


def test_serve_targets_and_floors_catch_a_slow_busy_or_growing_server():
    from checks.bench.serve import targets
    from common.floors import breaches

    served = {"one_client": {"p50_vs_inprocess": 1.2, "errors": 0, "wrong_numbers": 0},
              "load": {"clients": 8, "seconds": 30.0, "throughput_vs_inprocess": 0.9,
                       "busy_rate": 0.0, "errors": 0, "wrong_numbers": 0, "rss_growth": 1.01},
              "server_tracebacks": 0}
    assert all(t["met"] for t in targets(served))
    assert not [line for line in breaches("bench", {"serve": served}) if "serve." in line]
    for where, figure, value in (("one_client", "p50_vs_inprocess", 1.6),
                                 ("load", "throughput_vs_inprocess", 0.7),
                                 ("load", "busy_rate", 0.02), ("load", "errors", 1),
                                 ("load", "wrong_numbers", 1), ("load", "rss_growth", 1.2)):
        broken = {**served, where: {**served[where], figure: value}}
        assert [t["met"] for t in targets(broken)].count(False) == 1, figure
        assert any(line.startswith(f"serve.{where}.{figure} = ")
                   for line in breaches("bench", {"serve": broken})), figure
    assert targets({"error": "mnist-edge serve exited with 2"})[0]["met"] is False
    assert any(line.startswith("serve.load.throughput_vs_inprocess: not measured")
               for line in breaches("bench", {"serve": {"error": "no server"}}))


def test_models_side_by_side_time_each_int8_file_and_read_each_sets_own_figures(test_artifacts,
                                                                                 images, tmp_path):
    from checks.bench.models import compare

    _, x, _ = images
    # one set twice: the same file must time alike, and every figure is the set's own record
    r = compare([str(test_artifacts), str(test_artifacts)], sys.executable, x, 300, 3, tmp_path)
    first, second = r["sets"]
    assert first["time_ratio"] == 1.0 and 0.5 < second["time_ratio"] < 2.0
    assert len(first["int8_rounds_us"]) == 3 and first["int8_p50_us"] > 0
    manifest = json.loads((test_artifacts / "manifest.json").read_text())
    int8 = next(f for f in manifest["files"] if f["key"] == "tflite_int8")
    assert first["int8_kb"] == round((test_artifacts / int8["path"]).stat().st_size / 1024, 1)
    assert first["keras_accuracy"] == round(manifest["training"]["test_accuracy"], 4)
    assert first["int8_gap"] == round(abs(int8["verification"]["accuracy"]
                                          - manifest["training"]["test_accuracy"]), 4)
    assert first["parameters"] == manifest["training"]["parameters"]
    assert [t["target"].split(": ", 1)[1] for t in r["targets"]][:3] == [
        "Keras test accuracy", "int8 vs Keras test accuracy, gap", "parameters"]


def test_the_edge_floors_catch_a_slow_or_large_edge_model_and_skip_without_a_comparison():
    from common.floors import breaches

    edge = {"model": "edge", "parameters": 36_346, "multiply_adds_ratio": 0.97, "int8_kb": 44.0,
            "time_ratio": 0.45, "int8_gap": 0.0003, "keras_accuracy": 0.989}
    models = {"present": True, "sets": [{"model": "reference"}, edge]}
    assert not [b for b in breaches("bench", {"models": models}) if "models." in b]
    edge["time_ratio"], edge["int8_kb"] = 0.7, 80.0
    lines = [b for b in breaches("bench", {"models": models}) if "models." in b]
    assert len(lines) == 2 and "time_ratio = 0.7, above its ceiling" in lines[1]
    assert not [b for b in breaches("bench", {"models": None}) if "models." in b]


def test_make_bench_refuses_a_compare_folder_without_an_export_before_timing(test_artifacts,
                                                                           tmp_path):
    done = subprocess.run([sys.executable, "-m", "checks.bench", "--artifacts", str(test_artifacts),
                           "--out", str(tmp_path / "out"), "--compare", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert "no manifest.json" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
