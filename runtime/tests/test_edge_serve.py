"""`mnist-edge serve`: the HTTP API answers as the classifier does in-process, and holds its
limits with one-line JSON errors.

A real server (Uvicorn) runs in a child process on a free port of 127.0.0.1, as a user starts
it; requests go through http.client, or a raw socket where a request must be left unfinished.
The photos are numbers written with MNIST test digits; the truth for each answer is
``Classifier.read`` / ``predict_files`` of the same file in this process.
"""

from __future__ import annotations

import http.client
import io
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from checks.served import Server as Served
from common import photos
from mnist_edge import Classifier

pytest.importorskip("uvicorn", reason="the serve extra is not installed (pip install "
                                      "'mnist-edge[serve]'; make test-runtime installs it)")
PIL = pytest.importorskip("PIL.Image")

LIMITS = {"--max-bytes": 400_000, "--max-pixels": 2_000_000, "--queue": 2}


class Server(Served):
    """The server as a user starts it, in this Python (the installed package)."""

    def __init__(self, model: Path | str, *flags: str):
        try:
            super().__init__(sys.executable, model, *flags)
        except RuntimeError as exc:
            pytest.fail(str(exc))

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, dict, dict]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(method, path, body, headers or {})
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        assert b"Traceback" not in data and b"site-packages" not in data
        answer = json.loads(data) if data else {}
        return resp.status, answer, dict(resp.getheaders())

    def finish(self) -> tuple[int, str]:
        """Stop it as Ctrl-C does: its exit status and all it wrote on stderr."""
        code = self.stop()
        log = self.stderr()
        self.__exit__()
        return code, log


