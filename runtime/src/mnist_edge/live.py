"""Read numbers from a camera or a video file, frame after frame, and report each change.

    from mnist_edge import Classifier
    clf = Classifier.load("artifacts")
    with clf.watch("meter.mp4") as stream:        # a video file; clf.watch(0) reads camera 0
        for r in stream:                          # one LiveReading each time the number changes
            print(f"{r.time:.2f}s", r.number or "no digit", r.confidence)
    print(stream.stats.fps)                       # frames read per second

    mnist-edge read artifacts/ --camera 0         # the same on the command line (--video FILE)

How:

1. frames come from OpenCV (``pip install "mnist-edge[video]"``: video files, USB cameras) or
   Picamera2 (a Raspberry Pi camera module, when Raspberry Pi OS has it installed), as
   grayscale; a video is read frame by frame (``every``: only every k-th), nothing dropped;
2. a camera delivers frames on its own clock: a thread keeps only the newest one, so a model
   slower than the camera skips frames (counted as dropped) instead of falling behind, and
   memory stays flat;
3. each frame is read like a photo (``Classifier.read``), and a reading (the number, or "no
   digit") is reported when it has held for ``stable`` frames in a row and differs from the last
   one reported: a frame or two misread while a number moves is not a change.

A camera that cannot be opened, that stops delivering frames or that delivers none for
STALL_SECONDS raises a SourceError naming it; the end of a video ends the iteration.
"""

from __future__ import annotations

import collections
import math
import os
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Callable, Protocol

import numpy as np

from mnist_edge.errors import MnistEdgeError
from mnist_edge.images import short_error

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mnist_edge.reader import Reading

STALL_SECONDS = 5.0  # a camera that delivers no frame for this long is taken as gone
STABLE = 3           # frames in a row a reading must hold before it is reported
FPS_WINDOW = 30      # frames over which the current frame rate is measured
CAMERA_SIZE = (640, 480)  # the size asked of a camera: enough for a number held up to it
CAMERA_APIS = ("auto", "picamera2", "opencv")
MAX_CAMERA = 2**31 - 1    # a C int: the largest index OpenCV and libcamera take
_OPENCV_HINT = 'OpenCV is not installed; pip install "mnist-edge[video]" (opencv-python-headless)'


class SourceError(MnistEdgeError):
    """A camera or video cannot be opened, or stops delivering frames."""


@dataclass(frozen=True)
class Frame:
    """One frame: its index in the stream, its time (seconds from the stream's start: the
    video's clock for a file, the wall clock for a camera) and its pixels (uint8 [H,W] gray)."""

    index: int
    time: float
    pixels: np.ndarray


class FrameSource(Protocol):
    """Where frames come from: a video file, a camera, or anything that delivers frames."""

    name: str   # names the source in messages: "camera 0", "clip.mp4"
    live: bool  # frames arrive on their own clock (a camera): a busy reader drops them

    def read(self) -> Frame | None:
        """The next frame; None at the end of the stream; SourceError when the source fails."""

    def skip(self) -> bool:
        """Pass over the next frame without decoding it; False at the end of the stream."""

    def close(self) -> None:
        """Release the device or file."""


@dataclass(frozen=True)
class LiveReading:
    """The reading of a stretch of frames: the number (lines joined by newlines; "" with
    ``no_digit`` saying why when nothing was read), from the frame at ``time`` (seconds) and
    ``frame`` on, with the Reading of that frame (digits, boxes, crops) and the frame rate
    measured when it was reported."""

    time: float
    frame: int
    number: str
    confidence: float
    no_digit: str | None
    reading: Reading
    fps: float


@dataclass
class StreamStats:
    """What a stream has done so far: frames read by the model, frames passed over (``every``),
    frames a camera delivered while the model was busy (dropped), changes reported, seconds."""

    frames_read: int = 0
    frames_skipped: int = 0
    frames_dropped: int = 0
    changes: int = 0
    seconds: float = 0.0
    stopped_by: str = "end of stream"

    @property
    def fps(self) -> float:
        """Frames read per second of wall time (0.0 before the first)."""
        return self.frames_read / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, float | int | str]:
        """The figures as plain values (for JSON)."""
        return {"frames_read": self.frames_read, "frames_skipped": self.frames_skipped,
                "frames_dropped": self.frames_dropped, "changes": self.changes,
                "seconds": round(self.seconds, 3), "fps": round(self.fps, 2),
                "stopped_by": self.stopped_by}


