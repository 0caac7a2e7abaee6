"""The flags every check over an artifacts folder shares (parity, bench)."""

from __future__ import annotations

from dataclasses import dataclass

from common.flags import option


@dataclass
class CheckOptions:
    """Where the export, the test images and the reports are, and the tflite-runtime venv."""

    artifacts: str = option("artifacts", "folder with model.keras and manifest.json (make train "
                                         "export)")
    data: str | None = option(None, "npz or IDX folder of the dataset the model was trained on "
                                    "(default: the one the manifest records, else $MNIST_DATA, "
                                    "else Keras's MNIST download); another is refused")
    out: str = option("reports", "folder for the reports")
    tflite_python: str = option(".venv-tflite/bin/python", "Python of the venv with tflite-runtime "
                                "(numpy<2), used for the backend this one cannot load")
