"""Gradient vs local rule: per-layer alignment of SuperSpike and BPTT updates on one block.

Usage: ``python scripts/compare.py [--sizes 100 4 1] [--seed 0] [--rules R ...] [--out DIR]
[--gain 3.0] [--periods 1]``. Builds the timing task of the paper's Fig. 2 (every output unit
gets the same target) and draws weights ``gain x`` the reference initialisation, clipped to the
weight bounds and redrawn (up to 20 times) until every layer spikes in the block. From the
resting network it computes every rule's update on one block of ``periods`` pattern periods
(0.5 s each), prints the table and writes ``DIR/alignment.png``. Exit code 2 for an unknown
rule name.
"""

from __future__ import annotations

import argparse
import os
import sys

import jax
import jax.numpy as jnp

from ssjax.network import Network, init_weights, simulate
from ssjax.rules.compare import RULES, compare_rules, format_table, plot_alignment
from ssjax.tasks.timing import timing_task

MAX_DRAWS = 20


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 4, 1], help="N_in ... N_out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rules", nargs="+", default=list(RULES), help=f"any of {', '.join(RULES)}")
    ap.add_argument("--out", default="runs/compare", help="folder for alignment.png")
    ap.add_argument("--gain", type=float, default=3.0, help="factor on the initial weights")
    ap.add_argument("--periods", type=int, default=1, help="pattern periods in the block")
    args = ap.parse_args(argv)
    for r in args.rules:
        if r not in RULES:
            ap.error(f"unknown rule {r!r}; choose from {', '.join(RULES)}")
    if len(set(args.rules)) != len(args.rules) or len(args.rules) < 2:
        ap.error(f"--rules needs at least two distinct names, got {args.rules}")
    if len(args.sizes) < 2 or min(args.sizes) < 1 or args.periods < 1:
        ap.error("--sizes needs >= 2 positive integers and --periods must be >= 1")

    net = Network(tuple(args.sizes))
    k_task, k_w, k_fb = jax.random.split(jax.random.PRNGKey(args.seed), 3)
    task = timing_task(k_task, n_in=net.sizes[0], n_out=net.sizes[-1], dt=net.neuron.dt)
    inputs = jnp.tile(task.inputs, (args.periods, 1))
    targets = jnp.tile(task.targets, (args.periods, 1))
    # the output's few incoming weights decide by their signs alone whether it fires at all, so
    # redraw (same distribution) until every layer spikes: a silent layer makes a dull comparison
    for draw in range(MAX_DRAWS):
        weights = tuple(
            jnp.clip(args.gain * w, net.w_min, net.w_max)
            for w in init_weights(net, jax.random.fold_in(k_w, draw))
        )
        _, rec = simulate(net, weights, inputs)
        counts = [int(s.sum()) for s in rec.spikes]
        if min(counts) > 0:
            break
    print(
        f"network {net.sizes}, seed {args.seed}, gain {args.gain}, weight draw {draw}, block "
        f"{inputs.shape[0] * net.neuron.dt:g} s; spikes per layer: {counts}"
    )
    if min(counts) == 0:
        print(
            f"warning: a layer stayed silent in {MAX_DRAWS} weight draws; try a larger --gain",
            file=sys.stderr,
        )

    results = compare_rules(args.rules, net, weights, inputs, targets, key=k_fb)
    names = [
        f"{'output' if l == net.n_layers - 1 else f'hidden {l + 1}'} ({a}x{b})"
        for l, (a, b) in enumerate(zip(net.sizes[:-1], net.sizes[1:], strict=True))
    ]
    print(format_table(results, names))
    path = plot_alignment(results, os.path.join(args.out, "alignment.png"), names)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
