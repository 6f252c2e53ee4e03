"""Where one SuperSpike block's time goes: its parts timed one by one, on the Oxford network.

Usage: ``python scripts/profile_superspike.py [--sizes 200 256 200] [--repeats 7]``. One block
of 0.5 s (5000 steps of 0.1 ms), the dense route, weights of the reference initialisation x3 (so
that every layer spikes). Each part is compiled alone and timed (best of ``--repeats``), so the
parts add up to more than the fused block; the table shows what bounds the block: the sequential
scans (one loop iteration per step, with and without writing the per-step record) against the
matrix products.
"""

from __future__ import annotations

import argparse
import resource

import jax
import jax.numpy as jnp
from bench_superspike import _time  # scripts/ is on sys.path when run as a script

from ssjax.filters import double_exp_filter
from ssjax.network import Network, init_weights, input_currents, simulate
from ssjax.neuron import lif_init, lif_step
from ssjax.rules.superspike import (
    SuperSpikeConfig,
    init_rule_state,
    superspike_grads,
)
from ssjax.rules.superspike._adjoint import psp_filter
from ssjax.tasks.raster import frozen_poisson

DT = 1e-4


def _faults(f, args) -> int:
    """Minor page faults of one call (fresh pages of XLA's temporary buffers)."""
    jax.block_until_ready(f(*args))
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    jax.block_until_ready(f(*args))
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0


def _lif(params, record: bool):
    def run(cur):
        def step(st, xt):
            st, s, u = lif_step(params, st, xt)
            return st, ((s, u) if record else None)

        st, out = jax.lax.scan(step, lif_init(params, cur.shape[1:], cur.dtype), cur)
        return out if record else st.u

    return jax.jit(run)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[200, 256, 200])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    sizes, rep = tuple(args.sizes), args.repeats
    net = Network(sizes)
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
    w = tuple(jnp.clip(3 * a, -0.1, 0.1) for a in init_weights(net, k1))
    x = frozen_poisson(k2, sizes[0], 5.0, 0.5, DT)
    y = frozen_poisson(k3, sizes[-1], 5.0, 0.5, DT)
    cfg = SuperSpikeConfig(method="dense")
    st = init_rule_state(net, cfg)
    k = x.shape[0]
    rows = []
    block = jax.jit(lambda w, x, y, st: superspike_grads(net, cfg, w, x, y, st)[:2])
    rows.append(("whole block (dense route)", _time(block, (w, x, y, st), rep)))
    sim = jax.jit(lambda w, x, st: simulate(net, w, x, st.net))
    rows.append(("  simulate (all layers)", _time(sim, (w, x, st), rep)))
    _, rec = sim(w, x, st)
    pres = (x, *rec.spikes[:-1])
    for l, n in enumerate(sizes[1:]):
        cur = input_currents(pres[l], w[l])
        rows.append(
            (
                f"    layer {l + 1}: input currents {k}x{sizes[l]}x{n}",
                _time(jax.jit(input_currents), (pres[l], w[l]), rep),
            )
        )
        rows.append(
            (
                f"    layer {l + 1}: LIF scan of {n}, with record",
                _time(_lif(net.neuron, True), (cur,), rep),
            )
        )
        rows.append(
            (
                f"    layer {l + 1}: LIF scan of {n}, no record",
                _time(_lif(net.neuron, False), (cur,), rep),
            )
        )
    for l, n in enumerate(sizes[:-1]):
        z0 = (jnp.zeros(n), jnp.zeros(n))
        psp = jax.jit(lambda s, z0: psp_filter(net.neuron, s, z0)[0])
        rows.append((f"  PSP trace scan of {n}", _time(psp, (pres[l], z0), rep)))
    for n in sizes[1:]:
        e = jnp.zeros((k, n))
        rev = jax.jit(lambda e: double_exp_filter(e, cfg.tau_rise, cfg.tau_decay, DT, reverse=True))
        rows.append((f"  reverse error filter scan of {n}", _time(rev, (e,), rep)))
    mm = jax.jit(lambda a, b: jnp.matmul(a.T, b, precision=jax.lax.Precision.HIGHEST))
    for n_pre, n_post in zip(sizes[:-1], sizes[1:], strict=True):
        a, b = jnp.zeros((k, n_pre)), jnp.zeros((k, 3 * n_post))
        rows.append(
            (f"  products z^T [h, elig_d, elig_r] {n_pre}x{k}x{3 * n_post}", _time(mm, (a, b), rep))
        )
    print(
        f"jax {jax.__version__} on {jax.devices()[0].platform}; network {sizes}; one block "
        f"of {k} steps; best of {rep}; ms"
    )
    for name, t in rows:
        print(f"{name:<62} {1e3 * t:8.2f}")
    mem = block.lower(w, x, y, st).compile().memory_analysis()
    print(
        f"whole block: {mem.temp_size_in_bytes / 2**20:.1f} MB of temporaries, "
        f"{_faults(block, (w, x, y, st))} minor page faults per call"
    )


if __name__ == "__main__":
    from ssjax.xla import configure_cpu_from_env

    configure_cpu_from_env()  # before JAX starts: the settings `ssjax train` runs under
    main()
