"""Which dataset a model learned from: its name, class names and kind of images, recorded by
training (``metrics.json``, then the manifest's ``dataset``) so that export and the checks verify
the model on that same dataset.

    ds = load_mnist("/usr/share/datasets/fashion-mnist")
    info = identify(ds)                  # Dataset(name="Fashion-MNIST", kind="items", ...)
    ds = load_for(info.as_dict(), None, "artifacts/model.keras")   # the same data, or DataError

A dataset is recognised by its test set (images and labels, sha256): MNIST and Fashion-MNIST are
known wherever their files lie. Class names come from, first to last: ``--labels FILE``, a
``labels.txt`` in the data's folder (one name per line, in label order), the known dataset's, or
'0'..'9'. The kind says which photo path the runtime applies: ``digits`` (handwritten digits: the
MNIST normalisation, the number reader and the "no digit" gate) or ``items`` (any other 28x28
grayscale picture: the generic path). Known datasets give theirs; any other is ``items`` unless
training is told ``--kind digits``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from common.data import NUM_CLASSES, DataError, Mnist, load_mnist
from mnist_edge.images import not_a_file

KINDS = ("digits", "items")
LABELS_FILE = "labels.txt"
MAX_LABEL_CHARS = 64
MAX_LABELS_BYTES = 64 * 1024
DIGITS = tuple(str(d) for d in range(NUM_CLASSES))


@dataclass(frozen=True)
class Known:
    name: str
    kind: str
    classes: tuple[str, ...]


# sha256 of the test images' bytes followed by the test labels' (uint8), as fingerprint computes
MNIST_SHA256 = "c3f9adf9c66efb572b1f9326c3a511b45910c7173b97be66ceceeeeaef6b802b"
FASHION_SHA256 = "9f1ec356a747bfe4ebab3cfb722d3694c9ca737e2570f6f90cf31d7b6fd689d4"
KNOWN = {
    MNIST_SHA256: Known("MNIST", "digits", DIGITS),
    FASHION_SHA256: Known("Fashion-MNIST", "items", (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
        "Bag", "Ankle boot")),
}


@dataclass(frozen=True)
class Dataset:
    """A dataset's identity as training records it."""

    name: str                  # "MNIST", "Fashion-MNIST", or the data's folder or file name
    kind: str                  # one of KINDS
    classes: tuple[str, ...]   # the class names, in label order
    source: str                # where it was read from
    test_sha256: str           # what identifies it: see fingerprint

    def as_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "classes": list(self.classes),
                "source": self.source, "test_sha256": self.test_sha256}


def fingerprint(ds: Mnist) -> str:
    """Hex sha256 of the test images, then the test labels (uint8): a dataset's fingerprint."""
    digest = hashlib.sha256(ds.x_test.tobytes())
    digest.update(ds.y_test.astype("uint8").tobytes())
    return digest.hexdigest()


def identify(ds: Mnist, labels: str | os.PathLike | None = None, kind: str | None = None
             ) -> Dataset:
    """The identity of ``ds``: class names from ``labels`` (a file, one name per line), else its
    folder's labels.txt, else the known dataset's, else '0'..'9'; ``kind`` overrides the known
    dataset's (an unknown one is "items")."""
    sha = fingerprint(ds)
    known = KNOWN.get(sha)
    if kind is not None and kind not in KINDS:
        raise DataError(f"--kind {kind!r}: choose one of {', '.join(KINDS)}")
    beside = _labels_beside(Path(ds.source))
    if labels is not None:
        classes = read_labels(Path(labels))
    elif beside is not None:
        classes = read_labels(beside)
    else:
        classes = known.classes if known else DIGITS
    source = Path(ds.source)
    name = known.name if known else (source.stem if source.is_file() else source.name)
    return Dataset(name, kind or (known.kind if known else "items"), classes,
                   str(source.resolve()), sha)


def _labels_beside(source: Path) -> Path | None:
    """The labels.txt of the data's folder (an IDX folder, or the folder of an npz file)."""
    folder = source if source.is_dir() else source.parent
    path = folder / LABELS_FILE
    return path if path.is_file() else None


