"""Suite ``bptt``: one surrogate-gradient BPTT training step on an SHD-like workload.

Workload (same for every implementation): ``n_in`` = 700 Bernoulli(0.02) input trains ->
``hidden`` current-based LIF neurons (tau_syn 5 ms, tau_mem 10 ms, dt 1 ms, no refractory
period, reset to rest, reset not differentiated) -> 20 leaky-integrator readouts (non-spiking,
``v[t] = exp(-dt / 10 ms) v[t-1] + (s[t] @ W_out)[t]``), ``T`` steps, batch 64; loss: cross-entropy
of the readout's maximum over time; optimiser: Adam (optax, lr 1e-3). Spike surrogate: the
SuperSpike fast sigmoid ``(1 + beta |U - theta|)^-2`` with beta = 1/mV (dimensionless slope 10
with the 10 mV threshold distance used by the peers). In every implementation the input
projection ``[T*B, 700] @ [700, H]`` is one matrix product before the time loop.

Implementations here: ``ssjax`` (``ssjax.network.simulate`` with ``LIFParams(dt=1e-3)``, the
surrogate spike of ``ssjax.spike``, the readout as ``ssjax.filters.exp_filter``), ``plain-jax``
(an independent ``lax.scan`` + ``custom_vjp`` spike written below), ``matmul-bound`` (only the
step's dense matrix products: the two forward products and their four backward products, in
one jitted function); peers in :mod:`benchmarks.peers`.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks.timing import time_jax
from ssjax.filters import exp_filter
from ssjax.network import Network, simulate
from ssjax.neuron import LIFParams

THETA, U_REST, U_RESET = -50e-3, -60e-3, -60e-3  # V (ssjax defaults, SUPERSPIKE.md 1)
BETA = 1000.0  # surrogate steepness, 1/V


@dataclasses.dataclass(frozen=True)
class Workload:
    """Sizes and constants of the SHD-like step (hashable)."""

    name: str = "shd"
    steps: int = 100
    batch: int = 64
    n_in: int = 700
    hidden: int = 256
    n_out: int = 20
    p_in: float = 0.02
    dt: float = 1e-3
    tau_syn: float = 5e-3
    tau_mem: float = 10e-3
    tau_out: float = 10e-3
    lr: float = 1e-3
    w0: float = 0.1  # input weights ~ N(0, (w0 / sqrt(n_in))^2) V: hidden rate ~ 0.045 / step

    def sizes(self) -> dict:
        """The workload's sizes, as stored in every record."""
        return {
            "workload": self.name,
            "T": self.steps,
            "batch": self.batch,
            "n_in": self.n_in,
            "hidden": self.hidden,
            "n_out": self.n_out,
        }


def workloads(quick: bool) -> list[Workload]:
    """The standard (T 100, H 256) and long (T 500, H 512) variants; shortened with ``quick``."""
    if quick:
        return [Workload("shd", steps=20), Workload("shd-long", steps=40, hidden=512)]
    return [Workload("shd"), Workload("shd-long", steps=500, hidden=512)]


def make_data(wl: Workload, seed: int = 0):
    """``(x [T, B, n_in] float32 0/1, y [B] int32, (w_in [n_in, H] V, w_out [H, n_out]))``."""
    kx, ky, k1, k2 = jax.random.split(jax.random.PRNGKey(seed), 4)
    x = jax.random.bernoulli(kx, wl.p_in, (wl.steps, wl.batch, wl.n_in)).astype(jnp.float32)
    y = jax.random.randint(ky, (wl.batch,), 0, wl.n_out, jnp.int32)
    w_in = jax.random.normal(k1, (wl.n_in, wl.hidden)) * (wl.w0 / math.sqrt(wl.n_in))
    w_out = jax.random.normal(k2, (wl.hidden, wl.n_out)) / math.sqrt(wl.hidden)
    return x, y, (w_in, w_out)


def cross_entropy(v: jax.Array, y: jax.Array) -> jax.Array:
    """Mean cross-entropy of the readout's maximum over time (``v``: ``[T, B, n_out]``)."""
    return optax.softmax_cross_entropy_with_integer_labels(jnp.max(v, axis=0), y).mean()


# ----------------------------------------------------------------------------- ssjax
def ssjax_network(wl: Workload) -> Network:
    """The hidden layer as an ssjax network: 700 -> H LIF, dt 1 ms, no refractory period."""
    neuron = LIFParams(dt=wl.dt, tau_syn=wl.tau_syn, tau_mem=wl.tau_mem, tau_ref=0.0)
    return Network((wl.n_in, wl.hidden), neuron=neuron)


def ssjax_readout(params, x, wl: Workload):
    """``(readout potentials [T, B, n_out], hidden spikes [T, B, H])`` from ssjax's pieces."""
    w_in, w_out = params
    _, rec = simulate(ssjax_network(wl), (w_in,), x)
    s = rec.spikes[0]
    v, _ = exp_filter(jnp.matmul(s, w_out), wl.tau_out, wl.dt)
    return v, s


def ssjax_loss(params, x, y, wl: Workload):
    """``(loss, hidden spike rate per step)`` built from ssjax's pieces."""
    v, s = ssjax_readout(params, x, wl)
    return cross_entropy(v, y), jnp.mean(s)


# ------------------------------------------------------------------------- plain JAX
@jax.custom_vjp
def _spike(v):
    return (v > 0).astype(v.dtype)


def _spike_fwd(v):
    return _spike(v), v


def _spike_bwd(v, g):
    return (g / jnp.square(1.0 + BETA * jnp.abs(v)),)


_spike.defvjp(_spike_fwd, _spike_bwd)


