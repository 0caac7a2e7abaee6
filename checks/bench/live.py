"""The live reader in `make bench`: frames per second on one core, and memory over a long stream.

    from checks.bench.live import measure
    live = measure(mnist, "artifacts", tmp, rounds=2, minutes=10)
    live["read"]["fps"], live["read"]["readings_wrong"], live["stream"]["rss_growth"]

1. ``read_video``: a generated 640x480 video of two 4-digit numbers (MNIST test digits, one
   moving across, one moving down) read by ``Classifier.watch(path)`` with the export's default
   file (the gate loaded as by default), in a fresh worker pinned to one CPU with one thread for
   OpenCV, OpenBLAS and OpenMP. The figure is ``StreamStats.fps``: frames read per second of
   wall time, decoding included; the readings reported are compared with the clip's changes.
   The same worker then runs ``textbook_pass`` over the same file: OpenCV alone decoding each
   frame, greying, blurring, thresholding and labelling its blobs, the least any frame reader
   does. Both scale with the CPU, so ``fps_vs_textbook`` (the reader's frames/s over the textbook
   pass's) is the figure CI holds on any machine; frames/s itself differs between machines
   about twofold.
2. ``long_stream``: a generated live source (``PacedSource``: a camera's clock, 30 frames a
   second of wall time, the clip repeated with new noise) read by ``Classifier.watch`` for
   ``minutes``, so a reader busier than the source drops frames; a thread samples the process's
   resident memory (VmRSS) every second, and the peak of the last window (a minute) is compared
   with the peak of the first.

Each runs as a job of a fresh worker (checks/worker.py) so its memory is its own.
"""

from __future__ import annotations

import itertools
import math
import os
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from checks.worker import Worker, job_name

if TYPE_CHECKING:
    import numpy as np

    from common.data import Mnist
    from mnist_edge.live import Frame

# Targets (docs/benchmark.md explains each)
MIN_LIVE_FPS = 30            # frames/s reading the 640x480 video, one core, decoding included
MAX_LIVE_RSS_GROWTH = 1.05   # peak RSS of a long stream's last minute / its first minute's
# The video read for frames per second: 300 frames, 10 s at 30 frames/s
READ_SCENES = (("4097", 150, 1, 0), ("2358", 150, 0, 1))  # number, frames, dx, dy
# The long stream's clip, repeated: 8 s with the empty page, numbers moving and changing
STREAM_SCENES = (("", 30, 0, 0), ("4097", 90, 1, 0), ("2358", 90, 0, 1), ("", 30, 0, 0))
SEED = 7
SOURCE_FPS = 30.0            # the generated live source's frame rate, wall clock
WINDOW_S = 60.0              # the first and the last window of a long stream
SAMPLE_S = 1.0               # resident memory sampled this often
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}  # before numpy is imported


def _clip(digits, scenes: tuple[tuple[str, int, int, int], ...]):
    from common import videos

    return videos.clip(digits, [videos.Scene(n, f, dx, dy) for n, f, dx, dy in scenes], SEED)


def _one_core(cpu: int | None) -> int:
    """Pin this process to ``cpu`` (default: the first it may use) with one thread for OpenCV."""
    cpu = min(os.sched_getaffinity(0)) if cpu is None else cpu
    os.sched_setaffinity(0, {cpu})
    import cv2

    cv2.setNumThreads(1)
    return cpu


def read_video(model: str, video: str, changes: list[list], cpu: int | None = None) -> dict:
    """``Classifier.watch(video)`` to the end on one CPU: frames/s (wall clock and per
    CPU-second), the readings reported (first frame, number) and how many are wrong against
    ``changes``, the clip's (first frame, number) of each change."""
    cpu = _one_core(cpu)
    from mnist_edge import Classifier

    clf = Classifier.load(model)
    cpu_start = time.process_time()
    with clf.watch(video) as stream:
        readings = [[r.frame, r.number] for r in stream]
    cpu_s = time.process_time() - cpu_start
    stats = stream.stats
    textbook = textbook_pass(video)
    return {"key": clf.entry.key if clf.entry is not None else None, "backend": clf.backend,
            "gate": clf.gate is not None, "cpu": cpu, "frames": stats.frames_read,
            "seconds": round(stats.seconds, 3), "fps": round(stats.fps, 2),
            "fps_cpu": round(stats.frames_read / cpu_s, 2) if cpu_s > 0 else None,
            "textbook_fps": round(textbook, 2),
            "fps_vs_textbook": round(stats.fps / textbook, 4) if textbook > 0 else None,
            "readings": readings, "readings_wrong": readings_wrong(readings, changes),
            "max_lag_frames": max_lag(readings, changes)}


