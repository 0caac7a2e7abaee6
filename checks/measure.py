"""The checks' one peak-memory helper: wall time and peak resident memory of a command.

The command is started by a small Python that forks and execs it and reads the kernel's
``ru_maxrss`` with ``os.wait4``. A child forked (or vforked) straight from a large check process
would carry that process's resident size into its own peak. Figures include Python's start-up
and every import, as a user would see them. (A process's own peak, for the rows of
``mnist-edge bench``, is ``mnist_edge.bench.peak_rss_mb``.)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

_LAUNCHER = """
import json, os, sys, time
out = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
err = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.dup2(out, 1)
    os.dup2(err, 2)
    os.execv(sys.argv[3], sys.argv[3:])
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
print(json.dumps({"wall_s": wall, "status": os.waitstatus_to_exitcode(status), \
"maxrss": usage.ru_maxrss}))
"""


@dataclass(frozen=True)
class Measured:
    """How one command ran: its exit status, wall seconds, peak RSS (MiB) and output."""

    status: int
    wall_s: float
    peak_rss_mb: float
    stdout: str
    stderr: str

    @property
    def error(self) -> str | None:
        """The last line of stderr when the command failed, else None."""
        if self.status == 0:
            return None
        return (self.stderr.strip() or f"exit status {self.status}").splitlines()[-1][:300]


def measure(cmd: list[str]) -> Measured:
    """Run ``cmd`` (its first item an executable path) and measure it."""
    with tempfile.TemporaryDirectory(prefix="mnist-edge-measure-") as tmp:
        out, err = Path(tmp) / "out", Path(tmp) / "err"
        done = subprocess.run([sys.executable, "-S", "-c", _LAUNCHER, str(out), str(err),
                               *map(str, cmd)],
                              capture_output=True, text=True, check=True)
        res = json.loads(done.stdout)
        rss_kib = res["maxrss"] / (1024 if sys.platform == "darwin" else 1)  # bytes on macOS
        return Measured(res["status"], res["wall_s"], rss_kib / 1024,
                        out.read_text(errors="replace"), err.read_text(errors="replace"))
