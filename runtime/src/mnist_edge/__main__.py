"""``python -m mnist_edge`` runs the CLI."""

import sys

from mnist_edge.cli import main

sys.exit(main())
