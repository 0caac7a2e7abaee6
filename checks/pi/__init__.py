"""make pi-check: run the mnist-edge runtime on emulated Raspberry Pi userlands and compare with
the host; run it on older x86 CPU models and compare with Keras.

    .venv/bin/python -m checks.pi                       # every target, artifacts/, $MNIST_DATA
    .venv/bin/python -m checks.pi --targets pi5-arm64 --images 1000
    .venv/bin/python -m checks.pi --help

Each target is a Debian bookworm userland (what Raspberry Pi OS is built on: Python 3.11, glibc
2.36) unpacked from .deb files into `.cache/pi/`, with the runtime wheel and one backend installed
from the host by pip for the ARM platform; `qemu-user-static` runs its Python under the CPU model of
the Pi. Nothing ARM runs during setup (no chroot, no pip under emulation). The x86 targets run the
host's own device venv under `qemu-x86_64-static -cpu Haswell|Nehalem` (checks/pi/isa.py).
"""
