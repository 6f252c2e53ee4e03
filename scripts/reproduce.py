"""Reproduce one of the paper's figures: the same as ``ssjax reproduce`` (see
ssjax/experiment/reproduce.py).

Usage::

    python scripts/reproduce.py FIG [--quick] [--seeds N] [--duration S] [--out DIR]
        [--no-progress] [--list]

FIG: fig1, fig2, fig4, fig5, fig6 (Figs. 6-7), fig8, oxford, randman. Writes
``<out>/<fig>[_quick]/<fig>.md``, ``.json`` and ``.png`` (default out: runs/reproduce).
"""

import sys

from ssjax.experiment.cli import main

if __name__ == "__main__":
    sys.exit(main(["reproduce", *sys.argv[1:]]))