class LiveStream:
    """Readings of a frame source as an iterator of LiveReading (see the module docstring);
    a context manager that closes the source."""

    def __init__(self, read: Callable[[np.ndarray], Reading], source: FrameSource,
                 every: int = 1, stable: int = STABLE):
        check_counts(every, stable)
        self._read = read
        self.source: FrameSource = _Newest(source, every) if source.live else source
        self.every, self.stable = every, stable
        self.stats = StreamStats()
        # the last frame's reading, reported or not, with the frame: one attribute, so that
        # another thread never sees one frame's reading with another's pixels
        self.newest: tuple[LiveReading, np.ndarray] | None = None
        self._recent: collections.deque[float] = collections.deque(maxlen=FPS_WINDOW)

    def __iter__(self) -> Iterator[LiveReading]:
        reported: str | None = None      # the last number reported ("" for no digit)
        first: LiveReading | None = None  # the first frame of the current run of one reading
        length = 0                        # ...and the run's frames so far
        start = time.perf_counter()
        try:
            while (frame := self._next()) is not None:
                reading = self._read(frame.pixels)
                now = time.perf_counter()
                self.stats.frames_read += 1
                self.stats.seconds = now - start
                self._recent.append(now)
                live = _live_reading(frame, reading, self._fps())
                self.newest = (live, frame.pixels)
                if first is not None and first.number == live.number:
                    length += 1
                else:
                    first, length = live, 1
                if length == self.stable and live.number != reported:
                    reported = live.number
                    self.stats.changes += 1
                    yield replace(first, fps=live.fps)
        finally:
            self.stats.seconds = time.perf_counter() - start
            if isinstance(self.source, _Newest):
                self.stats.frames_dropped = self.source.dropped
                self.stats.frames_skipped = self.source.skipped

    @property
    def latest(self) -> LiveReading | None:
        """The last frame's reading, reported as a change or not (None before the first)."""
        return self.newest[0] if self.newest is not None else None

    def _next(self) -> Frame | None:
        """The next frame to read: of a video the first, then every ``every``-th (the others
        passed over), as a live source delivers them."""
        if isinstance(self.source, _Newest):
            return self.source.read()
        if self.stats.frames_read:
            for _ in range(self.every - 1):
                if not self.source.skip():
                    return None
                self.stats.frames_skipped += 1
        return self.source.read()

    def _fps(self) -> float:
        """Frames read per second over the last FPS_WINDOW frames."""
        if len(self._recent) < 2:
            return 0.0
        span = self._recent[-1] - self._recent[0]
        return (len(self._recent) - 1) / span if span > 0 else 0.0

    def close(self) -> None:
        """Release the camera or file (also done on leaving a ``with`` block)."""
        self.source.close()

    def __enter__(self) -> LiveStream:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if kind is KeyboardInterrupt:
            self.stats.stopped_by = "interrupted"
        self.close()


