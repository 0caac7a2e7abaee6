"""The HTTP service in `make bench`: `mnist-edge serve` on 127.0.0.1 under a bounded load.

    from checks.bench.serve import measure
    s = measure(mnist, "artifacts/manifest.json", tmp, python=".venv-runtime/bin/python")
    s["load"]["throughput_vs_inprocess"], s["one_client"]["p50_vs_inprocess"]

1. ``PHOTOS`` JPEG photos of 4-digit numbers (640x480, MNIST test digits) are written once.
2. ``read_loop``, in a fresh worker of the device venv: ``Classifier.read`` of those files in
   a loop, one thread, for ``BASELINE_S`` seconds: reads/s and the median time of a read.
   It runs before and after the server's part; the figures are the mean of the two.
3. The server (``mnist-edge serve MODEL --port 0``, the same venv) is warmed up by ``CLIENTS``
   clients for ``WARMUP_S`` seconds; its resident memory (VmRSS) is sampled meanwhile, and
   taken again when they stop. Idle, it holds about 8 MB less than while it reads (a read's
   arrays), so the growth figure compares the peaks: under load, and during the warm-up.
4. One client posts the photos in turn for ``ONE_CLIENT_S`` seconds: the median time of a
   ``POST /read``, request to parsed answer, over the in-process median.
5. ``CLIENTS`` clients, each a thread of this process on its own keep-alive connection, post
   the photos for ``seconds`` (30 by default) and stop by themselves: answers/s over the
   in-process reads/s, p50 and p99, 503 "busy" answers, errors (any other status, a broken
   connection, a number unlike the in-process read of the same photo), and the server's peak
   VmRSS (sampled every ``SAMPLE_S``) over the warm-up's peak.
"""

from __future__ import annotations

import http.client
import io
import json
import statistics
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from checks.bench.live import rss_mb
from checks.served import Server
from checks.worker import Worker, job_name

if TYPE_CHECKING:
    from common.data import Mnist

# Targets (docs/serve.md explains each)
MAX_P50_VS_INPROCESS = 1.5    # POST /read p50, one client / Classifier.read p50 in-process
MIN_THROUGHPUT_VS_INPROCESS = 0.8  # answers/s, CLIENTS clients / reads/s of one process
MAX_BUSY_RATE = 0.01          # 503 answers / requests, CLIENTS clients
MAX_RSS_GROWTH = 1.10         # peak VmRSS under load / peak VmRSS of the warm-up
CLIENTS = 8
LOAD_S = 30.0
WARMUP_S = 3.0
ONE_CLIENT_S = 8.0
BASELINE_S = 8.0
PHOTOS = 12
SAMPLE_S = 0.1
SEED = 23


def write_photos(mnist: Mnist, folder: Path, count: int = PHOTOS) -> list[dict]:
    """``count`` JPEG photos of 4-digit numbers of test digits: [{path, truth}]."""
    import numpy as np
    from PIL import Image

    from common import photos

    digits = photos.split_digits(mnist, "test")
    rng = np.random.default_rng(SEED)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(count):
        sources = rng.choice(len(digits.x), 4, replace=False).tolist()
        sample = photos.plain_number(digits, sources, rng)
        path = folder / f"number-{i:02d}.jpg"
        buf = io.BytesIO()
        Image.fromarray(sample.image).save(buf, "JPEG", quality=90)
        path.write_bytes(buf.getvalue())
        out.append({"path": str(path), "truth": sample.truth})
    return out


# ------------------------------------------------------------------------------ worker side
def read_loop(model: str, photos: list[str], seconds: float) -> dict:
    """``Classifier.read`` of the files in turn for ``seconds`` (after one read of each):
    reads/s, the median read in ms, and the number each file reads as."""
    from mnist_edge import Classifier

    clf = Classifier.load(model)
    numbers = [clf.read(p).number for p in photos]
    times: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        clf.read(photos[len(times) % len(photos)])
        times.append(time.perf_counter() - t)
    wall = time.perf_counter() - start
    return {"reads": len(times), "seconds": round(wall, 3),
            "reads_per_s": round(len(times) / wall, 2),
            "p50_ms": round(statistics.median(times) * 1000, 3), "numbers": numbers}


# ------------------------------------------------------------------------------ parent side
def _client(host: str, port: int, bodies: list[bytes], numbers: list[str], until: float,
            start: int, out: dict) -> None:
    """POST /read the bodies in turn (from ``start``) on one keep-alive connection until
    ``until``; appends (seconds, status, right) to out["answers"]."""
    conn = http.client.HTTPConnection(host, port, timeout=60)
    i = start
    answers = []
    try:
        while time.perf_counter() < until:
            k = i % len(bodies)
            i += 1
            t = time.perf_counter()
            try:
                conn.request("POST", "/read", bodies[k], {"Content-Type": "image/jpeg"})
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                answers.append((time.perf_counter() - t, f"connection: {exc}", False))
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=60)
                continue
            right = resp.status == 200 and json.loads(data)["number"] == numbers[k]
            answers.append((time.perf_counter() - t, resp.status, right))
    finally:
        conn.close()
        out.setdefault("answers", []).extend(answers)


