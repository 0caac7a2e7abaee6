"""What every pi-check module shares: the error type, progress lines and subprocess calls."""

from __future__ import annotations

import subprocess
import sys
import time

_START = time.monotonic()


class PiCheckError(Exception):
    """An expected failure: the CLI prints its one-line message and exits non-zero."""


def log(message: str) -> None:
    """One progress line on stderr, stamped with seconds since start."""
    print(f"[pi-check {time.monotonic() - _START:6.1f}s] {message}", file=sys.stderr, flush=True)


def run(cmd: list, what: str, env: dict | None = None, quiet: bool = True) -> str:
    """Run a command; on failure raise PiCheckError naming ``what`` with the output's last lines."""
    cmd = [str(c) for c in cmd]
    try:
        proc = subprocess.run(cmd, env=env, text=True, stdout=subprocess.PIPE if quiet else None,
                              stderr=subprocess.STDOUT if quiet else None)
    except FileNotFoundError:
        raise PiCheckError(f"{what}: {cmd[0]} not found") from None
    if proc.returncode != 0:
        tail = "\n".join(line for line in (proc.stdout or "").splitlines()
                     if "is ignored" not in line)
        tail = " | ".join(tail.splitlines()[-6:])
        raise PiCheckError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd[:6])} "
                           f"... {tail}")
    return proc.stdout or ""