def plain_loss(params, x, y, wl: Workload):
    """The same model written directly: Euler membrane, exact synaptic decay, detached reset."""
    w_in, w_out = params
    k = wl.dt / wl.tau_mem
    a_syn = math.exp(-wl.dt / wl.tau_syn)
    a_out = math.exp(-wl.dt / wl.tau_out)
    cur = jnp.matmul(x, w_in)  # [T, B, H]

    def lif(carry, c):
        u, i = carry
        i = i + c
        u = U_REST + (1.0 - k) * (u - U_REST) + k * i
        s = _spike(u - THETA)
        u = u - jax.lax.stop_gradient(s * (u - U_RESET))  # reset, not differentiated
        return (u, i * a_syn), s

    h0 = jnp.zeros(cur.shape[1:], cur.dtype)
    _, s = jax.lax.scan(lif, (h0 + U_REST, h0), cur)

    def readout(v, o):
        v = a_out * v + o
        return v, v

    _, v = jax.lax.scan(readout, jnp.zeros((x.shape[1], wl.n_out), cur.dtype), s @ w_out)
    return cross_entropy(v, y), jnp.mean(s)


# ----------------------------------------------------------------------- train step
def make_step(loss_fn, wl: Workload):
    """``step(params, opt_state, x, y) -> (params, opt_state, loss, rate)`` with Adam."""
    opt = optax.adam(wl.lr)

    def step(params, opt_state, x, y):
        (loss, rate), g = jax.value_and_grad(loss_fn, has_aux=True)(params, x, y, wl)
        updates, opt_state = opt.update(g, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, rate

    return step, opt


LOSSES = {"ssjax": ssjax_loss, "plain-jax": plain_loss}


def time_step(impl: str, wl: Workload, repeats: int) -> dict:
    """Time one JAX implementation's training step; a record's figures."""
    x, y, params = make_data(wl)
    step, opt = make_step(LOSSES[impl], wl)
    return step_record(step, (params, opt.init(params), x, y), repeats)


def step_record(step, args: tuple, repeats: int) -> dict:
    """Timing, memory, loss and rate of a step ``(params, opt, x, y) -> (..., loss, rate)``."""
    r = time_jax(step, args, repeats)
    _, _, loss, rate = jax.jit(step)(*args)
    return {
        "ms_per_step": 1e3 * r["best_s"],
        "compile_s": r["compile_s"],
        "peak_mb": r["peak_mb"],
        "loss": float(loss),
        "hidden_rate": float(rate),
    }


def matmul_bound(x2, w_in, h2, w_out, g_out, g_h):
    """The step's dense products alone: 2 forward, 4 backward (gradients of inputs and weights)."""
    return (
        x2 @ w_in,  # input projection [T*B, n_in] x [n_in, H]
        h2 @ w_out,  # readout [T*B, H] x [H, n_out]
        g_out @ w_out.T,  # d spikes
        h2.T @ g_out,  # d W_out
        g_h @ w_in.T,  # d inputs (counted as in the brief: 2 backward per forward product)
        x2.T @ g_h,  # d W_in
    )


def matmul_needed(x2, w_in, h2, w_out, g_out, g_h):
    """The 5 products a training step needs (the inputs' gradient is never formed)."""
    return matmul_bound(x2, w_in, h2, w_out, g_out, g_h)[:4] + (x2.T @ g_h,)


def time_bound(wl: Workload, repeats: int, needed: bool = False) -> dict:
    """Time :func:`matmul_bound` (or :func:`matmul_needed`) for the workload's shapes."""
    tb = wl.steps * wl.batch
    ks = jax.random.split(jax.random.PRNGKey(1), 6)
    shapes = [
        (tb, wl.n_in),
        (wl.n_in, wl.hidden),
        (tb, wl.hidden),
        (wl.hidden, wl.n_out),
        (tb, wl.n_out),
        (tb, wl.hidden),
    ]
    args = tuple(jax.random.normal(k, s) for k, s in zip(ks, shapes, strict=True))
    r = time_jax(matmul_needed if needed else matmul_bound, args, repeats)
    flops = 2 * tb * (wl.n_in * wl.hidden * (2 if needed else 3) + wl.hidden * wl.n_out * 3)
    return {
        "ms_per_step": 1e3 * r["best_s"],
        "compile_s": r["compile_s"],
        "peak_mb": r["peak_mb"],
        "gflop": flops / 1e9,
    }


def run(quick: bool, repeats: int, log=print) -> list[dict]:
    """All implementations on all workloads; a list of records (suite ``bptt``)."""
    from benchmarks import peers  # optional libraries are imported there, lazily

    records = []
    for n, wl in enumerate(workloads(quick)):
        if n:  # the long variant: ~10x the work per step, fewer repeats
            repeats = max(2, repeats // 2)
        for impl in ("matmul-bound", "matmul-needed", "ssjax", "plain-jax"):
            if impl.startswith("matmul"):
                fig = time_bound(wl, repeats, needed=impl == "matmul-needed")
            else:
                fig = time_step(impl, wl, repeats)
            records.append({"suite": "bptt", "impl": impl, **wl.sizes(), **fig})
            log(f"bptt {wl.name} {impl}: {fig['ms_per_step']:.2f} ms/step")
        if quick and n:
            continue  # --quick: peers on the first workload only
        x, y, params = make_data(wl)
        data = (np.asarray(x), np.asarray(y), tuple(np.asarray(p) for p in params))
        for impl in peers.PEERS:
            fig = peers.run_peer(impl, wl, data, repeats)
            records.append({"suite": "bptt", "impl": impl, **wl.sizes(), **fig})
            log(
                f"bptt {wl.name} {impl}: "
                + (f"{fig['ms_per_step']:.2f} ms/step" if "ms_per_step" in fig else fig["status"])
            )
    return records