def _jpeg(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PIL.fromarray(image).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PIL.fromarray(image).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def server(artifacts):
    flags = [str(v) for k, val in LIMITS.items() for v in (k, val)]
    s = Server(artifacts, *flags)
    yield s
    code, log = s.finish()
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def clf(artifacts):
    return Classifier.load(artifacts)


@pytest.fixture(scope="module")
def numbers(mnist_test, tmp_path_factory):
    """Photos of 4-digit numbers of test digits, as JPEG files: [(path, bytes)]."""
    x, y = mnist_test
    digits = photos.Digits(x, y, "test")
    rng = np.random.default_rng(5)
    folder = tmp_path_factory.mktemp("numbers")
    out = []
    for i in range(4):
        sample = photos.plain_number(digits, rng.choice(len(x), 4, replace=False).tolist(), rng)
        path = folder / f"n{i}.jpg"
        path.write_bytes(_jpeg(sample.image))
        out.append((path, path.read_bytes()))
    return out


def test_read_answers_what_the_classifier_reads_in_process(server, clf, numbers):
    for path, body in numbers:
        status, answer, _ = server.request("POST", "/read", body, {"Content-Type": "image/jpeg"})
        assert status == 200, answer
        expected = clf.read(path)
        assert answer["number"] == expected.number
        assert [d["box"] for d in answer["digits"]] == [list(d.box) for d in expected.digits]
        assert [d["label"] for d in answer["digits"]] == [d.label for d in expected.digits]
        assert answer["image"] == {"width": 640, "height": 480}
        assert answer["no_digit"] == expected.no_digit and answer["ms"] > 0
        assert "crop" not in answer["digits"][0]


def test_crops_on_request_are_what_the_model_saw(server, clf, numbers):
    path, body = numbers[0]
    status, answer, _ = server.request("POST", "/read?crops=1", body)
    assert status == 200, answer
    expected = clf.read(path)
    assert len(answer["digits"]) == len(expected.digits) > 0
    for got, want in zip(answer["digits"], expected.digits, strict=True):
        assert np.array_equal(np.array(got["crop"], dtype=np.uint8), want.crop)


def test_predict_answers_what_predict_files_answers(server, clf, mnist_test, tmp_path):
    x, _ = mnist_test
    for i in range(5):
        photo = 255 - np.kron(x[i], np.ones((4, 4), dtype=np.uint8))  # dark ink on white, 112 px
        path = tmp_path / f"d{i}.png"
        path.write_bytes(_png(photo))
        status, answer, _ = server.request("POST", "/predict", path.read_bytes(),
                                           {"Content-Type": "image/png"})
        assert status == 200, answer
        (want,) = clf.predict_files([path])
        assert answer["label"] == want.label and answer["no_digit"] == want.no_digit
        if want.label is not None:
            assert answer["name"] == clf.labels[want.label]
            assert np.allclose(answer["probabilities"], want.probabilities, atol=1e-5)


def test_info_gives_the_files_and_accuracy_of_the_manifest_and_no_path(server, manifest):
    status, info, _ = server.request("GET", "/info")
    assert status == 200
    entry = next(f for f in manifest["files"] if f["path"] == info["model"]["file"])
    assert info["model"]["accuracy"] == entry["verification"]["accuracy"]
    assert info["model"]["precision"] == entry["precision"]
    assert info["model"]["labels"] == manifest["labels"]
    assert info["reader"]["file"] in {f["path"] for f in manifest["line_reader"]["files"]}
    assert info["server"]["max_bytes"] == LIMITS["--max-bytes"]
    assert info["server"]["queue"] == LIMITS["--queue"]
    assert "/" not in json.dumps({k: info[k] for k in ("model", "reader", "gate")}).replace(
        "T-shirt/top", "")


def test_answers_on_a_kept_alive_connection_are_not_held_back(server):
    """An answer is written in two parts (head, then body). Unless the server sends small
    segments at once (TCP_NODELAY), the body waits for the client's ACK of the head, which
    the client delays by 40 ms or more: every answer on a kept-alive connection is that late.
    A GET /info costs the server a millisecond or two."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
    times = []
    try:
        for _ in range(30):
            t = time.perf_counter()
            conn.request("GET", "/info")
            resp = conn.getresponse()
            resp.read()
            times.append(time.perf_counter() - t)
            assert resp.status == 200
    finally:
        conn.close()
    assert sorted(times)[len(times) // 2] < 0.025, [round(s * 1000, 1) for s in times]


def test_the_page_comes_from_the_installed_package_with_a_strict_policy(server):
    sizes = {}
    for path, kind in (("/", "text/html"), ("/app.js", "text/javascript"),
                       ("/app.css", "text/css")):
        conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        assert resp.status == 200 and resp.getheader("Content-Type").startswith(kind)
        assert "default-src 'self'" in resp.getheader("Content-Security-Policy")
        assert resp.getheader("X-Content-Type-Options") == "nosniff"
        sizes[path] = len(body)
    assert all(sizes.values()) and sum(sizes.values()) <= 100 * 1024, sizes
    status, answer, _ = server.request("GET", "/index.html")
    assert status == 404


def _big_png(w: int, h: int) -> bytes:
    return _png(np.full((h, w), 255, dtype=np.uint8))


@pytest.mark.parametrize("method,path,body,headers,status,words", [
    ("POST", "/read", b"x" * 500_000, {}, 413, "more than the 400000"),
    ("POST", "/read", None, {"Content-Type": "image/png"}, 400, "empty body"),
    ("POST", "/read", b"%!PS-Adobe-3.0\n", {}, 415, "EPS format, not a supported"),
    ("POST", "/read", b"hello", {}, 415, "not a recognised image format"),
    ("POST", "/read", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, {}, 415, "not a recognised"),
    ("POST", "/read", "truncated", {}, 400, "cannot decode"),
    ("POST", "/read", b"\xff\xd8\xff\xe0", {"Content-Type": "text/plain"}, 415, "not an image"),
    ("POST", "/predict", "big", {}, 413, "declares 2001x1001 pixels"),
    ("GET", "/read", None, {}, 405, "not allowed"),
    ("POST", "/info", b"x", {}, 405, "not allowed"),
    ("GET", "/etc/passwd", None, {}, 404, "no such endpoint"),
    ("GET", "/../artifacts/manifest.json", None, {}, 404, "no such endpoint"),
    ("POST", "/read?crops=maybe", b"x", {}, 400, "crops must be 1 or 0"),
    ("POST", "/read?path=/etc/passwd", b"x", {}, 400, "unknown query parameter"),
    ("GET", "/camera", None, {}, 404, "no camera"),
])
def test_bad_requests_get_one_line_json_errors(server, method, path, body, headers, status,
                                               words):
    if body == "big":
        body = _big_png(2001, 1001)
    elif body == "truncated":
        noise = np.random.default_rng(0).integers(0, 256, (200, 200), dtype=np.uint8)
        body = _png(noise)[:3000]
    got, answer, _ = server.request(method, path, body, headers)
    assert got == status, answer
    assert set(answer) == {"error"} and words in answer["error"]
    assert "\n" not in answer["error"]


def test_a_body_without_a_declared_length_is_cut_at_the_limit(server):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    chunks = (b"y" * 65536 for _ in range(20))  # 1.3 MB, sent chunked
    conn.request("POST", "/read", chunks, {"Content-Type": "image/jpeg"}, encode_chunked=True)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    assert resp.status == 413 and "more than the 400000" in json.loads(data)["error"]


def _hold_a_slot(server) -> socket.socket:
    """A request whose body never finishes arriving: it keeps its place in the queue."""
    sock = socket.create_connection((server.host, server.port), timeout=30)
    sock.sendall(b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                 b"Content-Length: 1000\r\n\r\n" + b"\x89PNG")
    return sock


def test_past_its_queue_the_server_answers_busy_at_once(server, numbers):
    held = [_hold_a_slot(server) for _ in range(LIMITS["--queue"])]
    try:
        time.sleep(0.5)  # the server has admitted both
        start = time.monotonic()
        status, answer, headers = server.request("POST", "/read", numbers[0][1])
        assert status == 503 and answer["error"].startswith("busy")
        assert time.monotonic() - start < 2 and headers.get("retry-after") == "1"
        status, _, _ = server.request("GET", "/info")
        assert status == 200  # /info takes no place in the queue
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.5)  # the abandoned requests leave the queue
    status, answer, _ = server.request("POST", "/read", numbers[0][1])
    assert status == 200, answer


def test_a_model_without_a_line_reader_serves_predict_and_says_why_read_is_off(artifacts):
    s = Server(artifacts / "model_int8.tflite", "--unverified")  # tflite-runtime asks for it
    try:
        status, answer, _ = s.request("POST", "/read", _png(np.zeros((28, 28), np.uint8)))
        assert status == 501 and "line reader" in answer["error"]
        assert str(artifacts) not in answer["error"]  # names, not the server's folders
        assert answer["error"].startswith("model_int8.tflite: ")
        assert s.request("GET", "/info")[1]["reader"] is None
    finally:
        code, log = s.finish()
    assert "POST /read is off" in log


def test_it_listens_on_localhost_unless_told_and_then_warns(artifacts):
    s = Server(artifacts)
    code, log = s.finish()
    assert "at http://127.0.0.1:" in log and "warning" not in log
    assert code in (0, 130) and "Traceback" not in log
    s = Server(artifacts, "--host", "0.0.0.0")
    code, log = s.finish()
    assert "warning: serving on 0.0.0.0" in log and "without authentication" in log


@pytest.mark.parametrize("flags,message", [
    (["--queue", "0"], "queue must be a positive whole number"),
    (["--max-pixels", "60000000"], "max_pixels is at most"),
    (["--port", "70000"], "--port must be 0-65535"),
    (["--camera", "1", "--video", "x.mp4"], "not both"),
])
def test_mistakes_on_the_command_line_are_one_line(artifacts, flags, message):
    r = subprocess.run([sys.executable, "-m", "mnist_edge", "serve", str(artifacts), *flags],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_the_camera_endpoint_gives_the_latest_frame_of_a_video(artifacts, clf, mnist_test,
                                                                tmp_path):
    pytest.importorskip("cv2", reason="OpenCV is not installed (the video extra)")
    from common import videos

    x, y = mnist_test
    c = videos.clip(photos.Digits(x, y, "test"), [videos.Scene("4096", 30)], seed=3)
    path = videos.write_video(c, tmp_path / "clip.mp4")
    last = list(c.frames())[-1]
    s = Server(artifacts, "--video", str(path))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, answer, _ = s.request("GET", "/camera")
            if status == 200 and answer["ended"]:
                break
            time.sleep(0.2)
        assert status == 200 and answer["ended"] and answer["error"] is None, answer
        assert answer["frames_read"] == 30 and answer["frame"] == 29
        assert answer["number"] == clf.read(last).number
    finally:
        s.finish()
