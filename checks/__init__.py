"""The checks beside the pipeline: parity, bench, reliability and pi (make parity, bench,
reliability, pi-check).

Each runs exported files through the runtime (``mnist_edge``); work that must run in another
Python (a venv with tflite-runtime, a fresh process for honest memory figures, an emulated Pi)
goes through the one child-process worker, ``checks/worker.py``. Build-time code: run from the
repository, never installed.
"""
