"""The number reader's evaluation: seeded photo sets made from MNIST digits, and the report.

    python -m checks.reader                              # make reader-report -> reports/reader.*
    python -m checks.reader --n-numbers 200 --n-singles 400 --out /tmp/reader
    python -m checks.reader --split train --save-sets /tmp/reader-sets   # photos for tuning

Numbers of 2-6 digits (touching, thin, broken, slanted, mixed heights, on photo-like paper) go
through ``Classifier.read``; single digits with thin or broken strokes through
``Classifier.predict_files``. Sets for the report are made from MNIST's test digits, sets for
tuning from its training digits (``sets.py``). Method and figures: docs/reader.md.
"""
