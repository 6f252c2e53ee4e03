"""Wall time per simulated second of ``simulate`` and of one BPTT period (issue: core engine).

Usage: ``python scripts/bench_simulate.py [--repeats 5]``. Prints a table; ratios within one run.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from ssjax import Network, bptt_grad, init_weights, simulate, simulate_stepwise
from ssjax.tasks.raster import frozen_poisson

DT = 1e-4
PERIOD = 0.5


def _time(fn, *args, repeats):
    jax.block_until_ready(fn(*args))  # compile
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t)
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; dt = 0.1 ms, 0.5 s periods")
    print(f"{'network':>14} {'seeds':>5} {'route':>9} {'wall s / sim s':>15} {'per seed':>10}")
    for sizes in [(100, 4, 1), (200, 256, 200)]:
        net = Network(sizes)
        for seeds in (1, 16):
            keys = jax.random.split(jax.random.PRNGKey(0), seeds)
            w = jax.vmap(lambda k, net=net: init_weights(net, k))(keys)
            x = jax.vmap(lambda k, n=sizes[0]: frozen_poisson(k, n, 5.0, PERIOD, DT))(keys)
            for name, sim in (("layer", simulate), ("step", simulate_stepwise)):
                f = jax.jit(jax.vmap(lambda w, x, net=net, sim=sim: sim(net, w, x)[1].spikes))
                t = _time(f, w, x, repeats=args.repeats)
                print(
                    f"{str(sizes):>14} {seeds:>5} {name:>9} {t / PERIOD:>15.5f} "
                    f"{t / PERIOD / seeds:>10.5f}"
                )
    net = Network((100, 4, 1))
    w = init_weights(net, jax.random.PRNGKey(1))
    x = frozen_poisson(jax.random.PRNGKey(2), 100, 5.0, PERIOD, DT)
    y = jnp.zeros((x.shape[0], 1)).at[jnp.array([830, 1660, 2490, 3320, 4150]), 0].set(1.0)
    g = jax.jit(lambda w: bptt_grad(net, w, x, y)[0])
    t = _time(g, w, repeats=args.repeats)
    print(f"BPTT gradient, one 0.5 s period of 100-4-1: {t * 1e3:.2f} ms")


if __name__ == "__main__":
    from ssjax.xla import configure_cpu_from_env

    configure_cpu_from_env()  # before JAX starts: the settings `ssjax train` runs under
    main()
