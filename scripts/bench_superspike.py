"""SuperSpike block cost: per-step vs blocked (dense, event-driven) vs a BPTT block; memory.

Usage: ``python scripts/bench_superspike.py [--repeats 3]``. One 0.5 s block (dt = 0.1 ms) of
the paper's networks, weights scaled so that every layer spikes; times are the best of
``--repeats`` after compilation; peak memory is XLA's compiled temp + output allocation.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from ssjax.network import Network, init_weights
from ssjax.rules.bptt import bptt_grad
from ssjax.rules.superspike import SuperSpikeConfig, init_rule_state, superspike_grads
from ssjax.tasks.raster import frozen_poisson

DT = 1e-4


def _problem(sizes, seconds, key=0):
    net = Network(sizes)
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(key), 3)
    w = tuple(jnp.clip(3 * a, -0.1, 0.1) for a in init_weights(net, k1))
    x = frozen_poisson(k2, sizes[0], 5.0, seconds, DT)
    y = frozen_poisson(k3, sizes[-1], 5.0, seconds, DT)
    return net, w, x, y


def _fn(kind, net, cfg):
    if kind == "bptt":
        return jax.jit(lambda w, x, y, st: bptt_grad(net, w, x, y, st.net, st.err)[0])
    return jax.jit(lambda w, x, y, st: superspike_grads(net, cfg, w, x, y, st)[0])


def _time(f, args, repeats):
    jax.block_until_ready(f(*args))
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(f(*args))
        best = min(best, time.perf_counter() - t)
    return best


def _peak_mb(f, args):
    m = f.lower(*args).compile().memory_analysis()
    return (m.temp_size_in_bytes + m.output_size_in_bytes) / 2**20


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; one 0.5 s block, dt 0.1 ms")
    print(f"{'network':>15} {'route':>9} {'s/block':>9} {'x step':>7} {'vs bptt':>8}")
    for sizes in [(100, 4, 1), (200, 256, 200)]:
        net, w, x, y = _problem(sizes, 0.5)
        times = {}
        for kind in ("stepwise", "dense", "event", "bptt"):
            cfg = SuperSpikeConfig(method=kind if kind != "bptt" else "dense", max_spikes=2048)
            st = init_rule_state(net, cfg)
            times[kind] = _time(_fn(kind, net, cfg), (w, x, y, st), args.repeats)
        for kind, t in times.items():
            print(
                f"{str(sizes):>15} {kind:>9} {t:>9.4f} {times['stepwise'] / t:>7.1f} "
                f"{t / times['bptt']:>8.2f}"
            )
    print("\npeak memory (MB) of one block vs block length, 200-256-200")
    print(f"{'block s':>8} {'dense':>8} {'event':>8} {'stepwise':>9} {'bptt':>8}")
    for seconds in (0.5, 2.0, 8.0):
        net, w, x, y = _problem((200, 256, 200), seconds)
        row = []
        for kind in ("dense", "event", "stepwise", "bptt"):
            cfg = SuperSpikeConfig(method=kind if kind != "bptt" else "dense", max_spikes=2048)
            row.append(_peak_mb(_fn(kind, net, cfg), (w, x, y, init_rule_state(net, cfg))))
        print(f"{seconds:>8} " + " ".join(f"{v:>8.1f}" for v in row))


if __name__ == "__main__":
    from ssjax.xla import configure_cpu_from_env

    configure_cpu_from_env()  # before JAX starts: the settings `ssjax train` runs under
    main()
