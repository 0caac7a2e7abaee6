"""The self-test: run every exported file of a folder on the golden set its export wrote, here.

    from mnist_edge.selftest import verify_folder
    for entry, result in verify_folder(Path("artifacts")):  # every file a backend here runs
        print(entry.key, result if isinstance(result, str) else result.summary())

The golden set, its rule and the comparison are in ``mnist_edge.golden`` (docs/self-test.md);
``Classifier.load(..., self_test=True)`` runs it on the loaded file only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mnist_edge.errors import MnistEdgeError
from mnist_edge.golden import (
    Golden,
    SelfTest,
    classifier_outputs,
    compare,
    expected_answers,
    gate_outputs,
    read_golden,
    reader_outputs,
)

if TYPE_CHECKING:
    from mnist_edge.manifest import FileEntry, Manifest


def verify_folder(path: Path, backend: str = "auto") -> list[tuple[FileEntry, SelfTest | str]]:
    """Self-test every file of an artifacts folder that an installed backend runs: (entry, its
    result, or why it was not run). Files that differ from the manifest are not run (their
    reason says why); ModelError when the folder has no golden set."""
    from mnist_edge import backends
    from mnist_edge.manifest import read_manifest

    manifest = read_manifest(path)
    golden = read_golden(manifest)
    done: list[tuple[FileEntry, SelfTest | str]] = []
    for entry in manifest.all_files:
        names = [backend] if backend != "auto" else backends.available(entry.format)
        names = [n for n in names if backends.BACKENDS[n].format == entry.format]
        usable = [n for n in names if backends.unusable_reason(n) is None]
        if not usable:
            done.append((entry, f"not run: no installed backend runs {entry.format} files"
                         if backend == "auto" else f"not run: {backend} runs no {entry.format} "
                         "files" if not names else f"not run: {backends.unusable_reason(backend)}"))
            continue
        try:
            done.append((entry, run_entry(manifest, entry, usable[0], golden)))
        except MnistEdgeError as exc:  # the interpreter refused or failed the file here
            rule = golden.rules.get(entry.key)
            done.append((entry, SelfTest(entry.key, entry.path.name, usable[0], 0, 0, 0.0,
                                         rule.max_diff if rule else 0.0,
                                         rule.unit if rule else "", str(exc))))
    return done


def run_entry(manifest: Manifest, entry: FileEntry, backend: str, golden: Golden) -> SelfTest:
    """Load ``entry``'s file on ``backend`` (size and sha256 checked) and self-test it."""
    return compare(entry, backend, *outputs_of(manifest, entry, backend, golden), golden,
                   expected_answers(entry, manifest, golden))


def outputs_of(manifest: Manifest, entry: FileEntry, backend: str, golden: Golden
               ) -> tuple[np.ndarray, list[Any]]:
    """``entry``'s file loaded on ``backend`` (size and sha256 checked) and run on the golden
    inputs of its section: (its outputs, its answers)."""
    from mnist_edge.classifier import Classifier
    from mnist_edge.linereader import LineReader
    from mnist_edge.loading import load_entry

    loaded = load_entry(manifest, entry, backend)
    if manifest.reader is not None and entry in manifest.reader.files:
        return reader_outputs(LineReader(loaded, manifest.reader), golden)
    if manifest.gate is not None and entry in manifest.gate.files:
        section = manifest.gate
        gate = Classifier(loaded.backend, loaded.path, loaded.precision, manifest, entry,
                          classes=len(section.classes))
        return gate_outputs(gate, section.threshold, section.classes.index("digit"), golden)
    clf = Classifier(loaded.backend, loaded.path, loaded.precision, manifest, entry)
    return classifier_outputs(clf, golden)
