"""python -m checks.reliability: fuzz the runtime, or measure everything and write \
reports/reliability.md.

    python -m checks.reliability fuzz --cases 25000            # make fuzz
    python -m checks.reliability report --cases 25000 --kills 4  # make reliability
    python -m checks.reliability fuzz --target images --api-requests 0  # no HTTP API fuzzing
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from common import entry
from common.flags import HelpFormatter, add_options, option, positive_int


@dataclass
class FuzzConfig:
    """The flags of python -m checks.reliability fuzz (and report)."""

    cases: int = option(25000, "fuzz cases over all targets", type=positive_int)
    target: str = option("all", "'all' or comma-separated fuzz targets")
    seed: int = option(0, "seed of the random cases and kill moments")
    timeout: float = option(150.0, "seconds before a case counts as a hang (above the runtime "
                                   "probe's 30 s)")
    data: str | None = option(os.environ.get("MNIST_DATA"), "mnist.npz (default: $MNIST_DATA, else "
                                                             "the Keras download)")
    api_requests: int = option(2000, "fuzzed HTTP requests to mnist-edge serve (0 skips)")


@dataclass
class ReportConfig(FuzzConfig):
    """The flags of python -m checks.reliability report."""

    kills: int = option(4, "SIGKILL points per stage (train, export)", type=positive_int)
    out: str = option("reports", "folder for reliability.md/.json")


PROG = "python -m checks.reliability"


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG,
                                description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    for name, config in (("fuzz", FuzzConfig), ("report", ReportConfig)):
        add_options(sub.add_parser(name, formatter_class=HelpFormatter), config)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Fuzz, or fuzz and measure the rest and write the report; exit 1 when something broke."""
    return entry.run(PROG, _args(argv), _run, status=2)


def _run(args: argparse.Namespace) -> int:
    from checks.reliability import fuzz as fz

    targets = None if args.target == "all" else args.target.split(",")
    bad = [t for t in targets or [] if t not in fz.SHARES]
    if bad:
        raise entry.CommandError(f"unknown target {bad[0]!r}; choose from {', '.join(fz.SHARES)}")
    if args.api_requests < 0:
        raise entry.CommandError(f"--api-requests must be 0 (skip) or more, got "
                                 f"{args.api_requests}")
    with tempfile.TemporaryDirectory(prefix="mnist-edge-reliability-") as tmp:
        work = Path(tmp)
        print(fz.HEADER, flush=True)
        tallies = fz.fuzz(args.cases, work, targets, args.seed, args.timeout, args.data,
                          log=lambda line: print(line, flush=True))
        tried = sum(t.tried for t in tallies.values())
        failed = sum(t.failures for t in tallies.values())
        print(f"{'total':<22}{tried:>7}{'':>17}{failed:>8}", flush=True)
        for target, t in tallies.items():
            for e in t.examples:
                print(f"  {target} {e['outcome']}: {e['detail']}\n    spec {e['spec']}")
        api = _api(args)
        failed += bool(api and api["failures"])
        if args.command == "fuzz":
            return 1 if failed else 0
        return _report(args, work, tallies, failed, api)


def _api(args) -> dict | None:
    """The HTTP API fuzzed (checks/reliability/api.py), printed; None with --api-requests 0."""
    if not args.api_requests:
        return None
    from checks.reliability import api
    from checks.testmodels import ensure_test_artifacts

    result = api.fuzz_api(ensure_test_artifacts(), args.api_requests, args.seed)
    result["failures"] = api.failures(result)
    print(api.table(result), flush=True)
    for line in result["failures"]:
        print(f"  FAIL {line}", flush=True)
    return result


def _report(args, work: Path, tallies: dict, failed: int, api: dict | None = None) -> int:
    from checks.reliability import buildside, interrupt, load, repro
    from checks.reliability.report import write_report
    from checks.testmodels import ensure_test_artifacts
    from common.data import load_mnist

    interrupts = []
    for stage in ("train", "export"):
        print(f"interrupting make {stage} {args.kills} times", flush=True)
        interrupts.append(interrupt.interrupt(stage, work, args.kills, args.data, args.seed))
    print("the build side under hostile conditions", flush=True)
    cases = buildside.build_side(work / "build-side", load_mnist(args.data).source,
                                 log=lambda line: print(line, flush=True))
    print("reproducibility: three quick training + int8 export runs", flush=True)
    rep = repro.reproducibility(work, args.data)
    print(f"  same seed: {rep['same_seed_equal']}", flush=True)
    artifacts, x_test = ensure_test_artifacts(), load_mnist(args.data).x_test
    memory = load.predict_memory(artifacts, x_test, work)
    for m in memory:
        print(f"  mnist-edge predict {m['images']} images: peak RSS {m['peak_rss_mib']} MiB, "
              f"{m['seconds']} s, exit {m['exit_status']}", flush=True)
    threads = load.thread_safety(artifacts, x_test)
    for t in threads:
        print(f"  {t['threads']} threads x {t['calls'] // t['threads']} calls on {t['key']}: "
              f"{t['mismatches']} answers differ from serial", flush=True)
    path = write_report(Path(args.out), {k: v.as_dict() for k, v in tallies.items()},
                        [{**asdict(s), "lost": s.lost} for s in interrupts], rep, memory, threads,
                        "make reliability" if os.environ.get("MAKELEVEL")
                        else "python -m checks.reliability report",
                        [asdict(c) | {"lost": c.lost} for c in cases], api)
    print(f"wrote {path}")
    lost = sum(s.lost for s in interrupts) + sum(c.lost for c in cases)
    broken = (failed or lost or any(t["mismatches"] for t in threads)
              or any(m["exit_status"] for m in memory))
    return 1 if broken else 0


if __name__ == "__main__":
    entry.exit(main)
