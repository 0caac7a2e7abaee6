"""The one table of emulated targets: which userland, which qemu CPU model, which backends.

A *stack* is one Debian userland plus the wheels installed into it; a *target* is a stack run
under the CPU model (and /proc/cpuinfo) of one Raspberry Pi. The 64-bit Pi 4 and Pi 5 share a stack.
"""

from __future__ import annotations

from dataclasses import dataclass

from checks.pi.common import PiCheckError


@dataclass(frozen=True)
class BackendInstall:
    """One runtime backend as a device installs it: `pip install mnist-edge[extra]`."""

    backend: str                  # the runtime's backend name (Classifier.load(backend=...))
    extra: str                    # runtime/pyproject.toml optional-dependency group to install


@dataclass(frozen=True)
class Stack:
    """A Debian bookworm userland for one architecture, and how wheels are chosen for it."""

    name: str                     # cache folder name
    debian_arch: str              # debootstrap --arch
    qemu: str                     # user-mode emulator binary (Debian's qemu-user-static)
    triplet: str                  # multiarch library folder
    platforms: tuple[str, ...]    # pip --platform tags, newest first (pip does not fall back
                                  # itself)
    debs: tuple[str, ...]         # debootstrap --include
    backends: tuple[BackendInstall, ...]
    debian_python: tuple[tuple[str, str], ...] = ()  # pip name -> Debian package used instead
    alternatives: tuple[tuple[str, str], ...] = ()  # symlinks a package's postinst would make


@dataclass(frozen=True)
class Target:
    """One emulated Raspberry Pi: a stack, a qemu CPU model and the /proc/cpuinfo it reports."""

    key: str
    title: str
    stack: Stack
    cpu: str                      # QEMU CPU model (the default `max` gives wrong int8 results)
    cpu_note: str
    cpuinfo: str


def _manylinux(arch: str, glibcs: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"manylinux_{g}_{arch}" for g in glibcs) + (f"manylinux2014_{arch}",
                                                             f"linux_{arch}")


ARM64 = Stack(
    name="arm64", debian_arch="arm64", qemu="qemu-aarch64-static", triplet="aarch64-linux-gnu",
    platforms=_manylinux("aarch64", ("2_36", "2_35", "2_34", "2_31", "2_28", "2_27", "2_17")),
    debs=("python3",),
    backends=(BackendInstall("litert", "litert"), BackendInstall("onnxruntime", "onnx")),
)

ARMHF = Stack(
    name="armhf", debian_arch="armhf", qemu="qemu-arm-static", triplet="arm-linux-gnueabihf",
    platforms=_manylinux("armv7l", ("2_36", "2_35", "2_34", "2_31", "2_28", "2_27", "2_17")),
    # PyPI has no armv7l wheel of numpy<2 (tflite-runtime 2.14 crashes under numpy 2) nor of
    # Pillow: like a Pi OS user, take Debian's (numpy 1.24.2, Pillow 9.4.0).
    debs=("python3", "python3-numpy", "python3-pil"),
    backends=(BackendInstall("tflite-runtime", "tflite"),),
    debian_python=(("numpy", "python3-numpy"), ("pillow", "python3-pil")),
    alternatives=(("libblas.so.3", "blas/libblas.so.3"),
                  ("liblapack.so.3", "lapack/liblapack.so.3")),
)


def _cpuinfo(cores: int, core: str, tail: str) -> str:
    return "\n".join(f"processor\t: {i}\n{core}" for i in range(cores)) + "\n" + tail


_A72_64 = ("BogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\n"
           "CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n")
_A76_64 = ("BogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics "
           "fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\n"
           "CPU architecture: 8\nCPU variant\t: 0x4\nCPU part\t: 0xd0b\nCPU revision\t: 1\n")
_A72_32 = ("model name\t: ARMv7 Processor rev 3 (v7l)\nBogoMIPS\t: 108.00\nFeatures\t: half thumb "
           "fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm crc32\n"
           "CPU implementer\t: 0x41\nCPU architecture: 7\nCPU variant\t: 0x0\nCPU part\t: 0xd08\n"
           "CPU revision\t: 3\n")
_PI4 = "Revision\t: c03111\nModel\t\t: Raspberry Pi 4 Model B Rev 1.1\n"
_PI5 = "Revision\t: d04170\nModel\t\t: Raspberry Pi 5 Model B Rev 1.0\n"

TARGETS: tuple[Target, ...] = (
    Target("pi4-arm64", "Raspberry Pi 4, 64-bit Raspberry Pi OS (bookworm arm64)", ARM64,
           "cortex-a72", "Cortex-A72, the Pi 4's core", _cpuinfo(4, _A72_64, _PI4)),
    Target("pi5-arm64", "Raspberry Pi 5, 64-bit Raspberry Pi OS (bookworm arm64)", ARM64,
           "cortex-a76", "Cortex-A76, the Pi 5's core", _cpuinfo(4, _A76_64, _PI5)),
    # qemu-arm has no Cortex-A72 model (it is an AArch64 core); cortex-a15 is ARMv7-A with NEON and
    # VFPv4, the instruction set Debian armhf and the armv7l wheel are built for, which a Pi 4
    # (or 3) running 32-bit Pi OS executes. `max` would also allow instructions a Pi lacks.
    Target("pi4-armhf", "Raspberry Pi 4 / 3, 32-bit Raspberry Pi OS (bookworm armhf)", ARMHF,
           "cortex-a15", "Cortex-A15 (ARMv7-A + NEON/VFPv4): qemu-arm has no Cortex-A72 model",
           _cpuinfo(4, _A72_32, "Hardware\t: BCM2711\n" + _PI4)),
)


def get_targets(keys: str) -> tuple[Target, ...]:
    """Targets named in a comma-separated list ("all" for every one), in table order."""
    wanted = [k.strip() for k in keys.split(",") if k.strip()]
    if wanted == ["all"]:
        return TARGETS
    known = {t.key for t in TARGETS}
    unknown = [k for k in wanted if k not in known]
    if unknown or not wanted:
        raise PiCheckError(f"unknown target {', '.join(unknown) or '(none)'}; choose from "
                           f"{', '.join(sorted(known))} or all")
    return tuple(t for t in TARGETS if t.key in wanted)