def check_counts(every: object, stable: object) -> None:
    """MnistEdgeError unless ``every`` and ``stable`` are positive integers."""
    for name, value in (("every", every), ("stable", stable)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise MnistEdgeError(f"{name} must be a positive integer, got {value!r}")


def _live_reading(frame: Frame, reading: Reading, fps: float) -> LiveReading:
    no_digit = reading.no_digit
    if not reading.number and no_digit is None:
        no_digit = "nothing read"
    return LiveReading(frame.time, frame.index, reading.number, reading.confidence, no_digit,
                       reading, fps)


# ------------------------------------------------------------------------- opening sources

def open_source(source: str | os.PathLike[str] | int | FrameSource,
                camera_api: str = "auto") -> FrameSource:
    """A FrameSource for a video file path, a camera index, or a FrameSource as it is."""
    if camera_api not in CAMERA_APIS:
        raise MnistEdgeError(f"camera_api must be one of {', '.join(CAMERA_APIS)}, got "
                             f"{camera_api!r}")
    if isinstance(source, bool):
        raise MnistEdgeError(f"a source is a video file, a camera index or a FrameSource, got "
                             f"{source!r}")
    if isinstance(source, int):
        return open_camera(source, camera_api)
    if isinstance(source, (str, os.PathLike)):
        return VideoFile(Path(source))
    if all(hasattr(source, name) for name in ("read", "skip", "close", "live", "name")):
        return source
    raise MnistEdgeError(f"a source is a video file, a camera index or a FrameSource, got "
                         f"{type(source).__name__}")


def open_camera(index: int, api: str = "auto") -> FrameSource:
    """Camera ``index``: through Picamera2 (a Pi camera module) when ``api`` is "picamera2",
    or "auto" and Picamera2 is installed; else through OpenCV (USB cameras)."""
    if api not in CAMERA_APIS:
        raise MnistEdgeError(f"camera_api must be one of {', '.join(CAMERA_APIS)}, got {api!r}")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index <= MAX_CAMERA:
        raise MnistEdgeError(f"a camera index is a number from 0 to {MAX_CAMERA}, got {index!r}")
    if api == "picamera2" or (api == "auto" and _has_picamera2()):
        return PiCamera(index)
    return OpenCVCamera(index)


def _has_picamera2() -> bool:
    import importlib.util

    return importlib.util.find_spec("picamera2") is not None


def _cv2() -> ModuleType:
    """OpenCV, its own logging silenced (one clear message of ours instead)."""
    from mnist_edge.quiet import verbose

    if not verbose():
        os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's AV_LOG_QUIET
    try:
        import cv2
    except ImportError:
        raise SourceError(_OPENCV_HINT) from None
    return cv2


def _gray(cv2: ModuleType, image: np.ndarray) -> np.ndarray:
    """A decoded frame (gray, BGR or BGRA) as uint8 [H,W]."""
    if image.ndim == 2:
        return image
    code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return np.asarray(cv2.cvtColor(image, code))


class VideoFile:
    """A video file read through OpenCV (FFmpeg): every container and codec it decodes."""

    live = False

    def __init__(self, path: Path):
        self.name = str(path)
        if not path.exists():
            raise SourceError(f"{path}: no such file")
        if not path.is_file():
            raise SourceError(f"{path}: not a file; give a video file (.mp4, .avi, .mkv, ...)")
        cv2 = self._cv2 = _cv2()
        # FFmpeg only: OpenCV's fallback readers print to stderr on a damaged file
        self._cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        if not self._cap.isOpened():
            raise SourceError(f"{path}: not a video OpenCV can decode (unknown container or "
                              "codec, or a damaged file)")
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if math.isfinite(fps) and 0 < fps < 10_000 else None
        self._index = 0

    def read(self) -> Frame | None:
        ok, image = self._cap.read()
        if not ok or image is None or image.size == 0:
            self._fail_if_first()
            return None
        frame = Frame(self._index, self._time(), _gray(self._cv2, image))
        self._index += 1
        return frame

    def skip(self) -> bool:
        if not self._cap.grab():
            self._fail_if_first()
            return False
        self._index += 1
        return True

    def _fail_if_first(self) -> None:
        """At the end of the stream: a SourceError if not one frame came before it (read or
        passed over)."""
        if self._index == 0:
            raise SourceError(f"{self.name}: no frame could be decoded (a damaged file, or a "
                              "codec OpenCV lacks)")

    def _time(self) -> float:
        if self.fps:
            return self._index / self.fps
        ms = float(self._cap.get(self._cv2.CAP_PROP_POS_MSEC) or 0.0)
        return ms / 1000 if math.isfinite(ms) else 0.0

    def close(self) -> None:
        self._cap.release()


class _Camera:
    """What the cameras share: frames numbered from 0, timed from the opening, lost in one
    line."""

    live = True
    name: str

    def _opened(self) -> None:
        self._index, self._start = 0, time.monotonic()

    def _frame(self, gray: np.ndarray) -> Frame:
        frame = Frame(self._index, time.monotonic() - self._start, gray)
        self._index += 1
        return frame

    def _lost(self, why: str) -> SourceError:
        return SourceError(f"{self.name} stopped delivering frames after {self._index} ({why})")

    def skip(self) -> bool:
        return self.read() is not None

    def read(self) -> Frame | None:
        raise NotImplementedError


class OpenCVCamera(_Camera):
    """A camera through OpenCV (V4L2 on Linux): USB webcams, and Pi cameras without Picamera2."""

    def __init__(self, index: int):
        self.name = f"camera {index}"
        cv2 = self._cv2 = _cv2()
        self._cap = cv2.VideoCapture(index)
        if not self._cap.isOpened():
            raise SourceError(f"{self.name} cannot be opened: no such camera, or another program "
                              "is using it (Linux lists cameras in /dev/video*)")
        self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, CAMERA_SIZE[0])
        self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, CAMERA_SIZE[1])
        self._opened()

    def read(self) -> Frame | None:
        ok, image = self._cap.read()
        if not ok or image is None:
            raise self._lost("unplugged, or taken by another program")
        return self._frame(_gray(self._cv2, image))

    def close(self) -> None:
        self._cap.release()


