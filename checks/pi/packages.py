"""Wheels for the device, chosen and installed on the host: `pip --target --platform`, no ARM pip.

Each backend gets its own folder in the root (/opt/mnist-edge/<backend>), so a run sees exactly
what `pip install mnist-edge[<extra>]` would put on a Pi, and its size is that backend's footprint.
Versions are the host's pins from requirements.txt, so the device runs what the host runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from checks.pi.common import PiCheckError, log, run
from checks.pi.targets import BackendInstall, Stack

_STAMP = ".pi-check-site.json"


def host_pins(requirements: Path) -> dict[str, str]:
    """name -> "name==version" for every exact pin in requirements.txt (markers dropped)."""
    pins = {}
    for line in requirements.read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        req = Requirement(text) if text else None
        if req is not None and any(s.operator == "==" for s in req.specifier):
            pins[canonicalize_name(req.name)] = f"{req.name}{req.specifier}"
    return pins


def requirements_for(install: BackendInstall, stack: Stack, runtime_dir: Path,
                     pins: dict[str, str]) -> list[str]:
    """The pip requirements of one backend on one stack: the runtime extra, host versions."""
    project = tomllib.loads((runtime_dir / "pyproject.toml").read_text())["project"]
    extra = project.get("optional-dependencies", {}).get(install.extra)
    if extra is None:
        raise PiCheckError(f"{runtime_dir}/pyproject.toml has no [{install.extra}] extra for "
                           f"backend {install.backend}")
    reqs: dict[str, str] = {}
    for spec in [*extra, *project.get("dependencies", [])]:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        if name not in dict(stack.debian_python) and name not in reqs:  # else Debian's package
            reqs[name] = pins.get(name, str(req))
    return list(reqs.values())


def build_runtime_wheel(runtime_dir: Path, out: Path) -> Path:
    """Build the runtime's wheel from a copy of runtime/ (the shared tree gets no build/ folder)."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="pi-check-runtime-") as tmp:
        src = Path(tmp) / "runtime"
        shutil.copytree(runtime_dir, src, ignore=shutil.ignore_patterns(
            "build", "dist", "*.egg-info", "__pycache__", "tests", ".pytest_cache"))
        run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", out, src],
            "building the runtime wheel")
    wheels = list(out.glob("*.whl"))
    if len(wheels) != 1:
        raise PiCheckError(f"building the runtime wheel left {len(wheels)} wheels in {out}")
    return wheels[0]


def _platform_args(stack: Stack) -> list[str]:
    args = [a for p in stack.platforms for a in ("--platform", p)]
    return args + ["--implementation", "cp", "--python-version", "3.11", "--abi", "cp311",
                   "--only-binary=:all:"]


def ensure_backend(stack: Stack, install: BackendInstall, root: Path, reqs: list[str],
                   cache: Path) -> tuple[Path, bool]:
    """The backend's site folder in the root, installed from cached wheels; returns
    (site, built)."""
    site = root / "opt/mnist-edge" / install.backend
    deps = ["--no-deps"] if stack.debian_python else []  # pip would fetch what Debian provides
    want = {"requirements": reqs, "platforms": list(stack.platforms), "deps": deps}
    stamp = site / _STAMP
    if stamp.is_file() and json.loads(stamp.read_text()) == want:
        return site, False
    wheels = cache / "wheels" / stack.name
    wheels.mkdir(parents=True, exist_ok=True)
    log(f"{stack.name}: pip download {' '.join(reqs)} ({stack.platforms[0].split('_', 3)[-1]}, "
        f"cp311) into {wheels}")
    run([sys.executable, "-m", "pip", "download", "-q", "--dest", wheels, *deps,
         *_platform_args(stack), *reqs], f"downloading {stack.name} wheels for {install.backend}")
    shutil.rmtree(site, ignore_errors=True)
    log(f"{stack.name}: pip install --target /opt/mnist-edge/{install.backend}")
    run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--find-links", wheels,
         "--target", site, *deps, *_platform_args(stack), *reqs],
        f"installing {stack.name} wheels for {install.backend}")
    stamp.write_text(json.dumps(want))
    return site, True


def install_runtime(root: Path, wheel: Path) -> Path:
    """Install the runtime wheel (no dependencies) fresh into the root's /opt/mnist-edge/runtime."""
    site = root / "opt/mnist-edge/runtime"
    shutil.rmtree(site, ignore_errors=True)
    run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--target", site,
         wheel], "installing the runtime wheel into the ARM root")
    return site


def folder_size(path: Path) -> int:
    """Bytes of regular files under ``path``, without bytecode caches (written on first import)."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        total += sum(os.lstat(os.path.join(dirpath, f)).st_size for f in filenames
                     if not os.path.islink(os.path.join(dirpath, f)))
    return total


def tensorflow_in(*sites: Path) -> list[str]:
    """Names of TensorFlow/Keras distributions or packages found in the given site folders."""
    bad = re.compile(r"^(tensorflow|tf_keras|keras|tf-nightly|tf_nightly)([-_.].*)?$", re.I)
    return sorted(p.name for s in sites if s.is_dir() for p in s.iterdir() if bad.match(p.name))