def textbook_pass(video: str) -> float:
    """Frames per second of wall time of OpenCV alone over ``video`` on this process's CPU:
    decode, grey, 5x5 Gaussian blur, Otsu threshold, connected components with their boxes."""
    import cv2

    capture = cv2.VideoCapture(video)
    frames, start = 0, time.perf_counter()
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            grey = cv2.GaussianBlur(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), (5, 5), 0)
            _, ink = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
            cv2.connectedComponentsWithStats(ink)
            frames += 1
    finally:
        capture.release()
    seconds = time.perf_counter() - start
    return frames / seconds if frames and seconds > 0 else 0.0


def readings_wrong(readings: list[list], changes: list[list]) -> int:
    """Reported numbers that are missing, spurious or out of order against the clip's changes
    (0: every change reported once, in order, nothing else)."""
    got, want = [n for _, n in readings], [n for _, n in changes]
    return sum(a != b for a, b in itertools.zip_longest(got, want))


def max_lag(readings: list[list], changes: list[list]) -> int | None:
    """The most frames between a change and the frame its reading was reported from (None when
    the readings are not the changes)."""
    if readings_wrong(readings, changes):
        return None
    return max((abs(r[0] - c[0]) for r, c in zip(readings, changes, strict=True)), default=0)


class PacedSource:
    """A generated live source: ``frames`` delivered at ``fps`` on the wall clock, as a camera
    delivers them, for ``seconds``; a consumer slower than that misses frames (see
    ``mnist_edge.live``)."""

    live = True

    def __init__(self, frames: Iterator[np.ndarray], fps: float, seconds: float):
        self.name = f"a generated stream at {fps:g} frames/s"
        self._frames, self._period, self._seconds = frames, 1.0 / fps, seconds
        self._index, self._start, self._due = 0, 0.0, 0.0

    def read(self) -> Frame | None:
        from mnist_edge.live import Frame

        now = time.monotonic()
        if self._index == 0:
            self._start = self._due = now
        if self._due - self._start >= self._seconds:
            return None
        if self._due > now:
            time.sleep(self._due - now)
        pixels = next(self._frames, None)
        if pixels is None:
            return None
        frame = Frame(self._index, self._due - self._start, pixels)
        self._index += 1
        # a late frame starts the clock again: a camera never delivers a backlog in a burst
        self._due = max(self._due + self._period, time.monotonic())
        return frame

    def skip(self) -> bool:
        return self.read() is not None

    def close(self) -> None:
        self._frames = iter(())


