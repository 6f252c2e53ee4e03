"""Alignment of SuperSpike's update with BPTT's gradient in a network with a recurrent hidden layer.

SuperSpike's recurrent eligibility ignores the recurrent Jacobian
(ssjax.rules.superspike.reference); BPTT differentiates it. For several weight draws on the
timing task (100 inputs, 5 target spikes in 0.5 s), one block from a resting network: the
cosine and norm ratio (ssjax.analysis.alignment) per weight matrix, W[0] (input -> hidden),
W[1] (hidden -> output) and R (hidden -> hidden), against BPTT without (``bptt``) and with
(``bptt:reset``) the reset differentiated (for ALIF also the threshold's jumps). Neurons LIF or
ALIF (``--neuron alif``).

    python scripts/recurrent_alignment.py [--hidden 16] [--draws 8] [--scale 4] [--rec-scale 1]
        [--delay 1e-4] [--neuron lif]
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

from ssjax.analysis.alignment import alignment, rule_grads
from ssjax.network import Network, init_weights, simulate
from ssjax.neuron import LIFParams
from ssjax.neurons import ALIFParams
from ssjax.tasks.timing import timing_task


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--draws", type=int, default=8)
    ap.add_argument("--scale", type=float, default=4.0, help="weights x the default init")
    ap.add_argument("--delay", type=float, default=1e-4, help="recurrent delay (s)")
    ap.add_argument("--rec-scale", type=float, default=1.0, help="R x this (0: no recurrence)")
    ap.add_argument("--neuron", choices=("lif", "alif"), default="lif")
    args = ap.parse_args()
    neuron = ALIFParams() if args.neuron == "alif" else LIFParams()
    net = Network((100, args.hidden, 1), neuron, recurrent=(True,), recurrent_delay=args.delay)
    task = timing_task(jax.random.PRNGKey(0))
    x, y = task.inputs.astype(np.float32), task.targets.astype(np.float32)
    names = ("W[0] in->hid", "W[1] hid->out", "R hid->hid")
    pairs = [
        (f"superspike:{fb}", b) for fb in ("symmetric", "random") for b in ("bptt", "bptt:reset")
    ]
    res = {p: [] for p in pairs}
    rates = []
    for d in range(args.draws):
        w = tuple(args.scale * a for a in init_weights(net, jax.random.PRNGKey(100 + d)))
        w = w[:2] + (args.rec_scale * w[2],)
        rates.append([float(s.mean()) / net.neuron.dt for s in simulate(net, w, x)[1].spikes])
        kw = {"key": jax.random.PRNGKey(200 + d), "cfg_kwargs": {"method": "stepwise"}}
        grads = {r: rule_grads(r, net, w, x, y, **kw) for r in {r for p in pairs for r in p}}
        for a, b in pairs:
            al = alignment(grads[a], grads[b])
            res[(a, b)].append((np.asarray(al.cosine), np.asarray(al.norm_ratio)))
    r = np.array(rates)
    print(
        f"network 100-{args.hidden}-1, {args.neuron}, recurrent delay {args.delay} s, "
        f"{args.draws} weight draws x {args.scale}, R x {args.rec_scale}; rates (Hz) "
        f"hidden {r[:, 0].mean():.1f}, output {r[:, 1].mean():.1f}"
    )
    print("| pair | " + " | ".join(f"cos {n}" for n in names) + " | norm ratio R |")
    print("|---|" + "---|" * (len(names) + 1))
    for p, vals in res.items():
        cos = np.array([v[0] for v in vals])
        ratio = np.array([v[1] for v in vals])
        cells = [f"{cos[:, l].mean():.3f} +- {cos[:, l].std():.3f}" for l in range(len(names))]
        print(f"| {p[0]} vs {p[1]} | " + " | ".join(cells) + f" | {np.median(ratio[:, 2]):.3g} |")


if __name__ == "__main__":
    main()
