"""CLI: `python -m checks.pi` (what `make pi-check` runs); see the package docstring."""

from __future__ import annotations

import sys

from checks.pi.check import CheckConfig
from checks.pi.common import PiCheckError, log
from common.flags import parse


def parse_args(argv: list[str] | None = None) -> CheckConfig:
    """Command-line flags -> CheckConfig (flags, help and defaults come from the dataclass)."""
    return parse(CheckConfig, argv, "python -m checks.pi",
                 "Run the mnist-edge runtime on emulated Raspberry Pi userlands (qemu-user, Debian "
                 "bookworm) and check it predicts the same digits as the host.")


def main(argv=None) -> int:
    cfg = parse_args(argv)
    try:
        from checks.pi.check import run_check
        from checks.pi.report import table

        rows, md = run_check(cfg)
    except PiCheckError as exc:
        print(f"pi-check: error: {exc}", file=sys.stderr)
        return 2
    print(table([r for r in rows if r.target != "host"]))
    failed = [f if r.target == "host" else f"{r.target} {r.key} {r.backend}: {f}"
              for r in rows for f in r.failures]
    log(f"report: {md} and {md.with_suffix('.json')}")
    if failed:
        for f in failed:
            print(f"pi-check: FAILED {f}", file=sys.stderr)
        return 1
    log(f"passed: {len(rows)} runs agree with the host on every image")
    return 0


if __name__ == "__main__":
    sys.exit(main())
