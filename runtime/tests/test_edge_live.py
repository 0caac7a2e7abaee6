"""Live input: Classifier.watch and `mnist-edge read --video/--camera` on generated videos and a
fake camera.

The videos are made of numbers written with MNIST test digits (common/videos.py): numbers
appearing, moving, changing and disappearing, with new sensor noise in every frame. What is
tested here is what the live path adds to reading one photo (decoding, noise from frame to
frame, motion, the stability rule, the order of changes, dropped frames, errors), so each
scene's number is one the reader reads right in a still frame of it (redrawn from other
digits otherwise, and the redraws are counted); how often numbers are read right at all is the
reader report's measure.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from common import photos, videos
from mnist_edge import Classifier, cli
from mnist_edge.errors import MnistEdgeError

cv2 = pytest.importorskip("cv2", reason="OpenCV is not installed (pip install "
                                        "'mnist-edge[video]'; make test-runtime installs it)")
from mnist_edge import live  # noqa: E402  (after the skip: it needs no OpenCV to import)

SCRIPT = [videos.Scene("", 8), videos.Scene("4096", 16), videos.Scene("4096", 16, dx=6, dy=1),
          videos.Scene("4097", 16), videos.Scene("", 10), videos.Scene("12", 16, dx=-5),
          videos.Scene("385", 16)]
GLITCH = [videos.Scene("71", 12), videos.Scene("", 2), videos.Scene("71", 12),
          videos.Scene("", 1), videos.Scene("71", 12)]
MAX_REDRAWS = 6


@pytest.fixture(scope="module")
def clf(artifacts):
    return Classifier.load(artifacts)


@pytest.fixture(scope="module")
def digits(mnist_test):
    x, y = mnist_test
    return photos.Digits(x, y, "test")


@pytest.fixture(scope="module")
def known(clf, digits):
    """Test digits the classifier labels right."""
    return np.nonzero(clf.predict(digits.x[:2000]).labels == digits.y[:2000])[0]


def _clip(clf, digits, known, scenes, seed=0):
    """The clip of ``scenes`` whose every number reads right in a still frame of it."""
    for attempt in range(MAX_REDRAWS):
        c = videos.clip(digits, scenes, seed=seed + 1000 * attempt, pool=known)
        frames = list(c.frames())
        starts = np.cumsum([0] + [s.frames for s in scenes[:-1]])
        if all(clf.read(frames[i]).number == s.number for i, s in zip(starts, scenes, strict=True)):
            return c
    pytest.fail(f"no drawing of {[s.number for s in scenes]} in {MAX_REDRAWS} that the reader "
                "reads in still frames")


@pytest.fixture(scope="module")
def script_video(clf, digits, known, tmp_path_factory):
    c = _clip(clf, digits, known, SCRIPT, seed=1)
    return c, videos.write_video(c, tmp_path_factory.mktemp("video") / "script.mp4")


def _assert_follows(got, changes, stable, every=1):
    """Every change of ``changes`` reported once, in order, from its first frame or within the
    stability window after it, and nothing else."""
    assert [r.number for r in got] == [n for _, n in changes]
    for r, (start, _) in zip(got, changes, strict=True):
        assert start <= r.frame < start + stable * every, (r.frame, start)


def test_a_video_gives_every_change_once_in_order(clf, script_video):
    c, path = script_video
    with clf.watch(path) as stream:
        got = list(stream)
    _assert_follows(got, c.changes, live.STABLE)
    assert stream.stats.frames_read == c.length and stream.stats.frames_dropped == 0
    assert stream.stats.changes == len(c.changes) and stream.stats.fps > 0
    for r in got:
        assert r.time == pytest.approx(r.frame / videos.FPS)
        if r.number:
            assert r.no_digit is None and 0 < r.confidence <= 1
            assert "".join(str(d.label) for d in r.reading.digits) == r.number
        else:
            assert r.no_digit


def test_every_kth_frame_gives_the_same_changes(clf, script_video):
    c, path = script_video
    with clf.watch(path, every=2) as stream:
        got = list(stream)
    _assert_follows(got, c.changes, live.STABLE, every=2)
    assert stream.stats.frames_read == (c.length + 1) // 2
    assert stream.stats.frames_skipped == c.length // 2


def test_a_glitch_shorter_than_the_stability_window_is_not_a_change(clf, digits, known,
                                                                   tmp_path):
    c = _clip(clf, digits, known, [videos.Scene("71", 12)], seed=2)
    ink = c.inks[0]
    glitchy = videos.Clip(tuple(GLITCH), (ink, None, ink, None, ink), seed=3)
    with clf.watch(videos.write_video(glitchy, tmp_path / "glitch.mp4")) as stream:
        assert [r.number for r in stream] == ["71"]
    # with a window of one frame, the same video reports the blank frames as changes
    with clf.watch(tmp_path / "glitch.mp4", stable=1) as stream:
        assert [r.number for r in stream] == ["71", "", "71", "", "71"]


class FakeCamera:
    """A live source delivering a clip's frames at ``fps`` (0: as fast as asked), failing with
    the error a lost camera gives after ``fail_after`` frames (None: ends with the clip)."""

    live = True

    def __init__(self, clip, fps=0.0, fail_after=None, hold=1):
        self.name = "fake camera"
        # made beforehand, delivering costs nothing; each frame ``hold`` times in a row (a camera
        # faster than the scene)
        self._frames = (f for f in list(clip.frames()) for _ in range(hold))
        self._period = 1 / fps if fps else 0.0
        self._fail_after = fail_after
        self.delivered = 0
        self.closed = False
        self._next = time.monotonic()

    def read(self):
        if self._fail_after is not None and self.delivered >= self._fail_after:
            raise live.SourceError(f"{self.name} stopped delivering frames after "
                                   f"{self.delivered}")
        pixels = next(self._frames, None)
        if pixels is None:
            return None
        if self._period:
            self._next += self._period
            time.sleep(max(0.0, self._next - time.monotonic()))
        frame = live.Frame(self.delivered, self.delivered * (self._period or 1 / 30), pixels)
        self.delivered += 1
        return frame

    def skip(self):
        return self.read() is not None

    def close(self):
        self.closed = True


def test_a_camera_faster_than_the_model_drops_frames_and_keeps_up(clf, digits, known):
    scenes = [videos.Scene("305", 30), videos.Scene("", 30), videos.Scene("8", 30)]
    c = _clip(clf, digits, known, scenes, seed=4)
    # 240 frames/s, a second a scene: several frames for every one the model reads
    camera = FakeCamera(c, fps=240, hold=8)
    with clf.watch(camera) as stream:
        got = [r.number for r in stream]
    s = stream.stats
    assert got == ["305", "", "8"]
    assert s.frames_dropped > s.frames_read  # the model never saw most frames...
    assert s.frames_read + s.frames_dropped == camera.delivered  # ...and each is accounted for
    assert camera.closed


def test_a_camera_lost_mid_stream_raises_a_source_error_naming_it(clf, script_video):
    c, _ = script_video
    camera = FakeCamera(c, fail_after=40)
    stream = clf.watch(camera)
    with pytest.raises(live.SourceError, match="fake camera stopped delivering frames after 40"), \
            stream:
        for _ in stream:
            pass
    assert camera.closed and stream.stats.frames_read <= 40


def test_cli_camera_lost_mid_stream_is_one_line_and_a_nonzero_exit(clf, script_video, artifacts,
                                                                  monkeypatch, capsys):
    c, _ = script_video
    monkeypatch.setattr(live, "open_camera", lambda index, api="auto": FakeCamera(c, 30, 30))
    status = cli.main(["read", str(artifacts), "--camera"])
    out, err = capsys.readouterr()
    assert status == cli.EXIT_SOME_FAILED
    assert err.splitlines() == ["mnist-edge: fake camera stopped delivering frames after 30"]
    # the readings before the loss (frames 0-7 blank, then 4096): a live camera's short scenes
    # may pass while the model is busy, so what was said is in order, not necessarily all
    said = iter(["no digit", "4096"])
    assert all(line.split("\t")[1] in said for line in out.splitlines())
    # --json: the same error closes the JSON lines, with what was read until then
    assert cli.main(["read", str(artifacts), "--camera", "--json"]) == cli.EXIT_SOME_FAILED
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[-1]["error"] == "fake camera stopped delivering frames after 30"
    assert rows[-1]["summary"]["stopped_by"] == "error"
    assert 0 < rows[-1]["summary"]["frames_read"] <= 30


def test_cli_a_camera_that_cannot_be_opened_is_one_line_and_exit_2(artifacts):
    run = subprocess.run([sys.executable, "-m", "mnist_edge", "read", str(artifacts),
                          "--camera", "63"], capture_output=True, text=True, timeout=120)
    assert run.returncode == cli.EXIT_FATAL and run.stdout == ""
    assert run.stderr.splitlines() == ["mnist-edge: camera 63 cannot be opened: no such camera, "
                                       "or another program is using it (Linux lists cameras in "
                                       "/dev/video*)"]


def test_cli_video_json_lines_then_a_summary(artifacts, script_video, capsys):
    c, path = script_video
    assert cli.main(["read", str(artifacts), "--video", str(path), "--json"]) == cli.EXIT_OK
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["number"] for r in rows[:-1]] == [n for _, n in c.changes]
    assert all(r["fps"] > 0 and isinstance(r["digits"], list) for r in rows[:-1])
    summary = rows[-1]["summary"]
    assert summary["frames_read"] == c.length and summary["stopped_by"] == "end of stream"
    assert summary["changes"] == len(c.changes)
    assert err.count("\n") == 1 and "end of stream" in err


def test_cli_ctrl_c_stops_cleanly_with_a_summary(artifacts, clf, digits, known, tmp_path):
    c = _clip(clf, digits, known, [videos.Scene("42", 240)], seed=5)  # seconds to read
    path = videos.write_video(c, tmp_path / "long.mp4")
    # Ctrl-C's default action in the child even when this run was started with SIGINT ignored
    # (a background job): Python turns it into KeyboardInterrupt only then
    proc = subprocess.Popen([sys.executable, "-m", "mnist_edge", "read", str(artifacts),
                             "--video", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    first = proc.stdout.readline()  # the first reading: the stream is under way
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert first.split("\t")[1] == "42" and out == ""
    assert "Traceback" not in err and err.count("\n") == 1
    assert "interrupted" in err and "frames read" in err


@pytest.mark.parametrize("args, message", [
    ([], "give image files, or --camera N, or --video FILE"),
    (["--video", "{missing}"], "no such file"),
    (["--video", "{folder}"], "not a file"),
    (["--video", "{text}"], "not a video OpenCV can decode"),
    (["--video", "{video}", "--every", "0"], "--every must be at least 1"),
    (["--video", "{video}", "--camera", "0"], "give image files, or --camera N, or --video"),
    (["--camera", "99999999999"], "a camera index is a number from 0 to 2147483647"),
    (["--camera", "-1"], "a camera index is a number from 0 to 2147483647"),
])
def test_cli_mistakes_are_one_line(artifacts, script_video, tmp_path, capsys, args, message):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    names = {"missing": str(tmp_path / "missing.mp4"), "folder": str(tmp_path), "text": str(text),
             "video": str(script_video[1])}
    status = cli.main(["read", str(artifacts), *[a.format(**names) for a in args]])
    out, err = capsys.readouterr()
    assert status == cli.EXIT_FATAL and out == ""
    assert len(err.splitlines()) == 1 and message in err


def test_truncated_video_gives_what_it_holds(clf, script_video, tmp_path):
    _, path = script_video
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    for share in (0.3, 0.6, 0.9):
        cut.write_bytes(data[:int(len(data) * share)])
        try:
            with clf.watch(cut) as stream:
                numbers = [r.number for r in stream]
        except MnistEdgeError as exc:  # the index at the end of an .mp4 went with the cut
            assert "cut.mp4" in str(exc) and "\n" not in str(exc)
            continue
        assert set(numbers) <= {"", "4096", "4097", "12", "385"}


def test_without_opencv_the_message_says_what_to_install(artifacts, script_video):
    code = ("import sys; sys.modules['cv2'] = None\n"
            "from mnist_edge import cli\n"
            f"sys.exit(cli.main(['read', {str(artifacts)!r}, '--video', "
            f"{str(script_video[1])!r}]))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == cli.EXIT_FATAL
    assert run.stderr.strip() == ('mnist-edge: OpenCV is not installed; pip install '
                                  '"mnist-edge[video]" (opencv-python-headless)')


def test_watch_checks_its_arguments(clf, script_video):
    for kwargs in ({"every": 0}, {"stable": -1}, {"every": 1.5}):
        with pytest.raises(MnistEdgeError, match="must be a positive integer"):
            clf.watch(script_video[1], **kwargs)
    with pytest.raises(MnistEdgeError, match="a source is a video file"):
        clf.watch(3.5)
    with pytest.raises(MnistEdgeError, match="camera_api must be one of"):
        clf.watch(0, camera_api="v4l")
