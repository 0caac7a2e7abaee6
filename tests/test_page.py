"""The page `mnist-edge serve` shows at /, in a real browser: headless Chromium from Debian
(`chromium`, `chromium-driver`) driven by Selenium, against a server on 127.0.0.1.

Digits are drawn on the canvas with pointer events along the strokes of MNIST test digits (each
digit's ink thinned to a one-pixel skeleton, walked from its ends); photos are uploaded through
the file input. A screenshot of each state goes to reports/browser/. Without Chromium, its
driver or Selenium, the tests skip with the reason (`.ci/run` installs them).
"""

from __future__ import annotations

import io
import json
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from checks.served import Server
from common.artifacts import ROOT

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SHOTS = ROOT / "reports" / "browser"
MAX_PAGE_BYTES = 100 * 1024
MIN_DRAWN_RIGHT = 9   # of the 10 digits drawn, one of each label
DIGIT_PX = 200        # the height a 28-pixel MNIST digit is drawn at on the pad, in pad pixels
WAIT_S = 30

webdriver = pytest.importorskip("selenium.webdriver", reason="Selenium is not installed "
                                "(pip install -r requirements.txt)")
if not (Path(CHROMIUM).is_file() and Path(DRIVER).is_file()):
    pytest.skip(f"no {CHROMIUM} or {DRIVER}: apt-get install chromium chromium-driver (.ci/run "
                "installs them)", allow_module_level=True)
pytest.importorskip("uvicorn", reason="mnist-edge serve needs the serve extra (Uvicorn)")


@pytest.fixture(scope="module")
def mnist_test():
    """MNIST's test images and labels."""
    from common.data import DataError, load_mnist

    try:
        m = load_mnist()
    except DataError as exc:
        pytest.skip(f"no MNIST: {exc}")
    return m.x_test, m.y_test


@pytest.fixture(scope="module")
def server(test_artifacts):
    with Server(sys.executable, test_artifacts) as s:
        yield s
        s.stop()
        log = s.stderr()
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1600", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_script_timeout(WAIT_S)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def _url(server, path: str = "/") -> str:
    return f"http://{server.host}:{server.port}{path}"


def _shot(browser, name: str) -> None:
    browser.save_screenshot(str(SHOTS / f"{name}.png"))


def _open(browser, server) -> None:
    browser.get(_url(server))
    _wait(browser, lambda: "Loading" not in browser.find_element("id", "model").text,
          "the page describes the model")


