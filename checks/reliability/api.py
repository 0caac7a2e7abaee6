"""Fuzz the HTTP API: ``mnist-edge serve`` as a child process, sent malformed and hostile requests
over raw sockets.

    python -m checks.reliability fuzz --api-requests 2000     # beside the other targets
    from checks.reliability.api import case, failures, fuzz_api
    result = fuzz_api("artifacts", requests=500, seed=1)
    case(1, 37, seed_images(1)).raw                           # the bytes of case 37, again

Each case is drawn from ``numpy.random.default_rng([seed, index])`` alone, so ``case(seed, index,
seed_images(seed))`` rebuilds it. The promises: every complete request is answered, by the app
(JSON; an error is {"error": one line}) or, for malformed HTTP, by Uvicorn's plain-text 400; no
answer shows a traceback or a path of the server; the server never dies, logs no internal error
(a traceback on its stderr, or a 500) and still answers a valid GET /info and POST /read every
HEALTH_EVERY requests. A client that never finishes its body waits ABANDON_WAIT_S for an early
answer, then closes: those cases are counted as abandoned (the server's 30 s body timeout is not
waited for).
"""

from __future__ import annotations

import io
import json
import re
import select
import socket
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from checks.reliability import mutate
from checks.reliability.fuzz import random_ops
from checks.served import Server

MAX_BYTES = 2_000_000      # the server's --max-bytes here: larger bodies must be refused (413)
READ_TIMEOUT_S = 10.0      # a complete request not answered by then is a hang
SEND_TIMEOUT_S = 2.0       # a server that stops reading a body it refused already
ABANDON_WAIT_S = 0.05      # how long a client that never finishes its body waits for an answer
HEALTH_EVERY = 200         # requests between two checks that the server still answers
EXAMPLES = 5               # failing cases kept, with their bytes
TRACEBACK = b"Traceback (most recent call last)"
LEAKS = (b"Traceback", b'File "', b"site-packages")  # and the artifacts' and the code's paths
UVICORN_400 = b"Invalid HTTP request received."

METHODS = (b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"OPTIONS", b"PATCH", b"TRACE",
           b"CONNECT", b"get", b"post", b"PoSt", b"FOO", b"G\x00T", "PÖST".encode(),
           b"\x16\x03\x01", b"", b"GET GET", b"M" * 300)
ENDPOINTS = (b"/read",) * 4 + (b"/predict",) * 3 + (b"/info", b"/info", b"/camera", b"/",
                                                   b"/app.js")
# the odds that each part of a request is broken (else it is valid)
BREAK = {"method": 0.2, "target": 0.25, "version": 0.12, "host": 0.04, "content-type": 0.25,
         "framing": 0.4, "headers": 0.2}
QUERIES = (b"", b"?crops=1", b"?crops=0", b"?crops=maybe", b"?crops=", b"?crops",
           b"?crops=1&crops=0", b"?x=1", b"?crops=1&debug=1", b"?%63rops=%31", b"?crops=%ff%fe",
           b"?%00=%00", b"?crops=TRUE", b"?&&&=&", b"?crops=1#frag", b"#frag", "?crops=é".encode(),
           b"?;", b"?crops=%0d%0aX-Injected:%201")
TRAVERSALS = (b"/../../etc/passwd", b"/read/../info", b"//read", b"/%2e%2e/%2e%2e/etc/passwd",
              b"/read/%2e%2e/info", b"/./info", b"/info/", b"/READ", b"/read%00", b"/read;x=1",
              b"/read/", b"\\read", b"/..%2f..%2fetc/passwd", b"/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
              b"/info/../../../../proc/self/environ", b"/read%2f..%2finfo")
ABSOLUTE = (b"http://127.0.0.1/read", b"http://evil.example/info?crops=1", b"https://x/predict",
            b"*", b"127.0.0.1:80", b"http://[::1]:80/info", b"ftp://x/read", b"file:///etc/passwd",
            b"http://user:pass@x/read", b"http:///read")