def rss_mb(pid: int | str = "self") -> float:
    """The resident memory of process ``pid`` (this one by default) now, MB (VmRSS)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise OSError(f"/proc/{pid}/status has no VmRSS line")


class RssSampler:
    """A thread taking (seconds since start, resident MB) every ``interval`` seconds."""

    def __init__(self, interval: float):
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._start = time.monotonic()
        self.samples.append((0.0, rss_mb()))
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((time.monotonic() - self._start, rss_mb()))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append((time.monotonic() - self._start, rss_mb()))


def window_peaks(samples: list[tuple[float, float]], window: float) -> list[float]:
    """The peak resident MB of each ``window`` seconds of the samples, from the first; the last
    window is the last ``window`` seconds (it may overlap the one before)."""
    end = samples[-1][0]
    count = max(1, math.ceil(end / window - 1e-9))
    peaks = [max((mb for t, mb in samples if i * window <= t < (i + 1) * window), default=None)
             for i in range(count - 1)]
    last = [mb for t, mb in samples if t >= end - window]
    return [p for p in peaks if p is not None] + [max(last)]


def long_stream(model: str, data: str | None, seconds: float, window: float = WINDOW_S,
                interval: float = SAMPLE_S) -> dict:
    """``Classifier.watch`` of a ``PacedSource`` for ``seconds``, resident memory sampled every
    ``interval``: the peaks of the first and the last ``window``, frames read and dropped."""
    import gc

    from common import photos
    from common.data import load_mnist
    from mnist_edge import Classifier
    from mnist_edge.bench import peak_rss_mb

    clip = _clip(photos.split_digits(load_mnist(data), "test"), STREAM_SCENES)
    gc.collect()  # the MNIST arrays are gone: only the clip's inks stay
    repeat = math.ceil(seconds * SOURCE_FPS / clip.length) + 1
    clf = Classifier.load(model)
    source = PacedSource(clip.frames(repeat=repeat), SOURCE_FPS, seconds)
    with RssSampler(interval) as sampler, clf.watch(source) as stream:
        changes = sum(1 for _ in stream)
    stats = stream.stats
    peaks = window_peaks(sampler.samples, window)
    return {"key": clf.entry.key if clf.entry is not None else None, "backend": clf.backend,
            "gate": clf.gate is not None, "seconds": round(stats.seconds, 1), "window_s": window,
            "source_fps": SOURCE_FPS, "frames_read": stats.frames_read,
            "frames_dropped": stats.frames_dropped, "fps": round(stats.fps, 2),
            "changes": changes, "samples": len(sampler.samples),
            "window_peaks_mb": [round(p, 1) for p in peaks],
            "first_window_peak_mb": round(peaks[0], 1), "last_window_peak_mb": round(peaks[-1], 1),
            "rss_growth": round(peaks[-1] / peaks[0], 4), "peak_rss_mb": round(peak_rss_mb(), 1)}


# ------------------------------------------------------------------------------ the parent side
def _job(job: dict, timeout: float, one_thread: bool = False) -> dict:
    """One job in a fresh worker of this Python (one thread for the numeric libraries if asked);
    its answer, or {"error": why}."""
    with Worker(sys.executable, timeout=timeout) as worker:
        if one_thread:
            worker.env.update(ONE_THREAD)
        answer = worker.call(job)
    return answer if answer.pop("ok") else {"error": answer["error"]}


def measure(mnist: Mnist, model: str, tmp: Path, rounds: int, minutes: float,
            data: str | None = None, skipped: str | None = None, window: float = WINDOW_S,
            cpu: int | None = None, scenes: tuple = READ_SCENES) -> dict:
    """The live section of the bench: ``read_video`` of a video of ``scenes`` ``rounds`` times
    (medians) and, unless ``skipped`` says why not or ``minutes`` is 0, a ``long_stream`` of
    ``minutes`` (its first and last ``window`` seconds compared; half the stream when shorter)."""
    from common import photos, videos

    clip = _clip(photos.split_digits(mnist, "test"), scenes)
    video = videos.write_video(clip, tmp / "live.mp4")
    changes = [list(c) for c in clip.changes]
    runs = [_job({"job": job_name(read_video), "model": model, "video": str(video),
                  "changes": changes, "cpu": cpu}, 600, one_thread=True) for _ in range(rounds)]
    ok = [r for r in runs if "error" not in r]
    read = dict(ok[0]) if ok else dict(runs[0])
    if ok:
        for field, digits in (("fps", 2), ("fps_cpu", 2), ("seconds", 3), ("textbook_fps", 2),
                              ("fps_vs_textbook", 4)):
            values = [r[field] for r in ok if r.get(field) is not None]
            read[field] = round(statistics.median(values), digits) if values else None
        read["readings_wrong"] = max(r["readings_wrong"] for r in ok)  # any wrong run counts
        lags = [r["max_lag_frames"] for r in ok]
        read["max_lag_frames"] = None if None in lags else max(lags)
        read["rounds"] = len(ok)
    read["changes"] = changes
    if skipped is None and minutes <= 0:
        skipped = "--live-minutes 0"
    if skipped is not None:
        stream = {"measured": False, "skipped": skipped}
    else:
        seconds = minutes * 60
        stream = _job({"job": job_name(long_stream), "model": model, "data": data,
                       "seconds": seconds, "window": min(window, seconds / 2),
                       "interval": min(SAMPLE_S, seconds / 20)}, seconds + 300)
        stream["measured"] = "error" not in stream
    return {"video": {"size": list(clip.size), "frames": clip.length, "codec": videos.CODEC,
                      "fps": videos.FPS, "bytes": video.stat().st_size,
                      "scenes": [list(s) for s in scenes]},
            "read": read, "stream": stream}


def targets(live: dict | None) -> list[dict]:
    """The live section's targets: frames/s on one core, the readings, flat memory."""
    if live is None:
        return []
    read, stream = live["read"], live["stream"]
    fps, wrong = read.get("fps"), read.get("readings_wrong")
    out = [{"target": "live: frames/s reading a 640x480 video of 4-digit numbers, one core",
            "value": fps, "goal": f">= {MIN_LIVE_FPS}",
            "met": None if fps is None else fps >= MIN_LIVE_FPS},
           {"target": "live: readings missing, spurious or out of order on that video",
            "value": wrong, "goal": "0", "met": None if wrong is None else wrong == 0}]
    if stream.get("measured"):
        growth = stream["rss_growth"]
        span = f"{stream['window_s']:g} s"
        out.append({"target": f"live: peak RSS of a {stream['seconds']:.0f} s stream, its last "
                              f"{span} / its first {span}", "value": growth,
                    "goal": f"<= {MAX_LIVE_RSS_GROWTH}", "met": growth <= MAX_LIVE_RSS_GROWTH})
    return out