def _wait(browser, done, what: str, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = done()
        if value:
            return value
        time.sleep(0.05)
    _shot(browser, "timeout")
    pytest.fail(f"the page did not show {what} in {timeout:g} s")


def _answer_after(browser, request: int) -> dict:
    """What the page shows once it has the answer to a read after ``request``."""
    def shown():
        n = browser.find_element("id", "number")
        if int(n.get_attribute("data-request")) > request and \
                n.get_attribute("data-state") != "reading":
            return n
        return None

    number = _wait(browser, shown, "an answer")
    tiles = browser.find_elements("css selector", "#digits li:not(.refused)")
    return {"number": number.text, "state": number.get_attribute("data-state"),
            "request": int(number.get_attribute("data-request")),
            "why": browser.find_element("id", "why").text,
            "tiles": [t.text.split("\n") for t in tiles],
            "crops": len(browser.find_elements("css selector", "#digits canvas")),
            "latency": browser.find_element("id", "latency").text}


def _request(browser) -> int:
    return int(browser.find_element("id", "number").get_attribute("data-request"))


# ------------------------------------------------------------------ tracing MNIST digits' strokes
def _thin(ink: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a boolean image: its one-pixel skeleton."""
    img = np.pad(ink.astype(np.uint8), 1)
    while True:
        changed = False
        for step in (0, 1):
            p = [np.roll(np.roll(img, -dy, 0), -dx, 1) for dy, dx in
                 ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))]
            neighbours = sum(p)
            ring = p + p[:1]
            turns = sum((ring[i] == 0) & (ring[i + 1] == 1) for i in range(8))
            if step == 0:
                gone = (p[0] * p[2] * p[4] == 0) & (p[2] * p[4] * p[6] == 0)
            else:
                gone = (p[0] * p[2] * p[6] == 0) & (p[0] * p[4] * p[6] == 0)
            drop = (img == 1) & (neighbours >= 2) & (neighbours <= 6) & (turns == 1) & gone
            if drop.any():
                img[drop] = 0
                changed = True
        if not changed:
            return img[1:-1, 1:-1].astype(bool)


def strokes(digit: np.ndarray, scale: int = 4) -> list[list[tuple[float, float]]]:
    """The pen strokes along a 28x28 digit's skeleton, in digit pixels (x, y): walked from its
    ends, each stroke as long as the skeleton goes on without a turn back."""
    big = np.kron(digit > 100, np.ones((scale, scale), dtype=bool))
    left = {tuple(p) for p in np.argwhere(_thin(big))}

    def neighbours(y, x):
        return [(y + dy, x + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                if (dy or dx) and (y + dy, x + dx) in left]

    out = []
    while left:
        start = min(left, key=lambda q: (len(neighbours(*q)), q))  # an end first
        path = [start]
        left.discard(start)
        while nxt := neighbours(*path[-1]):
            # straight on when it can: the 4-neighbour first, then the diagonal
            step = min(nxt, key=lambda q: abs(q[0] - path[-1][0]) + abs(q[1] - path[-1][1]))
            path.append(step)
            left.discard(step)
        if len(path) >= 2 * scale:
            out.append([((x + 0.5) / scale, (y + 0.5) / scale) for y, x in path[::2]])
    return out


def draw(browser, digit: np.ndarray, left: float = 220.0, top: float = 20.0,
         kind: str = "mouse") -> None:
    """Draw the digit on the pad with a pointer of ``kind`` (mouse, pen, touch), stroke by
    stroke, in pad pixels from (left, top), DIGIT_PX high."""
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput

    pad = browser.find_element("id", "pad")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", pad)
    r = browser.execute_script("const r = arguments[0].getBoundingClientRect();"
                               "return [r.left, r.top, r.width / arguments[0].width];", pad)
    k = DIGIT_PX / 28 * r[2]
    actions = ActionBuilder(browser, mouse=PointerInput(kind, kind), duration=0)
    for stroke in strokes(digit):
        points = [(round(r[0] + (left * r[2]) + x * k), round(r[1] + (top * r[2]) + y * k))
                  for x, y in stroke]
        actions.pointer_action.move_to_location(*points[0])
        actions.pointer_action.pointer_down()
        for p in points[1:]:
            actions.pointer_action.move_to_location(*p)
        actions.pointer_action.pointer_up()
    actions.perform()


# ----------------------------------------------------------------------------------- the tests
def test_the_page_is_small_and_loads_nothing_from_elsewhere(server):
    total = 0
    for path in ("/", "/app.js", "/app.css"):
        with urllib.request.urlopen(_url(server, path)) as r:
            body = r.read()
            assert r.status == 200 and "default-src 'self'" in r.headers["Content-Security-Policy"]
        total += len(body)
        assert b"http://" not in body and b"https://" not in body and b"//cdn" not in body
    assert total <= MAX_PAGE_BYTES, total


def test_digits_drawn_on_the_canvas_are_read(browser, server, mnist_test):
    x, y = mnist_test
    _open(browser, server)
    picks = [int(np.argmax(y == label)) for label in range(10)]  # the first test digit of each
    results = []
    for label, i in zip(range(10), picks, strict=True):
        browser.find_element("id", "clear").click()
        before = _request(browser)
        draw(browser, x[i])
        shown = _answer_after(browser, before)
        results.append((label, shown["number"]))
        if label in (0, 7):
            _shot(browser, f"drawn-{label}")
        if shown["number"] == str(label):  # one tile: the digit, its crop and its confidence
            assert shown["crops"] == 1 and shown["tiles"][0][0] == str(label)
            assert shown["tiles"][0][1].endswith("%") and "ms" in shown["latency"]
    right = sum(str(label) == number for label, number in results)
    (SHOTS / "drawn.json").write_text(json.dumps({"right": right, "drawn": results}))
    assert right >= MIN_DRAWN_RIGHT, results


def test_a_number_drawn_with_a_finger_is_read_as_many_digits(browser, server, mnist_test):
    x, y = mnist_test
    _open(browser, server)
    before = _request(browser)
    for k, label in enumerate((2, 5, 8)):  # touch events, as a phone's screen sends them
        draw(browser, x[int(np.argmax(y == label))], left=40 + 190 * k, kind="touch")
    shown = _answer_after(browser, before)
    _shot(browser, "drawn-number")
    assert len(shown["number"]) == len(shown["tiles"]) == shown["crops"] >= 2, shown


def _photo(path: Path, image: np.ndarray) -> Path:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=90)
    path.write_bytes(buf.getvalue())
    return path


def _upload(browser, path: Path) -> dict:
    before = _request(browser)
    browser.find_element("id", "photo").send_keys(str(path))
    return _answer_after(browser, before)


def test_an_uploaded_photo_shows_the_number_boxes_crops_and_confidences(browser, server,
                                                                         mnist_test, tmp_path,
                                                                         test_artifacts):
    from common import photos
    from mnist_edge import Classifier

    x, y = mnist_test
    rng = np.random.default_rng(11)
    sample = photos.plain_number(photos.Digits(x, y, "test"), [3, 17, 42, 99], rng)
    path = _photo(tmp_path / "number.jpg", sample.image)
    expected = Classifier.load(test_artifacts).read(path)
    _open(browser, server)
    shown = _upload(browser, path)
    _shot(browser, "photo")
    assert shown["number"] == expected.number and shown["state"] == "read"
    assert [t[0] for t in shown["tiles"]] == [str(d.label) for d in expected.digits]
    assert [t[1] for t in shown["tiles"]] == [f"{100 * d.confidence:.1f}%"
                                              for d in expected.digits]
    assert shown["crops"] == len(expected.digits)
    assert browser.find_element("id", "shot").is_displayed()
    # the boxes are drawn on the photo: its pixels under each box's edge are the page's red
    edge = browser.execute_script(
        "const c = document.getElementById('shot'); const b = arguments[0];"
        "const s = c.width / arguments[1];"
        "return Array.from(c.getContext('2d').getImageData(Math.round(b[0] * s) + 1,"
        " Math.round((b[1] + b[3]) / 2 * s), 1, 1).data);",
        list(expected.digits[0].box), sample.image.shape[1])
    assert edge[0] > 150 and edge[1] < 120, edge


def test_a_photo_without_digits_and_a_file_that_is_no_image_are_answered(browser, server,
                                                                        tmp_path):
    _open(browser, server)
    blank = _photo(tmp_path / "blank.jpg", np.full((240, 320), 235, dtype=np.uint8))
    shown = _upload(browser, blank)
    _shot(browser, "no-digit")
    assert shown["number"] == "no digit" and shown["state"] == "no-digit" and shown["why"]
    text = tmp_path / "notes.png"
    text.write_text("not a picture\n")
    shown = _upload(browser, text)
    _shot(browser, "not-an-image")
    assert shown["state"] == "error" and "not a recognised image format" in shown["why"]


def test_the_live_view_shows_the_cameras_frames_with_the_reading(browser, test_artifacts,
                                                                  mnist_test, tmp_path):
    pytest.importorskip("cv2", reason="OpenCV is not installed (the video extra)")
    from common import photos, videos
    from mnist_edge import Classifier

    x, y = mnist_test
    clip = videos.clip(photos.Digits(x, y, "test"), [videos.Scene("4096", 45, dx=1)], seed=4)
    path = videos.write_video(clip, tmp_path / "clip.mp4")
    expected = Classifier.load(test_artifacts).read(list(clip.frames())[-1]).number
    with Server(sys.executable, test_artifacts, "--video", str(path)) as s:
        _open(browser, s)
        assert browser.find_element("id", "camera-panel").is_displayed()
        status = _wait(browser, lambda: (lambda e: e if e.get_attribute("data-state") == "ended"
                                         else None)(browser.find_element("id", "live-status")),
                       "the end of the video")
        _shot(browser, "live")
        assert status.get_attribute("data-number") == expected
        assert "frame 44" in status.text and "frames/s" in status.text
        s.stop()
        log = s.stderr()
    assert "Traceback" not in log, log
