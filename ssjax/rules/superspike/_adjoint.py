"""Closed forms shared by SuperSpike's fast routes: PSP traces, post-side signals, adjoints.

For one layer and a block of ``K`` steps with fixed weights the rule needs ``z^T @ post``: the
presynaptic PSP trace ``z`` ``[K, N_pre]`` against the post-side signals ``post`` ``[K, P]``

    post = (e_rev sigma', sigma' a_d^lag, sigma' a_r^lag),     e_rev = alpha^R * e

(``alpha^R``: the error filter run backwards in time; ``lag[t] = K-1-t``), which give ``m`` and
the end-of-block eligibility filter ``(D, R)`` (:mod:`.dense`). The PSP step of the LIF neuron
(:func:`ssjax.neuron.psp_trace_step`: ``z_syn += s; z = a z + c z_syn; z_syn *= a_s``) is
linear, so

- the trace from a carried state is the trace of the spikes from zero plus the closed-form
  decay of the state (:func:`psp_filter_free`, :func:`psp_free_response`);
- ``z^T post = s^T h`` with ``h = epsilon^T post`` the adjoint of the PSP filter applied to
  ``post`` (``A[t] = post[t] + a A[t+1]``, ``B[t] = A[t] + a_s B[t+1]``, ``h = c B``), built
  in the same reverse scan as ``post`` (:func:`post_signals`); the carried state enters through
  ``A[0]``, ``B[0]`` (:func:`with_carried`).

Shapes are time-major ``[K, N]``, one sample (a seed ``vmap`` adds axes after ``K``); ``e`` in
1/s, time constants and ``dt`` in s. These closed forms are LIF's: the routes that use them
declare it (``SUPPORTED_NEURONS``).

Reference: Zenke & Ganguli (2018), Methods; SUPERSPIKE.md 2.1.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ssjax.filters import double_exp_init, double_exp_step
from ssjax.neuron import psp_trace_step

Array = jax.Array

# the leading positional arguments of post_signals: (tau_rise, tau_decay, dt, e, sig, pows)
PostArgs = tuple[float, float, float, Array, Array, Array]


def psp_filter(params, s: Array, psp0: tuple) -> tuple[Array, tuple]:
    """PSP trace ``z`` ``[K, C]`` of spikes ``s`` ``[K, C]`` from ``psp0``, and the final state."""

    def step(tr, st):
        return psp_trace_step(params, tr, st)

    psp, z = jax.lax.scan(step, psp0, s)
    return z, psp


def psp_filter_free(params, s: Array) -> tuple[Array, tuple]:
    """PSP trace of ``s`` ``[K, N]`` from a zero state, with two more columns: the response to a
    unit carried state ``(z_syn, z_mem) = (1, 0)`` and ``(0, 1)`` with no spikes.

    Returns ``z`` ``[K, N + 2]`` and the final state (``[N + 2]`` each). By linearity the trace
    from a carried state ``(y0, m0)`` is ``z[:, :N] + y0 z[:, N] + m0 z[:, N + 1]``.
    """
    n = s.shape[1]
    unit = jnp.zeros(n + 2, s.dtype)
    pad = jnp.zeros(2, s.dtype)

    def step(tr, st):
        return psp_trace_step(params, tr, jnp.concatenate([st, pad]))

    psp, z = jax.lax.scan(step, (unit.at[n].set(1.0), unit.at[n + 1].set(1.0)), s)
    return z, psp


def post_signals(
    tau_rise: float,
    tau_decay: float,
    dt: float,
    e: Array,
    sig: Array,
    pows: Array,
    psp=None,
    sig_fn=None,
    pre=None,
    slots=None,
):
    """The post-side signals ``post = (e_rev sig, sig pows[:, 0], sig pows[:, 1])`` (three
    ``[K, N]`` groups) and the reverse filter's final state, where ``e_rev = alpha^R * e`` (the
    error ``e`` ``[K, N]`` filtered backwards in time).

    With ``psp`` (the neuron's ``LIFParams``) the scan also applies the adjoint of the PSP
    trace and returns ``h = epsilon^T post`` instead of ``post``: ``z^T post = s^T h`` for the
    trace ``z`` of spikes ``s``. The PSP step (``z_syn += s; z = a z + c z_syn;
    z_syn *= a_s``) has the adjoint ``A[t] = post[t] + a A[t+1]``, ``B[t] = A[t] + a_s B[t+1]``,
    ``h = c B``; ``A[0]`` is returned too (a carried ``z_mem`` sees ``a A[0]``).

    With ``sig_fn``, ``sig`` is the membrane potential and ``sig_fn(sig)`` the surrogate
    derivative, evaluated in the loop instead of a separate pass over ``[K, N]``.

    With ``pre = (s, kern)`` (and ``psp``) nothing is written per step: the loop accumulates
    ``sum_t s[t] h[t]^T`` per group and ``sum_t s[t] kern[t]^T`` and returns them in place of
    ``h`` (see :func:`ssjax.rules.superspike.dense.scan_products`). The adjoint state returned
    is ``(A[0], B[0])``.

    With ``slots = (slot, size)`` (``slot`` ``[K]`` int) step ``t``'s row of each group is
    written to row ``slot[t]`` of a ``[size, N]`` buffer (zeros where nothing is written) and
    the buffers are returned in place of ``h``: the event route keeps only the steps that carry
    presynaptic spikes, and points the others at one spare row (see
    :func:`ssjax.rules.superspike.event.event_sums`).

    Built inside the reverse filter's scan, so that a seed-vmapped block writes them time-major
    ``[K, seeds, N]``, ready for one product with a shared presynaptic trace. The groups stay
    separate arrays: concatenated inside the loop, XLA:CPU selects an operand per element and
    does not vectorise the body (2.5-3x slower at N = 256).
    """
    if psp is not None:
        a_m, _, c = psp.membrane_coeffs()
        a_s = psp.syn_decay

    def step(carry, xs):
        st, adj, acc = carry
        et, st_sig, pw = xs[:3]
        if sig_fn is not None:
            st_sig = sig_fn(st_sig)
        st, e_rev = double_exp_step(st, et, tau_rise, tau_decay, dt)
        out = (e_rev * st_sig, st_sig * pw[0], st_sig * pw[1])
        if psp is not None:
            big_a = tuple(o + a_m * x for o, x in zip(out, adj[0], strict=True))
            big_b = tuple(x + a_s * y for x, y in zip(big_a, adj[1], strict=True))
            adj, out = (big_a, big_b), tuple(c * x for x in big_b)
        if pre is not None:
            s_t, kern_t = xs[3:]
            summed, fin = acc
            summed = tuple(m + s_t[:, None] * h[None, :] for m, h in zip(summed, out, strict=True))
            acc, out = (summed, fin + s_t[:, None] * kern_t[None, :]), None
        elif slots is not None:
            acc = tuple(
                jax.lax.dynamic_update_index_in_dim(b, h, xs[3], 0)
                for b, h in zip(acc, out, strict=True)
            )
            out = None
        return (st, adj, acc), out

    zeros = (jnp.zeros(e.shape[1:], e.dtype),) * 3
    xs: tuple = (e, sig, pows)
    acc: Any = None
    if pre is not None:
        n_pre = pre[0].shape[1]
        acc = ((jnp.zeros((n_pre, e.shape[1]), e.dtype),) * 3, jnp.zeros((n_pre, 2), e.dtype))
        xs = xs + tuple(pre)
    elif slots is not None:
        slot, size = slots
        acc = (jnp.zeros((size, *e.shape[1:]), e.dtype),) * 3
        xs = xs + (slot,)
    init = (double_exp_init(e.shape[1:], e.dtype), (zeros, zeros), acc)
    (sums, adj, acc), post = jax.lax.scan(step, init, xs, reverse=True)
    return (post if acc is None else acc), sums, adj


def with_carried(params, free, summed, fin, psp0, h0, adj_a0):
    """Add the carried PSP trace ``(y0, m0)`` to the spike sums ``s^T h`` (``summed``) and
    ``s^T kern`` (``fin``): it acts like a spike at step 0 (``y0 h[0]``) and a membrane state
    seen as ``a A[0]``; and its closed-form decay to the final PSP state."""
    a_m, _, _ = params.membrane_coeffs()
    y0, m0 = psp0
    pre_post = tuple(
        p + y0[:, None] * g0[None] + m0[:, None] * (a_m * a0)[None]
        for p, g0, a0 in zip(summed, h0, adj_a0, strict=True)
    )
    psp = (fin[:, 0] + y0 * free[-1, 2], fin[:, 1] + y0 * free[-1, 0] + m0 * free[-1, 1])
    return pre_post, psp


def spike_kernel(free: Array) -> Array:
    """``[K, 2]``: what a spike at step ``j`` leaves in the PSP state at the block's end,
    ``(z_syn, z_mem) = (a_s^(K-j), f(K-1-j))``, from :func:`psp_free_response`."""
    return jnp.stack([free[::-1, 2], free[::-1, 0]], axis=1)


def psp_free_response(params, k: int, dtype) -> Array:
    """``[K, 3]``: closed-form responses of the PSP trace (:func:`ssjax.neuron.psp_trace_step`)
    with no spikes: column 0 is ``z_mem[t]`` from ``(z_syn, z_mem) = (1, 0)``, i.e. the trace of
    one spike at step 0, ``c (a^(t+1) - a_s^(t+1)) / (a - a_s)``; column 1 ``z_mem[t]`` from
    ``(0, 1)``, ``a^(t+1)``; column 2 the carried ``z_syn`` after step ``t``, ``a_s^(t+1)``.
    Evaluated in float64, then cast.
    """
    a, _, c = params.membrane_coeffs()
    a_s = params.syn_decay
    n = np.arange(1, k + 1, dtype=np.float64)
    am, asn = a**n, a_s**n
    f_syn = c * (am - asn) / (a - a_s) if a != a_s else c * n * a ** (n - 1)
    return jnp.asarray(np.stack([f_syn, am, asn], axis=1), dtype)
