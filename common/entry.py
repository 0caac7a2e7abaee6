"""The build tools' entry points (train, export, the checks): run a parsed command, turn expected
errors into one line on stderr and a non-zero exit, exit.

    def main(argv=None) -> int:
        return entry.run(PROG, parse_args(argv), _run, errors=(DataError,))

    if __name__ == "__main__":
        entry.exit(main)

``_run(cfg)`` returns the exit status: 0, or non-zero when a figure or a file failed its check
(``failed`` prints those lines).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

T = TypeVar("T")


class CommandError(Exception):
    """A mistake found after the flags were parsed (a value argparse cannot check): one line."""


def run(prog: str, cfg: T, work: Callable[[T], int],
        errors: tuple[type[Exception], ...] = (), status: int = 1,
        published: Path | None = None) -> int:
    """``work(cfg)``'s exit status; ``CommandError`` or one of ``errors`` -> "PROG: error: ..." on
    stderr and ``status``.

    ``published`` is the file every publish of the command's set rewrites: on Ctrl-C the line says
    whether the new set is in place, and the status is 130.
    """
    before = _read(published)
    try:
        return work(cfg)
    except (CommandError,) + errors as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return status
    except KeyboardInterrupt:
        if published is None:
            raise
        after = _read(published)
        left = ("interrupted after publishing: the new set is in place"
                if after is not None and after != before
                else "interrupted; artifacts left as they were")
        print(f"{prog}: {left}", file=sys.stderr)
        return 130


def failed(prog: str, failures: list[str], word: str = "FAIL") -> int:
    """Each failure as "PROG: WORD failure" on stderr; the exit status, 1 if there was one."""
    for failure in failures:
        print(f"{prog}: {word} {failure}", file=sys.stderr)
    return 1 if failures else 0


def exit(main: Callable[[], int]) -> NoReturn:
    """``sys.exit(main())``; a Ctrl-C once ``main`` is done (during shutdown) changes nothing."""
    code = main()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)


def _read(path: Path | None) -> bytes | None:
    try:
        return None if path is None else path.read_bytes()
    except OSError:
        return None