ODD_PATHS = ("/réad".encode(), "/читать".encode(), b"/read\xff\xfe", b"/\xc0\xaf", b"/info\x7f",
             "/\u202e/info".encode(), b"/re\tad", b"/re ad", b"/read\r", b"/in\x00fo")
VERSIONS = (b"HTTP/1.1",) * 8 + (b"HTTP/1.0",) * 3 + (
    b"HTTP/2.0", b"HTTP/0.9", b"HTTP/1.2", b"http/1.1", b"HTTP/1.1x", b"HTTP/", b"",
    b"HTTP/1.1 extra", b"HTTP/\xff", b"HTTP/11")
CONTENT_TYPES = (b"image/png", b"image/jpeg", b"application/octet-stream", b"text/plain",
                 b"multipart/form-data; boundary=xyz", b"image/png; charset=utf-8", b"IMAGE/PNG",
                 b";", b"", b"\x01\x02", b"image/" + b"x" * 2000, "image/pñg".encode(),
                 b"application/json", None, None, None, None)
# how the body is framed; "long", "open" and "cut" never finish it (the client closes)
FRAMINGS = ("length", "none", "short", "long", "negative", "text", "huge", "over",
                              "dup-same", "dup-diff", "chunked", "chunked", "chunked-bad",
                              "chunked-open", "chunked-huge", "chunked+length", "te-other", "cut")
UNFINISHED = ("long", "chunked-open", "chunked-huge", "cut")
# odd Content-Length values ("%d" is the body's length: padded or zero-led, it still frames it)
LENGTH_TEXTS = (b"abc", b"1e3", b"0x10", b"+5", b" %d", b"%d ", b"\t%d", b"", b"1,2", b"\xff",
                b"1 2", b"\x00", b"%d.0", b"0%d")
HUGE_LENGTHS = (str(10**20).encode(), str(2**63).encode(), str(2**64).encode(), b"9" * 40)
CHUNK_SIZES = (b"zz", b"-1", b"f" * 21, b"1;ext=\x00", b"", b"0x5", b"5 5", b"\xff")
TRANSFER_CODINGS = (b"gzip", b"chunked, gzip", b"identity", b"Chunked", b"chunked, chunked",
                    b"\x00chunked", b"deflate")
BODIES = ("image",) * 4 + ("mutated",) * 3 + ("duplicated", "declared-huge", "random", "random",
                                              "empty", "oversized")
EXTRAS = ("many", "huge", "no-colon", "nul", "control", "fold", "non-ascii", "dup-host",
          "empty-name", "space-name", "long-name", "lf-only")
HUGE_SIZES = ((60_000, 60_000), (65_000, 65_000), (100_000, 100_000), (1, 2_000_000_000),
              (7_000, 7_000), (0, 0))
FORMATS = {"PNG": ".png", "JPEG": ".jpg", "BMP": ".bmp", "GIF": ".gif", "WEBP": ".webp",
           "TIFF": ".tif", "PPM": ".pgm"}


@dataclass
class Case:
    """One case: the bytes sent on one connection and what an answer to them should be."""

    index: int
    spec: dict                    # the choices made, for a person reading a failure
    raw: bytes
    methods: list[bytes]          # one per HTTP request in ``raw`` (pipelined cases hold several)
    finished: bool = True         # False: the body never completes and the client closes


@dataclass
class Response:
    status: int | None            # None: not an HTTP response
    headers: dict[bytes, bytes]
    body: bytes
    raw: bytes


@dataclass
class Result:
    """The run's counts; ``as_dict`` is what fuzz_api returns."""

    seed: int = 0
    requests: int = 0
    cases: int = 0
    by_status: Counter = field(default_factory=Counter)
    uvicorn_plain_400: int = 0
    abandoned: int = 0
    unanswered: int = 0           # complete requests whose connection closed without an answer
    hangs: int = 0
    crashes: int = 0
    tracebacks_in_responses: int = 0
    non_json_errors: int = 0
    internal_errors: int = 0
    internal_kinds: Counter = field(default_factory=Counter)  # exception line: cases
    health_checks: int = 0
    health_failures: int = 0
    seconds: float = 0.0
    examples: list = field(default_factory=list)

    def as_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["by_status"] = {str(k): v for k, v in sorted(self.by_status.items(), key=str)}
        out["internal_kinds"] = dict(self.internal_kinds.most_common())
        out["seconds"] = round(self.seconds, 1)
        return out


