"""``mnist-edge serve`` as a child process, for the checks and tests that talk to it over HTTP.

    with Server(sys.executable, "artifacts", "--queue", "4") as s:
        urllib.request.urlopen(f"http://{s.host}:{s.port}/info")
        s.stop(); "Traceback" in s.stderr()

It listens on a free port of 127.0.0.1 (``--port 0``); the address is read from the line the
server prints once it serves. Its stderr goes to a file of its own (``log``, a temporary file
unless given, removed on leaving the ``with`` block), read whole or as it grows. It runs in a
session of its own, so a server that ignores Ctrl-C is killed with whatever it started.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path

URL = re.compile(r" at http://([^:\s]+|\[[^\]]+\]):(\d+) ")
START_TIMEOUT_S = 120.0  # until the server prints its address (loading models included)
STOP_TIMEOUT_S = 15.0    # after SIGINT (Ctrl-C), before SIGKILL


class Server:
    """``python -m mnist_edge serve MODEL --port 0 FLAGS...``; ``host``, ``port``, ``proc``."""

    def __init__(self, python: str, model: str | os.PathLike[str], *flags: str,
                 log: Path | None = None):
        if log is None:
            fd, name = tempfile.mkstemp(prefix="mnist-edge-serve-", suffix=".log")
            self._log, self.log, self._temporary = os.fdopen(fd, "wb"), Path(name), True
        else:
            self._log, self.log, self._temporary = open(log, "wb"), log, False  # noqa: SIM115
        self._seen = 0
        self.proc = subprocess.Popen([python, "-m", "mnist_edge", "serve", str(model),
                                      "--port", "0", *flags], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self._log,
                                     start_new_session=True)
        self.host, self.port = self._address()

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def _address(self) -> tuple[str, int]:
        deadline = time.monotonic() + START_TIMEOUT_S
        while (m := URL.search(self.stderr())) is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                what = "exited" if self.proc.poll() is not None else \
                    f"did not start in {START_TIMEOUT_S:g} s"
                code, log = self.stop(), self.stderr().strip()[-500:]
                self.__exit__()  # no `with` block will: the temporary log goes now
                raise RuntimeError(f"mnist-edge serve {what} (exit {code}): {log}")
            time.sleep(0.05)
        return m.group(1).strip("[]"), int(m.group(2))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr(self) -> str:
        """All the server has written to stderr so far."""
        return self.log.read_bytes().decode(errors="replace")

    def new_stderr(self) -> bytes:
        """What the server has written to stderr since the last call."""
        with open(self.log, "rb") as fh:
            fh.seek(self._seen)
            new = fh.read()
        self._seen += len(new)
        return new

    def stop(self) -> int:
        """SIGINT (as Ctrl-C), then SIGKILL of its session after STOP_TIMEOUT_S; the exit
        status (130 after a Ctrl-C that Uvicorn handled)."""
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._temporary:
            self.log.unlink(missing_ok=True)
