"""mnist-edge serve: the reader as a small HTTP service for the machines of a local network.

    pip install "./runtime[serve,litert]"          # Starlette + Uvicorn, pure Python
    mnist-edge serve artifacts/                    # http://127.0.0.1:8000, this machine only
    curl --data-binary @meter.jpg http://127.0.0.1:8000/read
    curl --data-binary @seven.png http://127.0.0.1:8000/predict
    curl http://127.0.0.1:8000/info

The API (JSON answers; an error is {"error": one line} with its status code):

- ``POST /read``: an image as the body (PNG, JPEG, BMP, GIF, TIFF, WebP, PNM) -> the number,
  its digits (box in the image's pixels, label, confidence), with the gate ``no_digit`` and
  ``refused``, and ``ms`` (decoding and reading) and ``wait_ms`` (queued behind others);
  ``?crops=1`` adds each digit's 28x28 crop as the model saw it.
- ``POST /predict``: an image of one digit -> label, name, confidence, probabilities (or
  ``no_digit``).
- ``GET /info``: the model (file, format, backend, precision, accuracy from the manifest), the
  line reader and the gate, and the server's limits.
- ``GET /camera`` (with ``--camera N`` or ``--video FILE``): the latest frame's reading.

How it stays safe on a network: the body is refused past ``max_bytes`` (413) before it is read
when its length is declared, and while it is read otherwise; an image declaring more than
``max_pixels`` is refused from its header (413); only the image formats the runtime decodes are
read (415 otherwise), by content, never from a path: requests name no file. One inference
thread reads the images in turn; at most ``queue`` requests wait for it or run, and the next one
is answered 503 "busy" at once, before its body is read, so memory stays bounded. Any other
failure is logged on the server's stderr and answered 500 with one line: no traceback leaves
the process.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import logging
import os
import socket
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from mnist_edge.errors import (
    ImageTooLargeError,
    InputError,
    MnistEdgeError,
    ModelError,
    UnsupportedImageError,
)
from mnist_edge.images import MAX_PIXELS

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    from mnist_edge.classifier import Classifier
    from mnist_edge.live import LiveStream

DEFAULT_PORT = 8000
MAX_BYTES = 10 * 1024 * 1024  # a 12 MP phone JPEG is 3-5 MB
QUEUE = 16                    # requests waiting for the inference thread or running
BODY_SECONDS = 30.0           # a body that has not arrived by then is dropped (408)
# connections Uvicorn holds at once; past it, it answers 503 itself (plain text)
CONNECTIONS = 128
# the body types taken: image types and the generic ones (curl --data-binary sends the form type)
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/jpg", "image/pjpeg", "image/bmp",
                         "image/x-ms-bmp", "image/gif", "image/tiff", "image/webp",
                         "image/x-portable-anymap", "image/x-portable-bitmap",
                         "image/x-portable-graymap", "image/x-portable-pixmap",
                         "application/octet-stream", "application/x-www-form-urlencoded"})
QUERY = {"/read": {"crops"}, "/predict": set(), "/info": set(), "/camera": {"crops", "image"}}
# the page (GET /): fixed names, each read from the package once, never a path from a request
PAGE = {"/": ("index.html", "text/html; charset=utf-8"),
        "/app.js": ("app.js", "text/javascript; charset=utf-8"),
        "/app.css": ("app.css", "text/css; charset=utf-8")}
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
                                           "object-src 'none'; base-uri 'none'; "
                                           "form-action 'none'; frame-ancestors 'none'",
                "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache",
                "Referrer-Policy": "no-referrer"}
CAMERA_JPEG_QUALITY = 80
_TRUE, _FALSE = frozenset({"1", "true", "yes"}), frozenset({"0", "false", "no", ""})
_log = logging.getLogger("mnist_edge.serve")


@dataclass(frozen=True)
class Limits:
    """What one request may carry, and how many may be in the server at once."""

    max_bytes: int = MAX_BYTES
    max_pixels: int = MAX_PIXELS
    queue: int = QUEUE
    body_seconds: float = BODY_SECONDS

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_pixels", "queue"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise MnistEdgeError(f"serve: {name} must be a positive whole number, got "
                                     f"{value!r}")
        if self.max_pixels > MAX_PIXELS:
            raise MnistEdgeError(f"serve: max_pixels is at most {MAX_PIXELS} (what the runtime "
                                 f"decodes safely), got {self.max_pixels}")
        if not self.body_seconds > 0:
            raise MnistEdgeError(f"serve: body_seconds must be positive, got "
                                 f"{self.body_seconds!r}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class HTTPError(Exception):
    """An answer other than 200: its status and one line saying why."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


