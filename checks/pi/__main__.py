"""CLI: `python -m checks.pi` (what `make pi-check` runs); see the package docstring."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from checks.pi.check import CheckConfig
from checks.pi.common import PiCheckError, log
from checks.pi.targets import TARGETS


def parse_args(argv=None) -> CheckConfig:
    d = CheckConfig()
    p = argparse.ArgumentParser(
        prog="python -m checks.pi",
        description="Run the mnist-edge runtime on emulated Raspberry Pi userlands (qemu-user, "
                    "Debian bookworm) and check it predicts the same digits as the host.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--artifacts", type=Path, default=d.artifacts,
                   help="exported folder with manifest.json (make export)")
    p.add_argument("--data", type=str, default=d.data,
                   help="MNIST mnist.npz or IDX folder; None: $MNIST_DATA, else the Keras download")
    p.add_argument("--targets", type=str, default=d.targets,
                   help=f"comma-separated: {', '.join(t.key for t in TARGETS)}, or all")
    p.add_argument("--images", type=int, default=d.images,
                   help="test images for the int8 TFLite file (fewer than 10000 fails the check)")
    p.add_argument("--subset", type=int, default=d.subset,
                   help="test images for the float TFLite and ONNX files (at least 1000 to pass)")
    p.add_argument("--batch", type=int, default=d.batch, help="images per predict() call")
    p.add_argument("--jobs", type=int, default=d.jobs, help="targets emulated at the same time")
    p.add_argument("--int8-steps", type=float, default=d.int8_steps,
                   help="allowed difference of raw int8 outputs, in quantization steps "
                        "(None: the format table's, common/formats.py)")
    p.add_argument("--float-diff", type=float, default=d.float_diff,
                   help="allowed difference of float outputs, in probability "
                        "(None: the format table's, common/formats.py)")
    p.add_argument("--cache", type=Path, default=d.cache, help="cache of debs, wheels and ARM roots")
    p.add_argument("--reports", type=Path, default=d.reports, help="where pi.md and pi.json go")
    p.add_argument("--mirror", type=str, default=d.mirror, help="Debian mirror for debootstrap")
    p.add_argument("--host-tflite-python", type=Path, default=d.host_tflite_python,
                   help="host Python with tflite-runtime 2.14 and the runtime (make runtime-venvs): "
                        "the reference for the 32-bit target")
    a = p.parse_args(argv)
    if min(a.images, a.subset, a.batch, a.jobs) < 1:
        p.error("--images, --subset, --batch and --jobs must be positive")
    return CheckConfig(artifacts=a.artifacts, data=a.data, targets=a.targets, images=a.images,
                       subset=a.subset, batch=a.batch, jobs=a.jobs, int8_steps=a.int8_steps,
                       float_diff=a.float_diff, cache=a.cache, reports=a.reports, mirror=a.mirror,
                       host_tflite_python=a.host_tflite_python)


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
