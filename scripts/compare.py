"""Gradient vs local rule on one block (same as ``ssjax compare``); see ``--help``."""

import sys

from ssjax.experiment.cli import main

if __name__ == "__main__":
    sys.exit(main(["compare", *sys.argv[1:]]))