@dataclass
class _Queue:
    """The inference thread and its admission count (touched only on the event loop)."""

    depth: int
    busy: int = 0          # requests admitted and not yet answered
    refused: int = 0       # answered 503 busy
    pool: concurrent.futures.ThreadPoolExecutor = field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="mnist-edge-inference"))

    def admit(self) -> None:
        if self.busy >= self.depth:
            self.refused += 1
            raise HTTPError(503, f"busy: {self.busy} requests are being read or waiting; try "
                                 "again shortly", {"Retry-After": "1"})
        self.busy += 1

    def release(self) -> None:
        self.busy -= 1


class Camera:
    """A thread reading a camera (or a video file) with its own Classifier; ``latest`` is the
    last frame's reading, ``error`` why it stopped when it did."""

    def __init__(self, clf: Classifier, source: int | str, camera_api: str = "auto"):
        self.name = f"camera {source}" if isinstance(source, int) else Path(source).name
        self.stream: LiveStream = clf.watch(source, camera_api=camera_api)
        self.error: str | None = None
        self.ended = False
        self._thread = threading.Thread(target=self._run, name="mnist-edge-camera", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with self.stream:
                for _ in self.stream:  # the changes; every frame's reading is stream.latest
                    pass
        except MnistEdgeError as exc:
            self.error = str(exc)
        except Exception as exc:  # a camera driver failing in its own way: reported, not raised
            _log.exception("the camera thread stopped")
            self.error = f"the camera stopped ({type(exc).__name__})"
        finally:
            self.ended = True

    def answer(self, crops: bool, image: bool = False) -> dict[str, Any]:
        """The latest frame's reading; with ``image`` the frame itself, as a JPEG data URL."""
        from mnist_edge.answers import reading_json

        newest, stats = self.stream.newest, self.stream.stats
        latest, pixels = newest if newest is not None else (None, None)
        if latest is None:
            why = self.error or ("no frame read yet" if not self.ended else "the video held no "
                                 "frame")
            raise HTTPError(503, f"{self.name}: {why}")
        out = {"source": self.name, "frame": latest.frame, "time": round(latest.time, 3),
               **reading_json(latest.reading, True, crops), "no_digit": latest.no_digit,
               "fps": round(latest.fps, 2), "frames_read": stats.frames_read,
               "frames_dropped": getattr(self.stream.source, "dropped", 0),
               "ended": self.ended, "error": self.error}
        if image and pixels is not None:
            out["image"] = _jpeg_data_url(pixels)
        return out

    def close(self) -> None:
        self.stream.close()


def _jpeg_data_url(pixels: Any) -> str:
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=CAMERA_JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _page_files() -> dict[str, tuple[bytes, str]]:
    """The page's files, read from the package: path -> (bytes, media type)."""
    from importlib import resources

    folder = resources.files("mnist_edge") / "page"
    return {path: (folder.joinpath(name).read_bytes(), kind)
            for path, (name, kind) in PAGE.items()}


def model_info(clf: Classifier, read_off: str | None) -> dict[str, Any]:
    """GET /info: the files' names (never their paths), formats, backends and accuracies."""
    def accuracy(entry: Any) -> float | None:
        value = getattr(entry, "verification", {}).get("accuracy") if entry else None
        return value if isinstance(value, (int, float)) else None

    out: dict[str, Any] = {"model": {"file": Path(clf.path).name, "format": clf.format,
                                     "precision": clf.precision, "backend": clf.backend,
                                     "accuracy": accuracy(clf.entry), "labels": clf.labels,
                                     "kind": clf.kind}}
    if clf.manifest is not None:
        dataset = clf.manifest.data.get("dataset")
        out["model"]["dataset"] = dataset.get("name") if isinstance(dataset, dict) else None
    if read_off is None:
        r = clf.line_reader()
        exact = r.verification.get("exact_rate")
        out["reader"] = {"file": Path(r.path).name, "key": r.key, "precision": r.precision,
                         "backend": r.backend,
                         "test_lines_exact": exact if isinstance(exact, (int, float)) else None}
    else:
        out["reader"] = None
    if clf.gate is not None:
        g = clf.gate.model
        out["gate"] = {"file": Path(g.path).name, "format": g.format, "precision": g.precision,
                       "backend": g.backend, "threshold": clf.gate.threshold}
    else:
        out["gate"] = None
    return out


def create_app(clf: Classifier, limits: Limits | None = None,
               camera: Camera | None = None) -> Starlette:
    """The ASGI app serving ``clf`` (see the module docstring); run it with any ASGI server."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect
    from starlette.routing import Route

    limits = limits or Limits()
    queue = _Queue(limits.queue)
    read_off = _read_off(clf)
    info = {**model_info(clf, read_off), "server": {**limits.as_dict(), "version": _version(),
                                                    "camera": camera.name if camera else None}}

    def read_job(body: bytes, crops: bool) -> dict[str, Any]:
        from mnist_edge.answers import reading_json
        from mnist_edge.images import decode_bytes

        decoded = decode_bytes(body, "the image", limits.max_pixels)
        reading = clf.read(decoded)
        return {**reading_json(reading, True, crops),
                "image": {"width": decoded.size[0], "height": decoded.size[1]}}

    def predict_job(body: bytes, crops: bool) -> dict[str, Any]:
        from mnist_edge.answers import file_result_json
        from mnist_edge.images import decode_bytes

        decoded = decode_bytes(body, "the image", limits.max_pixels)
        r = clf.predict_image(decoded, name="the image")
        if r.error is not None:
            raise HTTPError(422, r.error)
        return file_result_json(r, clf.labels)

    async def infer(request: Request, job: Callable[[bytes, bool], dict[str, Any]]) -> Any:
        crops = _flag(request, "crops")
        _check_type(request)
        declared = _declared_length(request)
        if declared is not None and declared > limits.max_bytes:
            raise HTTPError(413, f"the body is {declared} bytes, more than the {limits.max_bytes} "
                                 "this server takes")
        queue.admit()
        try:
            arrived = time.perf_counter()
            try:
                body = await asyncio.wait_for(_body(request, limits.max_bytes),
                                              limits.body_seconds)
            except asyncio.TimeoutError:
                raise HTTPError(408, f"the body did not arrive within {limits.body_seconds:g} "
                                     "s") from None
            except ClientDisconnect:  # nobody is left to answer; the place in the queue is freed
                raise HTTPError(400, "the client left before sending the whole body") from None
            if not body:
                raise HTTPError(400, "empty body: send the image's bytes as the request body")
            loop = asyncio.get_running_loop()
            answer = await loop.run_in_executor(queue.pool, _timed, job, body, crops)
            answer["wait_ms"] = round(max(0.0, answer.pop("_started") - arrived) * 1000, 2)
            return _json(answer)
        finally:
            queue.release()

    async def read(request: Request) -> Any:
        if read_off is not None:
            raise HTTPError(501, _without_folders(read_off, clf))
        return await infer(request, read_job)

    async def predict(request: Request) -> Any:
        return await infer(request, predict_job)

    async def get_info(request: Request) -> Any:
        _flag(request, "")
        return _json({**info, "server": {**info["server"], "busy": queue.busy,
                                         "refused_busy": queue.refused}})

    async def get_camera(request: Request) -> Any:
        crops, image = _flag(request, "crops"), _flag(request, "image")
        if camera is None:
            raise HTTPError(404, "no camera: start the server with --camera N (or --video FILE)")
        if image:  # the JPEG encoding takes a few ms: off the event loop
            return _json(await asyncio.get_running_loop().run_in_executor(
                None, camera.answer, crops, True))
        return _json(camera.answer(crops))

    page = _page_files()

    async def get_page(request: Request) -> Any:
        from starlette.responses import Response

        _flag(request, "")
        body, kind = page[request.url.path]
        return Response(body, 200, PAGE_HEADERS, media_type=kind)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, HTTPError):
            return _json({"error": _one_line(exc.message)}, exc.status, exc.headers)
        if isinstance(exc, HTTPException):
            why = {404: f"no such endpoint: {_path(request)} (the API: POST /read, POST "
                        "/predict, GET /info, GET /camera)",
                   405: f"{request.method} is not allowed on {_path(request)}"}
            return _json({"error": why.get(exc.status_code, _one_line(str(exc.detail)))},
                         exc.status_code, dict(exc.headers or {}))
        raise exc

    async def internal(request: Request, exc: Exception) -> JSONResponse:
        # logged here with the traceback; the client gets one line
        _log.error("%s %s failed", request.method, _path(request), exc_info=exc)
        return _json({"error": "internal error; the server's log has the details"}, 500)

    def route(path: str, endpoint: Callable[..., Any], methods: list[str]) -> Route:
        return Route(path, _guarded(endpoint), methods=methods)

    app = Starlette(routes=[route("/read", read, ["POST"]), route("/predict", predict, ["POST"]),
                            route("/info", get_info, ["GET"]),
                            route("/camera", get_camera, ["GET"]),
                            *(route(path, get_page, ["GET"]) for path in PAGE)],
                    exception_handlers={HTTPError: http_error, HTTPException: http_error,
                                        Exception: internal})
    # "/info/" is an unknown path (404), not a redirect built from the client's Host header
    app.router.redirect_slashes = False
    return app


class _Answered:
    """The app as Uvicorn runs it: an answer to a request whose connection the HTTP parser
    already answered itself (a malformed body: 400 and close) is dropped, not raised; it has
    nowhere to go, and raising would log a traceback for each such request."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from h11 import LocalProtocolError

        async def sending(message: Any) -> None:
            with contextlib.suppress(LocalProtocolError):
                await send(message)

        await self.app(scope, receive, sending)


def _guarded(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """``endpoint`` with the runtime's expected errors turned into HTTP answers."""
    async def guarded(request: Request) -> Any:
        try:
            return await endpoint(request)
        except ImageTooLargeError as exc:
            raise HTTPError(413, str(exc)) from None
        except UnsupportedImageError as exc:
            raise HTTPError(415, str(exc)) from None
        except InputError as exc:
            raise HTTPError(400, str(exc)) from None
        except ModelError as exc:
            _log.error("the model failed: %s", exc)
            raise HTTPError(500, "the model failed; the server's log has the details") from None

    return guarded


def _timed(job: Callable[[bytes, bool], dict[str, Any]], body: bytes,
           crops: bool) -> dict[str, Any]:
    started = time.perf_counter()
    answer = job(body, crops)
    answer["ms"] = round((time.perf_counter() - started) * 1000, 2)
    answer["_started"] = started
    return answer


async def _body(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it passes ``limit`` bytes."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPError(413, f"the body is more than the {limit} bytes this server takes")
        chunks.append(chunk)
    return b"".join(chunks)


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    if not value.isdigit():  # Uvicorn's parser refuses most; what passes is still not a length
        raise HTTPError(400, "Content-Length is not a number of bytes")
    return int(value)


def _check_type(request: Request) -> None:
    kind = request.headers.get("content-type")
    if kind is None:
        return
    base = kind.split(";", 1)[0].strip().lower()
    if base not in IMAGE_TYPES:
        raise HTTPError(415, f"Content-Type {_one_line(base)[:80]!r} is not an image type; send "
                             "the image's bytes as the body (image/png, image/jpeg, ... or "
                             "application/octet-stream)")


def _flag(request: Request, name: str) -> bool:
    """The query's boolean ``name``; 400 for a parameter the endpoint does not take."""
    known = QUERY.get(request.url.path, set())
    for key in request.query_params:
        if key not in known:
            allowed = ", ".join(sorted(known)) or "none"
            raise HTTPError(400, f"unknown query parameter {_one_line(key)[:40]!r} (taken here: "
                                 f"{allowed})")
    value = request.query_params.get(name, "0").lower() if name else "0"
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise HTTPError(400, f"{name} must be 1 or 0, got {_one_line(value)[:20]!r}")


def _path(request: Request) -> str:
    return _one_line(request.url.path)[:80]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    from starlette.responses import JSONResponse

    return JSONResponse(data, status, headers)


def _without_folders(text: str, clf: Classifier) -> str:
    """``text`` with the folders of the model's files left out: the server's file system is
    nobody's business on the network (the names stay)."""
    paths = [Path(clf.path)] + ([Path(clf.manifest.path)] if clf.manifest is not None else [])
    folders = {f for p in paths for f in (p.parent, p.resolve().parent)
               if f.name and str(f) != "."}  # not ".", not "/"
    for folder in sorted(folders, key=lambda f: -len(str(f))):
        text = text.replace(f"{folder}{os.sep}", "").replace(str(folder), folder.name)
    return text


def _read_off(clf: Classifier) -> str | None:
    """Why POST /read cannot answer with this model (no line reader, not digits), or None."""
    try:
        clf._digits_only("read")
        clf.line_reader()
    except ModelError as exc:
        return str(exc)
    return None


def _version() -> str:
    from mnist_edge import __version__

    return __version__


# ---------------------------------------------------------------------------------- the command

def _listen(host: str, port: int, backlog: int) -> socket.socket:
    """A TCP socket listening on host:port. Its protocol is named (IPPROTO_TCP), not left at 0
    as ``socket.create_server`` leaves it: the connections it accepts inherit it, and asyncio
    turns Nagle's algorithm off (TCP_NODELAY) only on sockets that say they are TCP. Without
    that, each answer's body waits for the client's delayed ACK of its head: 40 ms or more."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``mnist-edge serve`` (the model's own come from the CLI)."""
    p.epilog = ("example: curl --data-binary @meter.jpg http://127.0.0.1:8000/read (?crops=1 adds "
                "each digit's 28x28 crop). Answers are JSON; an error is {\"error\": one line} "
                "with its status: 400 a bad request or image, 404/405 an unknown path or method, "
                "408 a body too slow, 413 too many bytes or pixels, 415 not an image, 501 /read "
                "without a line reader, 503 busy (past --queue)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on: 127.0.0.1 serves this machine only; 0.0.0.0 "
                        "serves the local network (no authentication, no encryption: a network "
                        "you trust)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help="port to listen on (0: any free port, printed at start)")
    p.add_argument("--max-bytes", type=int, default=MAX_BYTES,
                   help="largest request body taken, in bytes (413 past it)")
    p.add_argument("--max-pixels", type=int, default=MAX_PIXELS,
                   help="most pixels an image may declare (413 past it)")
    p.add_argument("--queue", type=int, default=QUEUE,
                   help="requests being read or waiting at once; the next gets 503 busy")
    live = p.add_argument_group("camera", "also read a camera's frames, and answer GET /camera "
                                          "with the latest reading (needs OpenCV: pip install "
                                          "\"mnist-edge[video]\", or Picamera2 on a Pi)")
    live.add_argument("--camera", type=int, nargs="?", const=0, metavar="N",
                      help="read camera N (default when given alone: 0)")
    live.add_argument("--video", metavar="FILE",
                      help="read a video file once instead of a camera (to try it out)")
    live.add_argument("--camera-api", choices=["auto", "picamera2", "opencv"], default="auto",
                      help="auto: Picamera2 when installed (a Pi camera module), else OpenCV")
    p.add_argument("--access-log", action="store_true",
                   help="print a line per request on stdout")


def run(args: argparse.Namespace, load: Callable[[], Classifier]) -> int:
    """Serve until interrupted (Ctrl-C, SIGTERM); ``load`` loads the model as the CLI does."""
    try:
        import uvicorn
    except ImportError:
        raise MnistEdgeError('serve needs Starlette and Uvicorn: pip install "mnist-edge[serve]"'
                             ) from None
    if args.camera is not None and args.video is not None:
        raise MnistEdgeError("serve: give --camera N or --video FILE, not both")
    if not 0 <= args.port <= 65535:
        raise MnistEdgeError(f"serve: --port must be 0-65535, got {args.port}")
    limits = Limits(args.max_bytes, args.max_pixels, args.queue)
    clf = load()
    camera = None
    if args.camera is not None or args.video is not None:
        camera = Camera(load(), args.video if args.video is not None else args.camera,
                        args.camera_api)
    app = create_app(clf, limits, camera)
    config = uvicorn.Config(_Answered(app), host=args.host, port=args.port, http="h11", ws="none",
                            lifespan="off", proxy_headers=False, server_header=False,
                            access_log=args.access_log, log_level="warning",
                            limit_concurrency=max(CONNECTIONS, 2 * limits.queue),
                            timeout_keep_alive=5)
    # bound and listening here, not by Uvicorn (which logs and exits): a port in use or a host
    # that is not this machine's is one line, and connections wait in the backlog from now on
    try:
        sock = _listen(args.host, args.port, config.backlog)
    except OSError as exc:
        why = str(exc.strerror or exc).partition(" (while attempting")[0]
        raise MnistEdgeError(f"serve: cannot listen on {args.host}:{args.port}: {why}; choose "
                             "another --port, or an address of this machine for --host") from None
    host, port = sock.getsockname()[:2]
    where = f"[{host}]" if ":" in host else host
    read_off = _read_off(clf)
    endpoints = "GET / (a page), GET /info, POST /predict" + \
        (", POST /read" if read_off is None else "") + (", GET /camera" if camera else "")
    lines = [f"mnist-edge: serving {Path(clf.path).name} ({clf.backend}) at http://{where}:{port} "
             f"({endpoints}); Ctrl-C stops"]
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        lines.insert(0, f"mnist-edge: warning: serving on {args.host}: any machine that can "
                        "reach this one may use the API, without authentication or encryption; "
                        "use it only on a network you trust")
    if read_off is not None:
        lines.append(f"mnist-edge: note: POST /read is off: {read_off}")

    class Announced(uvicorn.Server):
        """Uvicorn's server, saying where it serves once it does: by then Ctrl-C and SIGTERM
        are Uvicorn's to handle, so a stop right after the line is a clean one."""

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if not self.should_exit:
                print("\n".join(lines), file=sys.stderr, flush=True)

    try:
        Announced(config).run(sockets=[sock])
    finally:
        if camera is not None:
            camera.close()
        sock.close()
    print("mnist-edge: stopped", file=sys.stderr)
    return 0
