"""CLI: `python -m checks.pi` (what `make pi-check` runs); see the package docstring."""

from __future__ import annotations

from checks.pi.check import CheckConfig
from checks.pi.common import PiCheckError, log
from common import entry
from common.flags import parse


def parse_args(argv: list[str] | None = None) -> CheckConfig:
    """Command-line flags -> CheckConfig (flags, help and defaults come from the dataclass)."""
    return parse(CheckConfig, argv, "python -m checks.pi",
                 "Run the mnist-edge runtime on emulated Raspberry Pi userlands (qemu-user, Debian "
                 "bookworm) and check it predicts the same digits as the host; run it on x86 CPU "
                 "models without AVX-512 and check each file against Keras and its float file.")


def main(argv: list[str] | None = None) -> int:
    """Run the check; one stderr line and exit 2 on an expected error, 1 when a run failed."""
    return entry.run("pi-check", parse_args(argv), _check, (PiCheckError,), status=2)


def _check(cfg: CheckConfig) -> int:
    from checks.pi.check import prepare, run_check
    from checks.pi.report import isa_table, table

    if cfg.cache.exists() and not cfg.cache.is_dir():
        raise PiCheckError(f"--cache {cfg.cache} is not a folder")
    if cfg.prepare:
        built = prepare(cfg)
        log(f"prepared {cfg.cache}: {', '.join(built) if built else 'everything was cached'}")
        return 0
    rows, isa_rows, md = run_check(cfg)
    print(table([r for r in rows if r.target != "host"]))
    if isa_rows:
        print(isa_table(isa_rows))
    log(f"report: {md} and {md.with_suffix('.json')}")
    if entry.failed("pi-check", [f if r.target == "host" else f"{r.target} {r.key} {r.backend}: {f}"
                                 for r in (*rows, *isa_rows) for f in r.failures], "FAILED"):
        return 1
    log(f"passed: {len(rows)} runs agree with the host on every image"
        + (f"; {len(isa_rows)} CPU-model runs hold to Keras and their float files"
           if isa_rows else ""))
    return 0


if __name__ == "__main__":
    entry.exit(main)