# ------------------------------------------------------------------------------ the cases
def seed_images(seed: int) -> dict[str, bytes]:
    """Random pen strokes in every format the server reads: an MNIST-like digit (white on black,
    28x28) and a line of four on paper (160x48)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng([seed, 2**40])  # apart from every case's [seed, index]
    images = {}
    for name, size, digits, ink, paper in (("digit", (28, 28), 1, 255, 0),
                                           ("line", (160, 48), 4, 20, 235)):
        img = Image.new("L", size, paper)
        draw = ImageDraw.Draw(img)
        w, h = size
        for d in range(digits):
            points = [(w / digits * (d + 0.2 + 0.6 * rng.random()), h * (0.15 + 0.7 * rng.random()))
                      for _ in range(int(rng.integers(3, 7)))]
            draw.line(points, fill=ink, width=max(2, h // 10), joint="curve")
        for fmt, suffix in FORMATS.items():
            buf = io.BytesIO()
            (img.convert("RGB") if fmt == "WEBP" else img).save(buf, fmt)
            images[name + suffix] = buf.getvalue()
    return images


def case(seed: int, index: int, images: dict[str, bytes]) -> Case:
    """Case ``index`` of the run seeded ``seed`` (``images``: seed_images(seed))."""
    rng = np.random.default_rng([seed, index])
    if rng.random() < 0.08:
        return _pipelined(rng, index, images)
    return _single(rng, index, images)


def _pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def _single(rng: np.random.Generator, index: int, images: dict[str, bytes]) -> Case:
    """One request: each part valid, or broken with its own odds (BREAK)."""
    broken = {part for part, odds in BREAK.items() if rng.random() < odds}
    endpoint = _pick(rng, ENDPOINTS)
    method = (_pick(rng, METHODS) if "method" in broken
              else b"GET" if endpoint in (b"/info", b"/camera") else b"POST")
    target, where = _target(rng, endpoint, "target" in broken)
    version = _pick(rng, VERSIONS if "version" in broken else (b"HTTP/1.1", b"HTTP/1.0"))
    body, what = _body(rng, images)
    framing = _pick(rng, FRAMINGS) if "framing" in broken else "length"
    head: list[bytes] = [] if "host" in broken else [b"Host: 127.0.0.1"]
    ctype = (_pick(rng, CONTENT_TYPES) if "content-type" in broken
             else _pick(rng, (b"image/png", b"image/jpeg", b"application/octet-stream", None)))
    if ctype is not None:
        head.append(b"Content-Type: " + ctype)
    framed, lines = _frame(rng, framing, body)
    head += lines
    connection = _pick(rng, (b"close", b"close", b"keep-alive", None))
    if connection is not None:
        head.append(b"Connection: " + connection)
    if rng.random() < 0.1:
        head.append(b"Expect: 100-continue")
    extra = _pick(rng, EXTRAS) if "headers" in broken else None
    head = _extra(rng, extra, head)
    start = method + b" " + target + (b" " + version if version else b"")
    eol = b"\n" if extra == "lf-only" else b"\r\n"
    raw = eol.join([start, *head]) + eol + eol + framed
    spec = {"method": method.decode("latin-1")[:20], "target": where,
            "version": version.decode("latin-1"), "content_type": None if ctype is None
            else ctype.decode("latin-1")[:40], "body": what, "framing": framing,
            "connection": None if connection is None else connection.decode(), "extra": extra}
    return Case(index, spec, raw, [method], framing not in UNFINISHED)


def _target(rng: np.random.Generator, endpoint: bytes, broken: bool) -> tuple[bytes, str]:
    """The request target and what kind it is."""
    kind = "endpoint"
    if broken:
        kind = _pick(rng, ("query", "query", "traversal", "absolute", "odd", "random", "long",
                           "empty"))
    if kind in ("endpoint", "query"):
        query = _pick(rng, QUERIES) if kind == "query" else _pick(rng, (b"", b"", b"?crops=1"))
        if kind == "query" and rng.random() < 0.1:  # a very long query
            query = b"?crops=1&x=" + b"%41" * int(rng.integers(3000, 7000))
        target = endpoint + query
    elif kind == "traversal":
        target = _pick(rng, TRAVERSALS)
    elif kind == "absolute":
        target = _pick(rng, ABSOLUTE)
    elif kind == "odd":
        target = _pick(rng, ODD_PATHS)
    elif kind == "random":
        target = rng.bytes(int(rng.integers(1, 200)))
    elif kind == "long":
        n = int(rng.integers(10_000, 20_000))
        target = _pick(rng, (b"/", b"/read/", b"/info?x=")) + b"a" * n
    else:
        target = b""
    return target, f"{kind} {target[:60].decode('latin-1')!r}"


def _body(rng: np.random.Generator, images: dict[str, bytes]) -> tuple[bytes, str]:
    """A body and how it was made."""
    kind = _pick(rng, BODIES)
    name = _pick(rng, sorted(images))
    data = images[name]
    if kind == "image":
        return data, name
    if kind == "mutated":
        ops = random_ops(rng, image=True)
        return mutate.apply(data, ops), f"{name} {json.dumps(ops)}"
    if kind == "duplicated":  # a run of bytes (a chunk, a segment, rows) repeated
        a = int(rng.integers(len(data)))
        b = min(len(data), a + int(rng.integers(1, max(2, len(data) // 2))))
        times = int(_pick(rng, (1, 2, 10)))
        return data[:b] + data[a:b] * times + data[b:], f"{name} [{a}:{b}] x{times} more"
    if kind == "declared-huge":  # a valid header declaring a huge (or empty) image
        name = _pick(rng, [n for n in sorted(images) if n.endswith((".png", ".jpg", ".bmp"))])
        w, h = _pick(rng, HUGE_SIZES)
        return mutate.declare_size(images[name], w, h), f"{name} declaring {w}x{h}"
    if kind == "random":
        n = int(_pick(rng, (1, 8, 100, 5000, 60_000)))
        return rng.bytes(n), f"{n} random bytes"
    if kind == "empty":
        return b"", "empty"
    n = MAX_BYTES + int(_pick(rng, (1, 1000, 300_000)))
    return data + rng.bytes(n - len(data)), f"{name} padded to {n} bytes (> --max-bytes)"


def _frame(rng: np.random.Generator, framing: str, body: bytes) -> tuple[bytes, list[bytes]]:
    """What follows the head, and the framing header lines."""
    n = len(body)
    cl = b"Content-Length: "
    if framing == "length":
        return body, [cl + str(n).encode()]
    if framing == "none":
        return body, []
    if framing == "short":
        return body, [cl + str(int(rng.integers(0, max(1, n)))).encode()]
    if framing == "long":
        return body, [cl + str(n + int(rng.integers(1, 100_000))).encode()]
    if framing == "cut":  # the right length, and half the body
        return body[:n // 2], [cl + str(max(1, n)).encode()]
    if framing == "negative":
        return body, [cl + b"-" + str(int(rng.integers(1, n + 2))).encode()]
    if framing == "text":
        text = _pick(rng, LENGTH_TEXTS)
        return body, [cl + (text % n if b"%d" in text else text)]
    if framing == "huge":
        return body, [cl + _pick(rng, HUGE_LENGTHS)]
    if framing == "over":  # declared past --max-bytes: refused before the body is read
        return body, [cl + str(MAX_BYTES + int(rng.integers(1, 10**9))).encode()]
    if framing == "dup-same":
        return body, [cl + str(n).encode()] * 2
    if framing == "dup-diff":
        return body, [cl + str(n).encode(), cl + str(n + 1).encode()]
    te = b"Transfer-Encoding: chunked"
    if framing == "chunked":
        return _chunks(rng, body) + b"0\r\n\r\n", [te]
    if framing == "chunked-bad":
        return _pick(rng, CHUNK_SIZES) + b"\r\n" + body + b"\r\n0\r\n\r\n", [te]
    if framing == "chunked-open":  # chunks, and never the last one
        return _chunks(rng, body), [te]
    if framing == "chunked-huge":  # a chunk declared far larger than what follows
        return _pick(rng, (b"ffffffff", b"f" * 20)) + b"\r\n" + body, [te]
    if framing == "chunked+length":
        return _chunks(rng, body) + b"0\r\n\r\n", [te, cl + str(n).encode()]
    # CRLFs after the body: a server that reads it as chunked finds a (bad) chunk-size line
    # instead of waiting for one
    return body + b"\r\n\r\n", [b"Transfer-Encoding: " + _pick(rng, TRANSFER_CODINGS),
                                cl + str(n).encode()]


def _chunks(rng: np.random.Generator, body: bytes) -> bytes:
    out, at = [], 0
    while at < len(body):
        size = int(rng.integers(1, max(2, len(body) // 3)))
        out.append(b"%x\r\n" % len(body[at:at + size]) + body[at:at + size] + b"\r\n")
        at += size
    return b"".join(out)


def _extra(rng: np.random.Generator, kind: str | None, head: list[bytes]) -> list[bytes]:
    """``head`` with one kind of odd header lines added."""
    if kind == "many":
        return head + [b"X-Fuzz-%d: %d" % (i, i) for i in range(int(rng.integers(100, 2000)))]
    if kind == "huge":  # a head past 64 KB, in one line or in many
        if rng.random() < 0.5:
            return head + [b"X-Big: " + b"a" * int(rng.integers(65_000, 100_000))]
        return head + [b"X-Big-%d: " % i + b"b" * 100 for i in range(700)]
    if kind == "no-colon":
        return head + [b"a header line without a colon"]
    if kind == "nul":
        return head + [b"X-Nul: a\x00b"]
    if kind == "control":
        return head + [b"X-Ctl: " + bytes(int(b) for b in rng.integers(1, 32, 8))]
    if kind == "fold":  # an obsolete folded continuation line
        return head + [b"X-Fold: a", b" b"]
    if kind == "non-ascii":
        return head + ["X-Name: Ünïcödé".encode(), b"X-Latin: \xe9\xff"]
    if kind == "dup-host":
        return head + [b"Host: evil.example"]
    if kind == "empty-name":
        return head + [b": value"]
    if kind == "space-name":
        return head + [b"X-Space : value"]
    if kind == "long-name":
        return head + [b"X" * 20_000 + b": v"]
    return head


def _pipelined(rng: np.random.Generator, index: int, images: dict[str, bytes]) -> Case:
    """Two to four requests sent at once on one connection, answered in turn."""
    parts, methods, names = [], [], []
    for _ in range(int(rng.integers(2, 5))):
        kind = _pick(rng, ("info", "predict", "read", "missing", "random", "head", "crops"))
        image = images[_pick(rng, sorted(images))]
        method, target, body = {
            "info": (b"GET", b"/info", b""), "predict": (b"POST", b"/predict", image),
            "read": (b"POST", b"/read", image), "missing": (b"GET", b"/nowhere", b""),
            "random": (b"POST", b"/read", rng.bytes(int(rng.integers(1, 3000)))),
            "head": (b"HEAD", b"/info", b""), "crops": (b"POST", b"/read?crops=1", image)}[kind]
        parts.append(method + b" " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)
        methods.append(method)
        names.append(kind)
    return Case(index, {"pipelined": names}, b"".join(parts), methods)


# ------------------------------------------------------------------------------ one exchange
def exchange(address: tuple[str, int], c: Case) -> tuple[list[Response], bytes, str]:
    """Send ``c`` on a new connection; (the answers, bytes after them, how it ended: "done",
    "timeout", "closed", "reset")."""
    with socket.create_connection(address, timeout=SEND_TIMEOUT_S) as sock:
        _send(sock, c.raw)
        wait = READ_TIMEOUT_S if c.finished else ABANDON_WAIT_S
        return _read(sock, c.methods, time.monotonic() + wait)


def _send(sock: socket.socket, raw: bytes) -> None:
    """Send ``raw`` in pieces, stopping when the server answers (or closes) before the end."""
    view = memoryview(raw)
    for at in range(0, len(raw), 1 << 16):
        if select.select([sock], [], [], 0)[0]:
            return
        try:
            sock.sendall(view[at:at + (1 << 16)])
        except OSError:  # reset, or a server that stopped reading a body it refused
            return


def _read(sock: socket.socket, methods: list[bytes],
          deadline: float) -> tuple[list[Response], bytes, str]:
    buf, out = b"", []
    while len(out) < len(methods):
        parsed = _parse(buf, methods[len(out)], eof=False)
        if parsed is not None:
            response, buf = parsed
            if response.status is None or not 100 <= response.status < 200:
                out.append(response)
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            return out, buf, "timeout"
        sock.settimeout(left)
        try:
            chunk = sock.recv(1 << 16)
        except TimeoutError:
            return out, buf, "timeout"
        except OSError:
            chunk, how = b"", "reset"
        else:
            how = "closed"
        if not chunk:
            while buf and len(out) < len(methods):
                parsed = _parse(buf, methods[len(out)], eof=True)
                if parsed is None:
                    break
                response, buf = parsed
                out.append(response)
            return out, buf, how
        buf += chunk
    return out, buf, "done"


def _parse(buf: bytes, method: bytes, eof: bool) -> tuple[Response, bytes] | None:
    """The first response in ``buf`` and the bytes after it; None until it is all there."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return (Response(None, {}, b"", buf), b"") if eof and buf else None
    lines = buf[:end].split(b"\r\n")
    m = re.fullmatch(rb"HTTP/1\.[01] (\d{3})(?: .*)?", lines[0], re.S)
    if m is None:
        return Response(None, {}, b"", buf), b""
    status = int(m.group(1))
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    rest = buf[end + 4:]
    if 100 <= status < 200 or status in (204, 304) or method == b"HEAD":
        length = 0
    elif b"chunked" in headers.get(b"transfer-encoding", b"").lower():
        body_and_rest = _dechunk(rest)
        if body_and_rest is None:
            return (Response(status, headers, rest, buf), b"") if eof else None
        body, after = body_and_rest
        return Response(status, headers, body, buf[:len(buf) - len(after)]), after
    elif headers.get(b"content-length", b"").isdigit():
        length = int(headers[b"content-length"])
    else:  # the body runs to the end of the connection
        return (Response(status, headers, rest, buf), b"") if eof else None
    if len(rest) < length and not eof:
        return None
    return Response(status, headers, rest[:length], buf[:end + 4 + length]), rest[length:]


