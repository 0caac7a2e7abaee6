"""Host tools and cached ARM root filesystems: debootstrap downloads, dpkg-deb unpacks, nothing
ARM runs.

    root = ensure_root(ARM64, Path(".cache/pi"), "http://deb.debian.org/debian")
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from checks.pi.common import PiCheckError, log, run
from checks.pi.targets import HostStack, Stack

SUITE = "bookworm"  # Raspberry Pi OS 12 is built on Debian bookworm: Python 3.11.2, glibc 2.36
HOST_PACKAGES = ("qemu-user-static", "debootstrap", "debian-archive-keyring")
_STAMP = ".pi-check-root.json"


def emulator(stack: Stack | HostStack) -> str:
    """The path of the stack's qemu user-mode emulator (newer Debian drops the -static suffix)."""
    for name in (stack.qemu, stack.qemu.removesuffix("-static")):
        found = shutil.which(name)
        if found:
            return found
    raise PiCheckError(f"{stack.qemu} not found; install it with "
                       "`apt-get install qemu-user-static`")


def ensure_host_tools(stacks: list[Stack | HostStack]) -> bool:
    """Install qemu-user-static and debootstrap with apt when missing; True when it installed."""
    missing = [s.qemu for s in stacks if not (shutil.which(s.qemu)
                                              or shutil.which(s.qemu.removesuffix("-static")))]
    if any(isinstance(s, Stack) for s in stacks):  # only the Debian roots need them
        missing += [t for t in ("debootstrap", "dpkg-deb") if not shutil.which(t)]
    if not missing:
        return False
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise PiCheckError(f"missing {', '.join(missing)}; run as root on Debian/Ubuntu or install "
                           f"them first: sudo apt-get install {' '.join(HOST_PACKAGES)}")
    log(f"apt-get install {' '.join(HOST_PACKAGES)} (missing: {', '.join(missing)})")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-q"], "apt-get update", env=env)
    run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *HOST_PACKAGES],
        "apt-get install", env=env)
    for stack in stacks:
        emulator(stack)
    return True


def ensure_root(stack: Stack, cache: Path, mirror: str) -> tuple[Path, bool]:
    """The stack's unpacked root under ``cache``, built on first use; returns (root, built)."""
    root = cache / f"root-{stack.name}"
    want = {"suite": SUITE, "arch": stack.debian_arch, "include": list(stack.debs)}
    stamp = root / _STAMP
    if stamp.is_file() and json.loads(stamp.read_text()) == want:
        return root, False
    if os.geteuid() != 0:
        raise PiCheckError(f"building the {stack.name} root in {root} needs root (debootstrap); "
                           "run `make pi-check` as root or with sudo once, later runs reuse it")
    tmp = cache / f".root-{stack.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    debs = cache / "debs" / stack.name  # kept across rebuilds: debootstrap reuses valid files
    debs.mkdir(parents=True, exist_ok=True)
    log(f"{stack.name}: debootstrap --foreign {SUITE} ({', '.join(stack.debs)}), "
        f".debs cached in {debs}")
    run(["debootstrap", f"--arch={stack.debian_arch}", "--foreign", "--variant=minbase",
         f"--include={','.join(stack.debs)}", f"--cache-dir={debs.resolve()}", SUITE, tmp, mirror],
        f"debootstrap {stack.debian_arch}")
    archives = tmp / "var/cache/apt/archives"
    packages = sorted(archives.glob("*.deb"))
    log(f"{stack.name}: unpacking {len(packages)} packages with dpkg-deb -x")
    for deb in packages:
        run(["dpkg-deb", "-x", deb, tmp], f"dpkg-deb -x {deb.name}")
        deb.unlink()  # a copy of the cached file
    libdir = tmp / "usr/lib" / stack.triplet
    for link, target in stack.alternatives:  # what update-alternatives would do in the postinst
        (libdir / link).unlink(missing_ok=True)
        (libdir / link).symlink_to(target)
    (tmp / "proc").mkdir(exist_ok=True)
    (tmp / _STAMP).write_text(json.dumps(want))
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return root, True


def target_root(root: Path, key: str, cpuinfo: str, cache: Path) -> Path:
    """A hard-linked view of ``root`` with this Pi's /proc/cpuinfo, so targets can run in
    parallel."""
    view = cache / "targets" / key
    shutil.rmtree(view, ignore_errors=True)
    view.parent.mkdir(parents=True, exist_ok=True)
    run(["cp", "-al", root, view], f"linking the {key} root")
    info = view / "proc" / "cpuinfo"
    info.unlink(missing_ok=True)  # a new inode: the shared root's file stays untouched
    info.write_text(cpuinfo)  # qemu -L serves it instead of the host's x86 one
    return view