class PiCamera(_Camera):
    """A Raspberry Pi camera module through Picamera2 (libcamera), as Raspberry Pi OS ships."""

    def __init__(self, index: int):
        self.name = f"camera {index}"
        try:
            from picamera2 import Picamera2  # type: ignore[import-not-found]
        except ImportError:
            raise SourceError(f"{self.name}: Picamera2 is not installed (Raspberry Pi OS: sudo "
                              "apt install python3-picamera2; or use camera_api='opencv')"
                              ) from None
        try:
            self._cam = Picamera2(camera_num=index)
            config = self._cam.create_video_configuration(
                main={"size": CAMERA_SIZE, "format": "RGB888"})
            self._cam.configure(config)
            self._cam.start()
        except Exception as exc:  # libcamera reports a missing or busy camera in many ways
            raise SourceError(f"{self.name} cannot be opened through Picamera2: "
                              f"{short_error(exc)}") from None
        self._opened()

    def read(self) -> Frame | None:
        try:
            image = np.asarray(self._cam.capture_array("main"))
        except Exception as exc:  # the camera went away
            raise self._lost(short_error(exc)) from None
        # "RGB888" is B, G, R in memory: luma with the weights in that order
        gray = image[..., :3].astype(np.float32) @ np.array([0.114, 0.587, 0.299], np.float32)
        return self._frame(np.clip(gray + 0.5, 0, 255).astype(np.uint8))

    def close(self) -> None:
        try:
            self._cam.stop()
            self._cam.close()
        except Exception:  # already gone: nothing left to release
            pass


class _Newest:
    """A live source read by a thread that keeps only the newest frame (every ``every``-th):
    the reader gets the latest frame, and frames it had no time for are counted as dropped."""

    live = True

    def __init__(self, source: FrameSource, every: int):
        self.name, self._source, self._every = source.name, source, every
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._error: BaseException | None = None
        self._ended = self._stop = False
        self.delivered = self.taken = self.skipped = 0
        self._thread = threading.Thread(target=self._pump, name=f"mnist-edge {self.name}",
                                        daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> int:
        """Frames delivered for reading that the reader had no time for."""
        with self._cond:
            return self.delivered - self.taken - (self._frame is not None)

    def _pump(self) -> None:
        count = 0
        try:
            while not self._stop:
                frame = self._source.read()
                if frame is None:
                    break
                count += 1
                if (count - 1) % self._every:
                    self.skipped += 1
                    continue
                with self._cond:
                    self._frame = frame
                    self.delivered += 1
                    self._cond.notify()
        except BaseException as exc:  # handed to the reader's thread, raised there
            with self._cond:
                self._error = exc
        with self._cond:
            self._ended = True
            self._cond.notify()

    def read(self) -> Frame | None:
        deadline = time.monotonic() + STALL_SECONDS
        with self._cond:
            while self._frame is None:
                if self._error is not None:
                    raise self._error
                if self._ended:
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SourceError(f"{self.name} delivered no frame for {STALL_SECONDS:g} s")
                self._cond.wait(min(left, 0.5))
            frame, self._frame = self._frame, None
            self.taken += 1
            return frame

    def skip(self) -> bool:
        return self.read() is not None

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=STALL_SECONDS)
        if not self._thread.is_alive():  # never release a device a read is still waiting on
            self._source.close()
