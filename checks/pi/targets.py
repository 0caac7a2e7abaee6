"""The one table of emulated targets: which userland, which qemu CPU model, which backends.

A *stack* is one Debian userland plus the wheels installed into it, or the host's own device venv
(``HostStack``); a *target* is a stack run under one CPU model: the model (and /proc/cpuinfo) of a
Raspberry Pi, or an older x86 instruction set than the host's. The 64-bit Pi 4 and Pi 5 share a
stack, and so do the x86 models.
"""

from __future__ import annotations

from dataclasses import dataclass

from checks.pi.common import PiCheckError
from mnist_edge.formats import FORMATS, TFLITE_INT8


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
class HostStack:
    """The host's own userland under another CPU model of its architecture: no root to build,
    qemu runs the device venv's Python (``make runtime-venvs``) from the host's files."""

    name: str
    qemu: str                     # user-mode emulator binary of the host's architecture
    python: str                   # the venv's Python, relative to the repository
    backends: tuple[BackendInstall, ...]


@dataclass(frozen=True)
class Target:
    """One emulated CPU: a stack, a qemu CPU model and the /proc/cpuinfo it reports."""

    key: str
    title: str
    stack: Stack | HostStack
    cpu: str                      # QEMU CPU model (the default `max` gives wrong int8 results)
    cpu_note: str
    cpuinfo: str                  # "" for a HostStack: qemu-x86_64 shows the host's
    lacks: tuple[str, ...] = ()   # features numpy must not see (proof that it runs emulated)
    only: tuple[str, ...] = ()    # the files it runs (default: every file of the manifest)
    max_images: int | None = None  # at most this many test images per file
    informational: bool = False   # shown in the report, never fails the check

    @property
    def isa(self) -> bool:
        """An instruction-set target: each classifier file against Keras and its float file,
        a backend refusing the CPU reported as unsupported."""
        return isinstance(self.stack, HostStack)


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


# The x86 CPU models run what an x86 user installs (ai-edge-litert and onnxruntime), from the host.
X86_64 = HostStack(name="x86-64", qemu="qemu-x86_64-static", python=".venv-runtime/bin/python",
                   backends=(BackendInstall("litert", "litert"),
                             BackendInstall("onnxruntime", "onnx")))
CLASSIFIER_KEYS = tuple(f.key for f in FORMATS)  # the digit classifier's files, not the gate's


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
    # onnxruntime and XNNPACK choose their int8/float kernels by CPUID: these models take the
    # paths of CPUs without AVX-512/VNNI, which most x86 laptops and desktops are.
    Target("x86-haswell", "x86-64 with AVX2 and FMA, no AVX-512 or VNNI (Intel Haswell to "
           "Comet Lake, AMD Zen 1-3)", X86_64, "Haswell", "AVX2 + FMA, no AVX-512/VNNI", "",
           lacks=("AVX512F", "AVX512VNNI"), only=CLASSIFIER_KEYS),
    Target("x86-nehalem", "x86-64 with SSE4.2, no AVX (x86-64-v2: Intel Nehalem, 2008, on)",
           X86_64, "Nehalem", "SSE4.2, no AVX", "", lacks=("AVX", "AVX2"), only=CLASSIFIER_KEYS),
    # qemu's default ARM model: ai-edge-litert's int8 path answered 11.3% right under qemu 7.2.
    # Shown in the report, never failing the check: a newer qemu may fix it.
    Target("arm64-max", "64-bit ARM under qemu's default CPU model (information only)", ARM64,
           "max", "qemu's default: every instruction qemu implements", _cpuinfo(4, _A76_64, _PI5),
           only=(TFLITE_INT8.key,), max_images=1000, informational=True),
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
