"""Workstation benchmark: every exported file x backend x threads next to the usual baselines.

    python -m checks.bench --artifacts artifacts --out reports         # make bench
    python -m checks.bench --quick                                     # a short run for development

Writes reports/bench.md, bench.json and bench.png. The device-side figures come from
``mnist-edge bench`` (runtime/src/mnist_edge/bench.py), run in a fresh process per configuration.
"""
