"""Reliability checks for mnist-edge: fuzzing, interrupted runs, reproducibility, load.

    python -m checks.reliability fuzz --cases 10000     # make fuzz
    python -m checks.reliability report                 # make reliability -> reports/reliability.md

The fuzz cases run in a child worker (checks/worker.py, cases.py) so that a crash of a native
interpreter is detected and counted instead of killing the run. Build-time tool: it is run
from the repository, never installed, and the worker imports only numpy and mnist_edge.
"""
