"""Exact blocked products of SuperSpike: a block's eligibility sums as matrix products.

For one layer and a block of ``K`` steps with fixed weights, the rule needs ``z^T @ post``: the
presynaptic PSP trace ``z`` ``[K, N_pre]`` against the post-side signals ``post`` ``[K, P]``
(``sigma' (alpha^R * e)`` and the end-of-block eligibility weights; see
:mod:`ssjax.rules.superspike`). Two exact ways:

- dense (:func:`dense_products`): ``z`` is the trace of the block's spikes from a zero state
  plus the closed-form decay of the carried state (:func:`psp_filter_free`); one matrix product.
  Because the spike part depends on the spikes alone, seeds that share their inputs (a seed
  ``vmap`` with the data position unbatched) compute it once.
- event-driven (:func:`event_sums`): ``z^T @ post = s^T @ (epsilon^T post)``, with the
  adjoint of the PSP filter applied in the reverse scan that builds ``post``
  (:func:`post_signals`), which keeps only the rows of the steps that carry presynaptic spikes,
  and the sum taken over those steps. :func:`event_currents` does the same for a layer's input
  currents ``s @ W``.

Event lists have a capacity picked per block from a ladder (:func:`on_capacity`) with a
``lax.switch``; a block with more spike-carrying steps than the largest capacity uses the dense
route (a ``lax.cond``), so both forms are always exact (they agree to float rounding, tested).

Reference: Zenke & Ganguli (2018), Methods; SUPERSPIKE.md 2.1.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ssjax.filters import double_exp_init, double_exp_step
from ssjax.network import input_currents
from ssjax.neuron import psp_trace_step

Array = jax.Array
_HIGHEST = jax.lax.Precision.HIGHEST

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
    ``h`` (see :func:`scan_products`). The adjoint state returned is ``(A[0], B[0])``.

    With ``slots = (slot, size)`` (``slot`` ``[K]`` int) step ``t``'s row of each group is
    written to row ``slot[t]`` of a ``[size, N]`` buffer (zeros where nothing is written) and
    the buffers are returned in place of ``h``: the event route keeps only the steps that carry
    presynaptic spikes, and points the others at one spare row (see :func:`event_sums`).

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


def dense_products(params, spikes: Array, psp0: tuple, post: tuple, concat: bool = False):
    """``z^T @ p`` for each group ``p`` ``[K, P]`` of ``post``, for the PSP trace ``z`` of
    ``spikes`` ``[K, N_pre]`` started at ``psp0``.

    ``z`` is the trace of this block's spikes from a zero state plus the free decay of the
    carried state (:func:`psp_filter_free`), so the spike part depends on the spikes alone:
    when every seed sees the same inputs, a seed-vmapped block computes the input layer's
    trace once, and each product is one matrix product over all seeds
    (``[N_pre + 2, K] @ [K, seeds * P]``). ``concat``: one product with the groups side by side
    (faster for a few narrow groups of one seed, where reading ``z`` dominates).
    Returns ``(tuple of [N_pre, P], final psp state)``.
    """
    n_pre = spikes.shape[1]
    z, (syn, mem) = psp_filter_free(params, spikes)
    y0, m0 = psp0

    def carried(prod):
        return prod[:n_pre] + y0[:, None] * prod[n_pre][None] + m0[:, None] * prod[n_pre + 1][None]

    widths = [p.shape[-1] for p in post]
    if concat:
        prod = jnp.matmul(z.T, jnp.concatenate(post, axis=-1), precision=_HIGHEST)
        prods = jnp.split(prod, list(np.cumsum(widths)[:-1]), axis=-1)
    else:
        prods = [jnp.matmul(z.T, p, precision=_HIGHEST) for p in post]
    pre_post = tuple(carried(p) for p in prods)
    psp = (
        syn[:n_pre] + y0 * syn[n_pre],
        mem[:n_pre] + y0 * mem[n_pre] + m0 * mem[n_pre + 1],
    )
    return pre_post, psp


def capacities(max_rows: int, k: int) -> list[int]:
    """Capacities of the event lists: ``K/32, K/16, .., K/2``, none above ``max_rows``."""
    return sorted({min(max_rows, k, max(1, k >> i)) for i in range(1, 6)})


def spike_steps(spikes: Array) -> Array:
    """``[K]`` bool: the steps of ``spikes`` ``[K, N]`` that carry at least one spike."""
    return jnp.any(spikes != 0, axis=1)


def spike_slots(active: Array, size: int) -> Array:
    """``[K]`` int: the position of each spike-carrying step (``active``) in the block's list,
    ``size`` (a spare row) for the others; the row each step reads or writes in a compact
    ``[size + 1, ...]`` buffer."""
    return jnp.where(active, jnp.cumsum(active) - 1, size).astype(jnp.int32)


def on_capacity(active: Array, max_rows: int, fn):
    """``fn(rows, valid)`` for the steps marked in ``active`` ``[K]``, listed in the smallest
    capacity of :func:`capacities` that holds them (a ``lax.switch`` on the block's count):
    ``rows`` ``[cap]`` are their indices in order, padded with ``K``, and ``valid`` ``[cap]``
    marks the real ones. The caller checks that the count fits the largest capacity.
    """
    k = active.shape[0]
    n_rows = jnp.sum(active)
    caps = capacities(max_rows, k)

    def branch(cap):
        def run():
            (rows,) = jnp.nonzero(active, size=cap, fill_value=k)
            return fn(rows, jnp.arange(cap) < n_rows)

        return run

    index = jnp.sum(n_rows > jnp.asarray(caps))  # first capacity that holds the block
    return jax.lax.switch(index, [branch(c) for c in caps])


def on_spike_steps(spikes: Array, max_rows: int, sparse, dense, active=None):
    """``sparse(rows, valid)`` on the steps of ``spikes`` ``[K, N]`` that carry a spike
    (:func:`on_capacity`), or ``dense()`` when there are more of them than the largest
    capacity. The work follows the spike count. ``active``: :func:`spike_steps` of ``spikes``,
    when the caller needs it too.
    """
    active = spike_steps(spikes) if active is None else active
    size = capacities(max_rows, spikes.shape[0])[-1]
    return jax.lax.cond(
        jnp.sum(active) <= size, lambda: on_capacity(active, max_rows, sparse), dense
    )


def event_currents(max_rows: int, s: Array, w: Array) -> Array:
    """``s @ w`` (``[K, N_pre] @ [N_pre, N]``) computed on the steps that carry spikes only
    (:func:`on_spike_steps`); a block with too many such steps uses the dense product. Each
    step's current is the same dot product of its spike vector with ``w`` either way.

    The list is expanded to ``[K, N]`` by a gather (step ``t`` reads entry
    ``cumsum(active)[t] - 1``, zero where ``t`` has no spike): one pass, where a scatter into
    zeros needs a fill first, and under a seed ``vmap`` with shared spikes a scatter of per-seed
    rows comes out seed-major and costs a transpose to time-major (measured, CPU). Reading the
    list from the layer's scan instead (a compact table and a row index per step) was no faster
    for one seed and 1.4x slower for 64 seeds under ``vmap`` (measured, CPU).
    """
    k = s.shape[0]
    active = spike_steps(s)

    def sparse(rows, valid):
        vals = input_currents(s[jnp.minimum(rows, k - 1)], w)
        entry = jnp.clip(jnp.cumsum(active) - 1, 0, rows.shape[0] - 1)
        return jnp.where(active[:, None], vals[entry], 0.0)

    return on_spike_steps(s, max_rows, sparse, lambda: input_currents(s, w), active)


def per_spike(s_rows: Array, rhs: Array) -> Array:
    """``s_rows^T @ rhs`` (``[R, N_pre]``, ``[R, C]`` -> ``[N_pre, C]``) for sparse ``s_rows``
    whose rows (listed steps) mostly hold one unit spike: those rows of ``rhs`` are added to
    their neuron's sum (a ``segment_sum``, ``R x C`` additions instead of ``N_pre x R x C``
    multiply-adds); the other rows (several spikes, or a count other than 1) go through a
    product over a list of capacity ``R/8``, or over all rows when there are more (a
    ``lax.cond``). Exact: the same terms, summed in another order.
    """
    r, n_pre = s_rows.shape
    nz = s_rows != 0
    n_nz = jnp.sum(nz, axis=1)
    single = (n_nz == 1) & (jnp.sum(s_rows, axis=1) == 1)
    # index of the one spike; rows that are not single go to an extra segment, dropped
    idx = jnp.sum(jnp.where(nz, jnp.arange(n_pre), 0), axis=1)
    total = jax.ops.segment_sum(rhs, jnp.where(single, idx, n_pre), n_pre + 1)[:n_pre]
    rest = (n_nz > 0) & ~single
    n_rest = jnp.sum(rest)
    cap = max(1, r // 8)

    def few():
        (rows,) = jnp.nonzero(rest, size=cap, fill_value=0)
        s_few = jnp.where((jnp.arange(cap) < n_rest)[:, None], s_rows[rows], 0.0)
        return jnp.matmul(s_few.T, rhs[rows], precision=_HIGHEST)

    def many():
        return jnp.matmul(jnp.where(rest[:, None], s_rows, 0.0).T, rhs, precision=_HIGHEST)

    return total + jax.lax.cond(n_rest <= cap, few, many)


def event_sums(
    params,
    max_rows: int,
    spikes: Array,
    psp0: tuple,
    post_args: PostArgs,
    sig_fn=None,
    segment: bool = False,
):
    """``z^T @ post`` as ``s^T @ h`` summed over the steps that carry presynaptic spikes only.

    ``h = epsilon^T post`` (:func:`post_signals` with the PSP adjoint; ``post_args``: its
    ``(tau_rise, tau_decay, dt, e, sig, pows)``); ``spikes``: ``[K, N_pre]``. Inputs at 5 Hz put
    a spike in about one step in ten for 200 inputs at dt = 0.1 ms, so the reverse scan writes
    only those steps' rows, in order, into buffers of the largest capacity of
    :func:`capacities` (every other step into one spare row): a third of the time of writing
    ``[K, N]`` groups at N = 256 (measured, CPU), and no gather afterwards. The product then
    runs over the smallest capacity that holds the block (a ``lax.switch``). A block with more
    such steps than the largest capacity takes the dense route instead (a ``lax.cond``: the
    full-length scan and ``s^T h``), so the result is always exact. The carried trace
    ``(y0, m0)`` acts like a spike at step 0 (``y0``) and a membrane state seen as ``a A[0]``
    (``m0``). The final PSP state is the sum, over the same steps, of what each spike at step
    ``j`` leaves, ``(a_s^(K-j), f(K-1-j))`` with ``f`` the one-spike trace
    (:func:`psp_free_response`), plus the carried state's closed-form decay.
    ``segment``: sum the listed rows per spike (:func:`per_spike`) instead of a product: the
    listed steps mostly carry one spike among ``N_pre``, so the product multiplies mostly
    zeros. Not under a seed ``vmap``, where the rows are per seed and one product with the
    shared spikes serves every seed.
    Returns ``((tuple of [N_pre, P], final psp state), the reverse filter's final state)``.
    """
    k = spikes.shape[0]
    dtype = post_args[3].dtype
    s = spikes.astype(dtype)
    free = psp_free_response(params, k, dtype)
    kern = _spike_kernel(free)
    active = spike_steps(spikes)
    n_rows = jnp.sum(active)
    size = capacities(max_rows, k)[-1]
    signals = functools.partial(post_signals, *post_args, psp=params, sig_fn=sig_fn)

    def products(s_rows, groups):
        cols = np.cumsum([g.shape[-1] for g in groups])[:-1]
        rhs = jnp.concatenate(groups, axis=1)  # the listed rows are few: one sum for all groups
        if segment:
            total = per_spike(s_rows, rhs)
        else:
            total = jnp.matmul(s_rows.T, rhs, precision=_HIGHEST)
        return jnp.split(total, list(cols), axis=1)

    def compact():
        rows_h, sums, (a0, b0) = signals(slots=(spike_slots(active, size), size + 1))

        def gathered(rows, valid):
            rows = jnp.minimum(rows, k - 1)
            s_rows = jnp.where(valid[:, None], s[rows], 0.0)
            return products(s_rows, [g[: rows.shape[0]] for g in rows_h] + [kern[rows]])

        return on_capacity(active, max_rows, gathered), sums, a0, b0

    def dense():
        h, sums, (a0, b0) = signals()
        return [jnp.matmul(s.T, g, precision=_HIGHEST) for g in (*h, kern)], sums, a0, b0

    (*summed, fin), sums, a0, b0 = jax.lax.cond(n_rows <= size, compact, dense)
    _, _, c = params.membrane_coeffs()
    return _with_carried(params, free, summed, fin, psp0, [c * b for b in b0], a0), sums


def _with_carried(params, free, summed, fin, psp0, h0, adj_a0):
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


def _spike_kernel(free: Array) -> Array:
    """``[K, 2]``: what a spike at step ``j`` leaves in the PSP state at the block's end,
    ``(z_syn, z_mem) = (a_s^(K-j), f(K-1-j))``, from :func:`psp_free_response`."""
    return jnp.stack([free[::-1, 2], free[::-1, 0]], axis=1)


def scan_products(params, spikes: Array, psp0: tuple, post_args: PostArgs, sig_fn=None):
    """``z^T @ post`` as ``sum_t s[t] h[t]^T`` accumulated inside the reverse scan of
    :func:`post_signals` (``post_args``: its ``(tau_rise, tau_decay, dt, e, sig, pows)``).

    For layers so small that a matrix product costs more in layout changes than in arithmetic:
    per seed under a seed ``vmap`` (e.g. 4 hidden neurons -> 1 output), ``[N_pre, K] @ [K, P]``
    per seed is a batched product with transposes of ``[K, seeds, N]`` arrays, while the
    accumulation is ``N_pre x 3 N_post`` multiply-adds per step and writes no ``[K, ...]``
    array. ``spikes``: ``[K, N_pre]``. Returns ``((tuple of [N_pre, N_post], final psp state),
    the reverse filter's final state)``.
    """
    k = spikes.shape[0]
    e = post_args[3]
    free = psp_free_response(params, k, e.dtype)
    pre = (spikes.astype(e.dtype), _spike_kernel(free))
    (summed, fin), sums, (a0, b0) = post_signals(*post_args, psp=params, sig_fn=sig_fn, pre=pre)
    _, _, c = params.membrane_coeffs()
    return _with_carried(params, free, summed, fin, psp0, [c * b for b in b0], a0), sums


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
