"""The checks beside the pipeline: parity, bench, reliability, pi and reader (make parity,
bench, reliability, pi-check, reader-report).

Each runs exported files through the runtime (``mnist_edge``); work that must run in another
Python (a venv with tflite-runtime, a fresh process for honest memory figures, an emulated Pi)
goes through the one child-process worker, ``checks/worker.py``. The handwriting photos that
the reader report and the Pi check both use are made by ``common/photos.py``; the small
trained and exported test models by ``checks/testmodels.py``. Build-time
code: run from the repository, never installed.
"""