def read_labels(path: Path) -> tuple[str, ...]:
    """Class names from a text file: one per line, in label order, exactly NUM_CLASSES of them
    (blank lines at the end ignored), each unique, 1..MAX_LABEL_CHARS characters."""
    try:
        what = not_a_file(os.stat(path).st_mode)  # stat, not open: a FIFO would block
        if what is not None:
            raise DataError(f"{path}: is {what}, not a file; pass a text file of the "
                            f"{NUM_CLASSES} class names")
        with open(path, "rb") as fh:
            data = fh.read(MAX_LABELS_BYTES + 1)
    except OSError as exc:
        raise DataError(f"{path}: cannot read the class names ({exc.strerror or exc})") from None
    if len(data) > MAX_LABELS_BYTES:
        raise DataError(f"{path}: larger than {MAX_LABELS_BYTES // 1024} KB; a labels file holds "
                        f"{NUM_CLASSES} class names, one per line")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); write the "
                        f"{NUM_CLASSES} class names as UTF-8, one per line") from None
    names = [line.strip() for line in text.splitlines()]
    while names and not names[-1]:
        names.pop()
    problem = None
    if len(names) != NUM_CLASSES:
        problem = f"holds {len(names)} lines, expected {NUM_CLASSES} class names"
    elif not all(names):
        problem = f"line {names.index('') + 1} is empty"
    elif len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        problem = f"{twice!r} is named twice"
    elif any(len(n) > MAX_LABEL_CHARS or not n.isprintable() for n in names):
        bad = next(n for n in names if len(n) > MAX_LABEL_CHARS or not n.isprintable())
        problem = (f"{bad[:20]!r}... is longer than {MAX_LABEL_CHARS} characters"
                   if len(bad) > MAX_LABEL_CHARS else f"{bad!r} holds a control character")
    if problem:
        raise DataError(f"{path}: {problem}; a labels file gives the {NUM_CLASSES} class names "
                        "in label order (0 first), one per line")
    return tuple(names)


def describe(record: dict) -> str:
    """'Fashion-MNIST (/usr/share/datasets/fashion-mnist)' for a recorded dataset."""
    return f"{record.get('name') or 'a dataset'} ({record.get('source') or 'unknown source'})"


def load_for(record: dict | None, data: str | os.PathLike | None, what: str) -> Mnist:
    """The dataset ``what`` (a model, an export) was trained on, as ``record`` (a recorded
    Dataset.as_dict(); None for models trained before datasets were recorded: MNIST) says.

    ``data`` given: that dataset, refused (DataError) unless it is the recorded one. Else the
    recorded source when it is on this machine, else $MNIST_DATA or the MNIST download when the
    model was trained on MNIST; a model trained on another dataset whose files are not here
    needs ``data``.
    """
    sha = record.get("test_sha256") if isinstance(record, dict) else None
    if not isinstance(sha, str):
        return load_mnist(data)
    assert record is not None
    if data:
        ds = load_mnist(data)
    else:
        source = record.get("source")
        if isinstance(source, str) and source and os.path.exists(source):
            ds = load_mnist(source)
        elif sha == MNIST_SHA256:
            ds = load_mnist(None)
        else:
            raise DataError(f"{what} was trained on {describe(record)}, which is not on this "
                            "machine; pass --data with that dataset")
    found = fingerprint(ds)
    if found != sha:
        named = KNOWN[found].name if found in KNOWN else "another dataset"
        raise DataError(f"{what} was trained on {describe(record)}, but {ds.source} holds "
                        f"{named}; pass --data with the dataset it was trained on, or leave "
                        "--data out")
    return ds


def recorded(metrics: dict | None, where: str) -> dict | None:
    """The ``dataset`` a training's metrics (or a manifest) record, checked; None when absent
    (a model trained before datasets were recorded: MNIST digits)."""
    record = metrics.get("dataset") if isinstance(metrics, dict) else None
    if record is None:
        return None
    classes = record.get("classes") if isinstance(record, dict) else None
    if not (isinstance(record, dict) and isinstance(record.get("test_sha256"), str)
            and isinstance(record.get("name"), str) and record.get("kind") in KINDS
            and isinstance(classes, list) and len(classes) == NUM_CLASSES
            and all(isinstance(c, str) and c for c in classes)):
        raise DataError(f"{where}: its dataset record is not one training writes (name, kind "
                        f"{' or '.join(KINDS)}, {NUM_CLASSES} class names, test_sha256); train "
                        "again")
    return record


def dataset_of(manifest: dict) -> dict:
    """The name and kind of the dataset a manifest's model was trained on, for a report (MNIST
    digits when the manifest does not say)."""
    section = manifest.get("dataset")
    if isinstance(section, dict):
        return {"name": section.get("name"), "kind": section.get("kind")}
    return {"name": "MNIST", "kind": "digits"}
