"""Command line: ``ssjax demo`` (more subcommands arrive with the trainer)."""

from __future__ import annotations

import argparse
import json
import sys


def _demo(args) -> int:
    from ssjax.demo import run_demo

    summary = run_demo(
        args.out, n_periods=args.periods, hidden=args.hidden, seed=args.seed, r0=args.r0
    )
    print(json.dumps(summary, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``ssjax`` argument parser."""
    p = argparse.ArgumentParser(prog="ssjax", description="SuperSpike in JAX")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="train the paper's 5-spike timing task with BPTT")
    d.add_argument("--out", default="runs/demo", help="output folder (PNG files)")
    d.add_argument("--periods", type=int, default=1000, help="0.5 s pattern periods to train")
    d.add_argument("--hidden", type=int, default=0, help="hidden units (0: 100 -> 1)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--r0", type=float, default=1e-3, help="RMaxProp learning rate")
    d.set_defaults(func=_demo)
    return p


def main(argv=None) -> int:
    """Entry point of the ``ssjax`` command."""
    args = build_parser().parse_args(argv)
    if getattr(args, "periods", 1) < 1:
        print("ssjax: error: --periods must be >= 1", file=sys.stderr)
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
