"""Held-out-style evaluation of predict_files on hard, broad photo-like renders of MNIST digits.

Not a test (it takes a minute): renders N photos of MNIST test digits with common/photos.py's
``photo_sample`` (kind "hard": dark ink on paper or light on dark; gray/RGB/RGBA PNG and JPEG
q30-95; tinted inks and papers; paper texture; gradients, vignettes and cast shadows; table/scanner
bands at the page edges; Gaussian and salt-and-pepper noise; blur; thinner and thicker strokes;
rotations up to 10 degrees; faint ink; digit height 20-90% of a 64-400 px frame up to 2:1), runs
them through ``Classifier.predict_files`` and compares with the same digits clean, as drawn (ink
alone) and with a plain resize to 28x28, per variation.

    MNIST_DATA=path/to/mnist.npz .venv/bin/python runtime/tests/photo_eval.py \
        --artifacts artifacts --n 2000 --seed 2024 [--basic]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[2])]
from common import photos  # noqa: E402
from common.photo_score import by_tag, read_photos  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"),
                        help="artifacts folder, manifest.json, .tflite or .onnx")
    parser.add_argument("--data", type=Path,
                        default=Path(os.environ.get("MNIST_DATA")
                                     or Path.home() / ".keras" / "datasets" / "mnist.npz"),
                        help="mnist.npz holding x_test, y_test "
                             "(default: $MNIST_DATA, else Keras's cache)")
    parser.add_argument("--n", type=int, default=2000, help="number of digits to render")
    parser.add_argument("--seed", type=int, default=2024,
                        help="picks the digits and the variations")
    parser.add_argument("--basic", action="store_true",
                        help="render the tests' plain kind instead "
                             "(inverted, rescaled, off-centre, tinted, noised)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the rendered images in this folder")
    parser.add_argument("--json", type=Path, default=None,
                        help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    from mnist_edge import Classifier, preprocess_image

    with np.load(args.data) as npz:
        digits = photos.Digits(npz["x_test"], npz["y_test"].astype(np.int64), "test")
    clf = Classifier.load(args.artifacts)
    kind = "plain" if args.basic else "hard"
    samples = [photos.photo_sample(digits, args.seed, i, kind) for i in range(args.n)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        r = read_photos(clf, samples, digits, folder)

    drawn = np.stack([preprocess_image(s.ink()) for s in samples])
    tags = [s.tags for s in samples]
    failed = r.errors
    ok = {"clean": r.clean, "drawn": clf.predict(drawn).labels == r.labels,
          "photos": r.photos, "resize": r.resize}
    known = ok["clean"]
    summary = {
        "n": args.n, "seed": args.seed, "model": f"{clf.path} ({clf.backend}, {clf.precision})",
        "clean": float(known.mean()), "drawn": float(ok["drawn"].mean()),
        "photos": float(ok["photos"].mean()),
        "resize": float(ok["resize"].mean()),
        "photos_on_clean_correct": float(ok["photos"][known].mean()),
        "photos_over_clean": float(ok["photos"].mean() / known.mean()),
        "failed": len(failed), "ms_per_image": 1000 * r.seconds / args.n,
    }
    print(f"{args.n} renders (seed {args.seed}), model {summary['model']}")
    print(f"clean digits {summary['clean']:.2%}  as drawn (ink only) {summary['drawn']:.2%}  "
          f"photos via predict_files {summary['photos']:.2%} "
          f"({summary['photos_over_clean']:.2%} of clean; {summary['photos_on_clean_correct']:.2%} "
          f"of the digits read right when clean)  plain resize {summary['resize']:.2%}  "
          f"errors {len(failed)}  {summary['ms_per_image']:.1f} ms/image "
          f"(decode+preprocess+predict)")
    for path, error in failed[:5]:
        print(f"  failed: {path}: {error}")
    print(f"\n{'factor':<15} {'value':<18} {'n':>5} {'clean':>7} {'drawn':>7} "
          f"{'photos':>7} {'resize':>7}")
    ones = np.ones(args.n)
    table = by_tag(tags, {k: (v, ones) for k, v in ok.items()})
    rows = [(f, v, a.pop("n"), a) for f, values in sorted(table.items()) for v, a in values.items()]
    for factor, value, n, acc in rows:
        print(f"{factor:<15} {value:<18} {n:>5} {acc['clean']:>7.2%} {acc['drawn']:>7.2%} "
              f"{acc['photos']:>7.2%} {acc['resize']:>7.2%}")
    if args.json:
        summary["breakdown"] = [{"factor": f, "value": v, "n": n, **a} for f, v, n, a in rows]
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