def _dechunk(data: bytes) -> tuple[bytes, bytes] | None:
    body, at = [], 0
    while True:
        eol = data.find(b"\r\n", at)
        if eol < 0:
            return None
        size = int(data[at:eol].split(b";")[0] or b"0", 16)
        if size == 0:
            trailer = data.find(b"\r\n\r\n", eol)
            return (b"".join(body), data[trailer + 4:]) if trailer >= 0 else None
        if len(data) < eol + 2 + size + 2:
            return None
        body.append(data[eol + 2:eol + 2 + size])
        at = eol + 2 + size + 2


def judge(response: Response, method: bytes, leaks: tuple[bytes, ...]) -> tuple[str, str]:
    """(kind, detail): kind is "ok", "uvicorn-400", "traceback", "non-json" or "internal"."""
    if any(leak in response.raw for leak in leaks):
        leak = next(leak for leak in leaks if leak in response.raw)
        return "traceback", f"the answer shows {leak!r}"
    if response.status is None:
        return "non-json", "not an HTTP response"
    kind = response.headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    if (response.status == 400 and kind == b"text/plain"
            and response.body.strip() in (UVICORN_400, b"" if method == b"HEAD" else UVICORN_400)):
        return "uvicorn-400", ""
    if response.status == 500:
        return "internal", "a 500 answer"
    if method == b"HEAD":  # the head of a GET's answer, without its body
        return "ok", ""
    if kind != b"application/json":
        if response.status >= 400:
            return "non-json", f"{response.status} with Content-Type {kind.decode('latin-1')!r}"
        return "ok", ""
    try:
        data = json.loads(response.body)
    except ValueError:
        return "non-json", f"{response.status}: the JSON does not parse"
    if response.status >= 400:
        error = data.get("error") if isinstance(data, dict) else None
        if not isinstance(error, str) or not error or "\n" in error or "\r" in error:
            return "non-json", f"{response.status}: no one-line error string"
    return "ok", ""