def _load(server: Server, bodies: list[bytes], numbers: list[str], clients: int,
          seconds: float, sample: bool = False) -> dict:
    """``clients`` threads posting for ``seconds``; their answers, and the server's peak RSS."""
    out: dict = {}
    until = time.perf_counter() + seconds
    threads = [threading.Thread(target=_client, args=(server.host, server.port, bodies, numbers,
                                                      until, c * 3, out), daemon=True)
               for c in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    peak = 0.0
    while sample and any(t.is_alive() for t in threads):
        peak = max(peak, rss_mb(server.proc.pid))
        time.sleep(SAMPLE_S)
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    answers = out.get("answers", [])
    ok = [s for s, status, _ in answers if status == 200]
    busy = sum(1 for _, status, _ in answers if status == 503)
    errors = [status for _, status, _ in answers if status not in (200, 503)]
    wrong = sum(1 for _, status, right in answers if status == 200 and not right)
    return {"clients": clients, "seconds": round(wall, 2), "requests": len(answers),
            "answers_per_s": round(len(ok) / wall, 2),
            "p50_ms": round(statistics.median(ok) * 1000, 2) if ok else None,
            "p99_ms": round(statistics.quantiles(ok, n=100)[98] * 1000, 2) if len(ok) > 1
            else None,
            "busy": busy, "busy_rate": round(busy / max(1, len(answers)), 4),
            "errors": len(errors), "error_examples": sorted({str(e) for e in errors})[:3],
            "wrong_numbers": wrong, "peak_rss_mb": round(peak, 1) if sample else None}


def measure(mnist: Mnist, model: str, tmp: Path, python: str, seconds: float = LOAD_S,
            clients: int = CLIENTS) -> dict:
    """The serve section of the bench (see the module docstring); {"error": why} when the
    server cannot start (the serve extra missing, say)."""
    photos = write_photos(mnist, tmp / "serve-photos")
    paths = [p["path"] for p in photos]
    bodies = [Path(p).read_bytes() for p in paths]

    def baseline() -> dict:
        with Worker(python, timeout=BASELINE_S + 300) as worker:
            answer = worker.call({"job": job_name(read_loop), "model": model, "photos": paths,
                                  "seconds": BASELINE_S})
        if not answer.pop("ok"):
            raise RuntimeError(f"the in-process baseline failed: {answer['error']}")
        return answer

    try:
        before = baseline()
        server = Server(python, model)
    except RuntimeError as exc:
        return {"error": str(exc)}
    numbers = before["numbers"]
    with server:
        try:
            warm = _load(server, bodies, numbers, clients, WARMUP_S, sample=True)
            idle_rss = rss_mb(server.proc.pid)
            one = _load(server, bodies, numbers, 1, ONE_CLIENT_S)
            load = _load(server, bodies, numbers, clients, seconds, sample=True)
        finally:
            status = server.stop()
            log = server.stderr()
    after = baseline()
    reads_per_s = (before["reads_per_s"] + after["reads_per_s"]) / 2
    p50 = (before["p50_ms"] + after["p50_ms"]) / 2
    load["throughput_vs_inprocess"] = round(load["answers_per_s"] / reads_per_s, 3)
    load["warmup_peak_rss_mb"] = warm["peak_rss_mb"]
    load["idle_rss_after_warmup_mb"] = round(idle_rss, 1)
    load["rss_growth"] = round(load["peak_rss_mb"] / warm["peak_rss_mb"], 3)
    load["rss_vs_idle"] = round(load["peak_rss_mb"] / idle_rss, 3)
    one["p50_vs_inprocess"] = round(one["p50_ms"] / p50, 3) if one["p50_ms"] else None
    return {"photos": len(photos), "size": [640, 480], "python": python,
            "numbers_right": sum(n == p["truth"] for n, p in zip(numbers, photos, strict=True)),
            "inprocess": {"before": {k: v for k, v in before.items() if k != "numbers"},
                          "after": {k: v for k, v in after.items() if k != "numbers"},
                          "reads_per_s": round(reads_per_s, 2), "p50_ms": round(p50, 3)},
            "one_client": one, "load": load, "server_exit": status,
            "server_tracebacks": log.count("Traceback")}


def targets(s: dict | None) -> list[dict]:
    """The serve section's targets."""
    if s is None:
        return []
    if "error" in s:
        return [{"target": "serve: the load test ran", "value": s["error"], "goal": "yes",
                 "met": False}]
    one, load = s["one_client"], s["load"]

    def row(what: str, value, goal: str, met: bool) -> dict:
        return {"target": f"serve: {what}", "value": value, "goal": goal, "met": met}

    errors = load["errors"] + load["wrong_numbers"] + one["errors"] + one["wrong_numbers"]
    return [
        row("POST /read p50, one client / Classifier.read p50 in-process (640x480 photo)",
            one["p50_vs_inprocess"], f"<= {MAX_P50_VS_INPROCESS}x",
            one["p50_vs_inprocess"] is not None
            and one["p50_vs_inprocess"] <= MAX_P50_VS_INPROCESS),
        row(f"{load['clients']} clients x {load['seconds']:.0f} s: answers/s / in-process "
            "reads/s", load["throughput_vs_inprocess"], f">= {MIN_THROUGHPUT_VS_INPROCESS}x",
            load["throughput_vs_inprocess"] >= MIN_THROUGHPUT_VS_INPROCESS),
        row(f"{load['clients']} clients: busy answers / requests", load["busy_rate"],
            f"<= {MAX_BUSY_RATE}", load["busy_rate"] <= MAX_BUSY_RATE),
        row(f"{load['clients']} clients: errors and wrong numbers", errors, "0", errors == 0),
        row("peak RSS under load / peak RSS of the warm-up", load["rss_growth"],
            f"<= {MAX_RSS_GROWTH}",
            load["rss_growth"] <= MAX_RSS_GROWTH),
    ]
