"""SuperSpike's event route: eligibility sums and input currents on spike-carrying steps only.

The PSP trace is a filtered spike train, so for a layer's presynaptic spikes ``s`` ``[K, N_pre]``

    z^T @ post = s^T @ h,        h = epsilon^T post

(:mod:`._adjoint`): the post-side signals are filtered backwards with the adjoint of the PSP
filter in the same reverse scan that builds them, and summed over the steps that carry
presynaptic spikes only, ``O(K N_post + steps-with-spikes x N_pre x N_post)`` instead of
``O(K N_pre N_post)`` (:func:`event_sums`). The layer's input currents ``s @ W`` are computed on
the same steps only (:func:`event_currents`).

The steps are gathered into a list whose capacity is picked per block from a ladder
(:func:`capacities`, a ``lax.switch``, :func:`on_capacity`); a block with more spike-carrying
steps than ``max_spikes`` (the largest capacity) falls back to the dense sum (a ``lax.cond``),
so the route is always exact (equal to the dense one to float rounding, tested). The reverse
scan writes only the listed steps' rows; for a presynaptic layer of at least :data:`_PER_SPIKE`
neurons, the listed rows that carry one spike are added to that neuron's sum instead of a
product over mostly zeros (:func:`per_spike`).

Shapes are time-major ``[K, N]`` for one sample; ``max_spikes`` counts steps. The closed forms
are LIF's (:data:`SUPPORTED_NEURONS`).

Reference: Zenke & Ganguli (2018), Methods; SUPERSPIKE.md 2.1.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ssjax.network import input_currents
from ssjax.neuron import LIFParams
from ssjax.rules.superspike._adjoint import (
    PostArgs,
    post_signals,
    psp_free_response,
    spike_kernel,
    with_carried,
)

Array = jax.Array
_HIGHEST = jax.lax.Precision.HIGHEST

# the neuron models whose closed forms (PSP trace and its adjoint) this route implements
SUPPORTED_NEURONS: tuple[type, ...] = (LIFParams,)
# N_pre from which the event route sums its listed steps per spike (per_spike) instead of a
# product: 6% faster at 200-256-200, no change at 100-256-100, and each capacity branch compiles
# a second path (measured, CPU)
_PER_SPIKE = 128


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
    kern = spike_kernel(free)
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
    return with_carried(params, free, summed, fin, psp0, [c * b for b in b0], a0), sums