# ------------------------------------------------------------------------------ the server
def new_tracebacks(server: Server) -> tuple[int, list[str]]:
    """The tracebacks ``server`` logged since the last call: how many, and their exceptions."""
    new = server.new_stderr()
    if TRACEBACK in new:  # let the server finish writing it (and its twin from Uvicorn)
        time.sleep(0.05)
        new += server.new_stderr()
    return new.count(TRACEBACK), exceptions(new)


def exceptions(log: bytes) -> list[str]:
    """The exception line ending each traceback in ``log`` (the first line not indented after
    its "Traceback" line), in order, without repeats."""
    out = []
    for block in log.split(TRACEBACK)[1:]:
        line = next((x for x in block.split(b"\n")[1:] if x and not x[:1].isspace()), b"?")
        text = line.decode(errors="replace")[:160]
        if text not in out:
            out.append(text)
    return out


def _health(address: tuple[str, int], images: dict[str, bytes]) -> str | None:
    """Why the server does not answer a valid GET /info and POST /read with 200, or None."""
    body = images["line.png"]
    for raw, method in ((b"GET /info HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                         b"GET"),
                        (b"POST /read HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                         b"Connection: close\r\nContent-Length: " + str(len(body)).encode()
                         + b"\r\n\r\n" + body, b"POST")):
        try:
            answers, _, how = exchange(address, Case(-1, {}, raw, [method]))
        except OSError as exc:
            return f"{method.decode()}: {exc}"
        if not answers or answers[0].status != 200:
            return (f"{raw.split(b' HTTP')[0].decode()}: "
                    f"{answers[0].raw[:200]!r}" if answers else how)
    return None


# ------------------------------------------------------------------------------ the run
def fuzz_api(artifacts: str | Path, requests: int = 2000, seed: int = 0,
             python: str = sys.executable) -> dict:
    """Send about ``requests`` fuzzed requests to ``mnist-edge serve artifacts``; the counts (see
    the module docstring), the first EXAMPLES failing cases with their bytes."""
    artifacts = Path(artifacts).resolve()
    import mnist_edge

    leaks = LEAKS + (str(artifacts).encode(), str(Path(mnist_edge.__file__).parent).encode())
    images = seed_images(seed)
    result = Result(seed)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mnist-edge-api-fuzz-") as tmp:
        logs = iter(Path(tmp) / f"serve-{i}.log" for i in range(10**6))
        server = _start(artifacts, python, next(logs))

        def failed(what: str, c: Case | None, detail: str) -> None:
            if len(result.examples) < EXAMPLES:
                result.examples.append(
                    {"what": what, "detail": detail, "seed": seed,
                     "index": None if c is None else c.index,
                     "spec": None if c is None else c.spec,
                     "request": None if c is None else repr(c.raw[:300])})

        def check_log(c: Case | None) -> None:
            count, errors = new_tracebacks(server)
            if count:  # logged as the case ended, or just after the one before
                result.internal_errors += 1
                result.internal_kinds.update(errors)
                failed("internal", c, f"{count} traceback(s) on the server's stderr after this "
                                      f"case (or the one before): {'; '.join(errors)}")

        next_health = HEALTH_EVERY
        try:
            while result.requests < requests:
                c = case(seed, result.cases, images)
                result.cases += 1
                result.requests += len(c.methods)
                _run_case(server, c, leaks, result, failed)
                if not c.finished:
                    time.sleep(0.01)  # the server logs what a disconnect did just after it
                check_log(c)
                if not server.alive():
                    result.crashes += 1
                    failed("crash", c, f"the server exited with {server.proc.returncode}")
                    server.stop()
                    server = _start(artifacts, python, next(logs))
                if result.requests >= next_health or result.requests >= requests:
                    next_health += HEALTH_EVERY
                    result.health_checks += 1
                    why = _health(server.address, images)
                    if why is not None:
                        result.health_failures += 1
                        failed("health", c, f"after this case: {why}")
                    check_log(None)
        finally:
            server.stop()
        check_log(None)
    result.seconds = time.perf_counter() - start
    return result.as_dict()


def _start(artifacts: Path, python: str, log: Path) -> Server:
    return Server(python, artifacts, "--max-bytes", str(MAX_BYTES), log=log)


def _run_case(server: Server, c: Case, leaks: tuple[bytes, ...], result: Result, failed) -> None:
    try:
        answers, after, how = exchange(server.address, c)
    except OSError as exc:  # the connection itself refused: a dead or drowned server
        answers, after, how = [], b"", f"connect: {exc}"
    if any(leak in after for leak in leaks):
        result.tracebacks_in_responses += 1
        failed("traceback", c, f"bytes after the answers show a traceback or path: {after[:200]!r}")
    for response, method in zip(answers, c.methods, strict=False):
        result.by_status[response.status if response.status is not None else "none"] += 1
        kind, detail = judge(response, method, leaks)
        if kind == "uvicorn-400":
            result.uvicorn_plain_400 += 1
        elif kind == "traceback":
            result.tracebacks_in_responses += 1
        elif kind == "non-json":
            result.non_json_errors += 1
        elif kind == "internal":
            result.internal_errors += 1
        if kind not in ("ok", "uvicorn-400"):
            failed(kind, c, f"{detail}: {response.raw[:300]!r}")
    if answers:
        return
    if not c.finished:
        result.abandoned += 1
    elif how == "timeout":
        result.hangs += 1
        failed("hang", c, f"no answer within {READ_TIMEOUT_S:g} s")
    else:
        result.unanswered += 1


def failures(result: dict) -> list[str]:
    """One line per broken promise of the run (none when the API held)."""
    lines = []
    for key, what in (("crashes", "server crashes (it exited; restarted)"),
                      ("hangs", f"complete requests not answered within {READ_TIMEOUT_S:g} s"),
                      ("tracebacks_in_responses", "answers showing a traceback or a path"),
                      ("non_json_errors", "error answers from the app that are not one-line JSON"),
                      ("internal_errors", "internal errors (a 500, or a traceback on the server's "
                                          "stderr)"),
                      ("health_failures", "valid requests not answered 200 between the cases")):
        if result[key]:
            lines.append(f"api: {result[key]} {what}")
    return lines


def table(result: dict) -> str:
    """The run as a short table for the terminal."""
    statuses = ", ".join(f"{k}: {v}" for k, v in result["by_status"].items())
    rows = [("requests", result["requests"]), ("seconds", result["seconds"]),
            ("answers by status", statuses), ("Uvicorn's plain 400", result["uvicorn_plain_400"]),
            ("abandoned bodies", result["abandoned"]),
            ("closed unanswered", result["unanswered"]), ("hangs", result["hangs"]),
            ("crashes", result["crashes"]),
            ("tracebacks in answers", result["tracebacks_in_responses"]),
            ("non-JSON errors", result["non_json_errors"]),
            ("internal errors", result["internal_errors"]),
            ("health failures", f"{result['health_failures']} of {result['health_checks']}")]
    lines = [f"{'http api (mnist-edge serve)':<28}figure"]
    lines += [f"  {name:<26}{value}" for name, value in rows]
    for e in result["examples"]:
        lines.append(f"  {e['what']}: {e['detail']}\n    seed {e['seed']} index {e['index']} "
                     f"spec {json.dumps(e['spec'])}\n    request {e['request']}")
    return "\n".join(lines)
