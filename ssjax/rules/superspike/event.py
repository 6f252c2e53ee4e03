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
scan writes only the listed steps' rows.

At the spikes (one seed, a presynaptic layer of at least :data:`_PER_SPIKE` neurons): a step of
1000 inputs at 5 Hz carries one or two spikes among 1000, so a product over the listed steps
still multiplies mostly zeros (1000 x 2000 x 768 per 0.5 s block for the scale benchmark's
input layer). :func:`step_spikes` decodes each step's one or two spiking neurons from one
product with ``[1, j, j^2]`` (exact power sums), and the sums (:func:`spike_sums`), the input
currents (:func:`per_spike_currents`) and the top hidden layer's error from the output spikes
(:func:`event_layer_errors`) are gathers and scatter-adds of rows at those spikes; the rare
steps with more spikes go through short lists (:func:`each_spike`).

Shapes are time-major ``[K, N]`` for one sample; ``max_spikes`` counts steps. The closed forms
are LIF's (:data:`SUPPORTED_NEURONS`).

Reference: Zenke & Ganguli (2018), Methods; SUPERSPIKE.md 2.1.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ssjax.filters import DoubleExpState, double_exp_filter
from ssjax.network import input_currents, matmul
from ssjax.neuron import LIFParams
from ssjax.rules.feedback import feedback_matrix
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


def on_capacity(active: Array, max_rows: int, fn, levels: int | None = None):
    """``fn(rows, valid)`` for the steps marked in ``active`` ``[K]``, listed in the smallest
    capacity of :func:`capacities` that holds them (a ``lax.switch`` on the block's count):
    ``rows`` ``[cap]`` are their indices in order, padded with ``K``, and ``valid`` ``[cap]``
    marks the real ones. The caller checks that the count fits the largest capacity.
    ``levels``: the largest ``levels`` capacities only (fewer branches to compile).
    """
    k = active.shape[0]
    n_rows = jnp.sum(active)
    caps = capacities(max_rows, k)[-levels:] if levels else capacities(max_rows, k)

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


def event_currents(max_rows: int, s: Array, w: Array, per_spike: bool = False) -> Array:
    """``s @ w`` (``[K, N_pre] @ [N_pre, N]``) computed on the steps that carry spikes only
    (:func:`on_spike_steps`); a block with too many such steps uses the dense product. Each
    step's current is the same dot product of its spike vector with ``w`` either way.

    The list is expanded to ``[K, N]`` by a gather (step ``t`` reads entry
    ``cumsum(active)[t] - 1``, zero where ``t`` has no spike): one pass, where a scatter into
    zeros needs a fill first, and under a seed ``vmap`` with shared spikes a scatter of per-seed
    rows comes out seed-major and costs a transpose to time-major (measured, CPU). Reading the
    list from the layer's scan instead (a compact table and a row index per step) was no faster
    for one seed and 1.4x slower for 64 seeds under ``vmap`` (measured, CPU).

    ``per_spike``: for ``N_pre >=`` :data:`_PER_SPIKE`, the currents are sums of the spikes'
    weight rows (:func:`per_spike_currents`), no list and no product of mostly zeros: 1000
    inputs at 5 Hz put one or two spikes on a step that carries any.
    """
    if per_spike and s.shape[1] >= _PER_SPIKE:
        return per_spike_currents(s, w)
    k = s.shape[0]
    active = spike_steps(s)

    def sparse(rows, valid):
        vals = input_currents(s[jnp.minimum(rows, k - 1)], w)
        entry = jnp.clip(jnp.cumsum(active) - 1, 0, rows.shape[0] - 1)
        return jnp.where(active[:, None], vals[entry], 0.0)

    return on_spike_steps(s, max_rows, sparse, lambda: input_currents(s, w), active)


def each_spike(s_rows: Array, visit, acc):
    """Fold ``visit(acc, cols, vals, valid)`` over the spikes of ``s_rows`` ``[R, N]``, one per
    row per pass: each pass takes every row's lowest remaining nonzero column (``cols``,
    ``vals``, ``valid``: ``[R]``; ``valid`` False where a row has no spike left, ``vals`` 0
    there), then removes it, until none is left (a ``lax.while_loop`` of as many passes as the
    most spikes on one row). For the few rows :func:`step_spikes` does not decode.

    One min reduction per pass: it vectorises on CPU, where an ``argmax``, a ``nonzero`` over
    the ``R N`` entries, or a min and a max in one pass are 10-50x slower (measured).
    """
    n = s_rows.shape[1]
    col = jnp.arange(n, dtype=jnp.int32)

    def body(carry):
        nz, acc = carry
        lo = jnp.min(jnp.where(nz, col, n), axis=1)
        valid = lo < n
        cols = jnp.minimum(lo, n - 1)
        vals = jnp.take_along_axis(s_rows, cols[:, None], axis=1)[:, 0]
        acc = visit(acc, cols, jnp.where(valid, vals, 0), valid)
        return nz & (col != lo[:, None]), acc

    nz = s_rows != 0
    return jax.lax.while_loop(lambda c: jnp.any(c[0]), body, (nz, acc))[1]


def per_spike(s_rows: Array, rhs: Array) -> Array:
    """``s_rows^T @ rhs`` (``[R, N_pre]``, ``[R, C]`` -> ``[N_pre, C]``) for sparse ``s_rows``:
    each spike adds its count times its row of ``rhs`` to its neuron's sum (:func:`each_spike`,
    a scatter-add of ``[R, C]`` per pass), ``spikes x C`` additions instead of
    ``N_pre x R x C`` multiply-adds. Exact: the same terms, summed in another order.
    """
    n_pre = s_rows.shape[1]

    def visit(acc, cols, vals, valid):
        seg = jnp.where(valid, cols, n_pre)  # out of range: dropped
        return acc.at[seg].add(vals[:, None] * rhs, mode="drop")

    return each_spike(s_rows, visit, jnp.zeros((n_pre, rhs.shape[1]), rhs.dtype))


def each_spike_currents(s_rows: Array, w: Array) -> Array:
    """``s_rows @ w`` (``[R, N_pre] @ [N_pre, N]``) for sparse ``s_rows``: each row's current
    is the sum of the weight rows of its spikes times their counts (:func:`each_spike`).
    Exact: the same terms, summed in another order."""

    def visit(acc, cols, vals, valid):
        return acc + vals[:, None] * w[cols]

    return each_spike(s_rows, visit, jnp.zeros((s_rows.shape[0], w.shape[1]), w.dtype))


class StepSpikes(NamedTuple):
    """Per step of a spike array ``s`` ``[K, N]``: how many neurons spike (``n`` ``[K]``
    int32), and for a step with at most :func:`decoded` of them their columns (``cols``
    ``[2, K]`` int32, in ``[0, N)``) and values (``vals`` ``[2, K]``: the counts ``s[t, col]``;
    0 where there is no such spike). The other steps' spikes are read from ``s`` itself."""

    n: Array
    cols: Array
    vals: Array


# N up to which a step's two spiking columns are decoded from power sums (2 (N-1)^2 < 2^24:
# exact in float32)
_TWO_MAX = 2896


def decoded(n: int) -> int:
    """The most spikes per step :func:`step_spikes` decodes for ``N = n`` neurons."""
    return 2 if n <= _TWO_MAX else 1


def step_spikes(s: Array) -> StepSpikes:
    """:class:`StepSpikes` of ``s`` ``[K, N]`` from one product ``nz @ [1, j, j^2]`` (``nz``:
    ``s != 0``, ``j`` the column): a step's count, and the power sums ``S1 = sum j``,
    ``S2 = sum j^2`` of its spiking columns, which give the columns of a step with one spike
    (``S1``) or two (``(S1 -+ sqrt(2 S2 - S1^2)) / 2``). Sums of at most two integers below
    ``2^24`` (:data:`_TWO_MAX`): exact in float32. One vectorised pass over ``s``, where a
    ``nonzero`` over the ``K N`` entries, or row-wise min and max reductions together, are
    20-50x slower on CPU (measured). Inputs at 5 Hz put one or two spikes on almost every step
    that carries any (1000 inputs at dt = 0.1 ms: three or more on 1.4% of the steps)."""
    k, n = s.shape
    col = jnp.arange(n, dtype=jnp.float32)
    two = decoded(n) == 2
    basis = jnp.stack([jnp.ones(n, jnp.float32), col] + ([col * col] if two else []), axis=1)
    m = jnp.matmul((s != 0).astype(jnp.float32), basis, precision=_HIGHEST)
    count = jnp.round(m[:, 0]).astype(jnp.int32)
    s1 = m[:, 1]
    if two:
        d = jnp.sqrt(jnp.maximum(2 * m[:, 2] - s1 * s1, 0.0))
        lo = jnp.where(count == 2, (s1 - d) / 2, s1)
        hi = jnp.where(count == 2, (s1 + d) / 2, s1)
    else:
        lo = hi = s1
    cols = jnp.clip(jnp.round(jnp.stack([lo, hi])), 0, n - 1).astype(jnp.int32)
    vals = s.reshape(-1)[cols + n * jnp.arange(k, dtype=jnp.int32)]
    ok = jnp.stack([(count >= 1) & (count <= decoded(n)), count == 2])
    return StepSpikes(count, cols, jnp.where(ok, vals, 0))


def per_spike_currents(s: Array, w: Array, sp: StepSpikes | None = None) -> Array:
    """``s @ w`` (``[K, N_pre] @ [N_pre, N]``) as sums of weight rows: each step's one or two
    spiking neurons (:func:`step_spikes`) add their rows of ``w`` times their counts (two
    gathers of ``[K, N]``, no list of steps), and the few steps with more spikes add theirs
    (:func:`each_spike_currents` over a list of capacity ``K/16``, or a product with those
    steps of ``s`` when there are more of them, a ``lax.cond``). Exact: the same terms, summed
    in another order."""
    k, n = s.shape
    sp = step_spikes(s) if sp is None else sp
    v = sp.vals.astype(w.dtype)
    cur = v[0][:, None] * w[sp.cols[0]] + v[1][:, None] * w[sp.cols[1]]
    more = sp.n > decoded(n)
    cap = max(1, k // 16)

    def few():
        (idx,) = jnp.nonzero(more, size=cap, fill_value=k)
        rows = jnp.where((idx < k)[:, None], s[jnp.minimum(idx, k - 1)], 0).astype(w.dtype)
        return cur.at[idx].add(each_spike_currents(rows, w), mode="drop")

    def many():
        return cur + input_currents(jnp.where(more[:, None], s, 0), w)

    return jax.lax.cond(jnp.sum(more) <= cap, few, many)


def spike_sums(s: Array, sp: StepSpikes, rows: Array, valid: Array, rhs: Array) -> Array:
    """``s[rows]^T @ rhs`` (``[R]`` listed steps of ``s`` ``[K, N_pre]``, ``rhs`` ``[R, C]``
    -> ``[N_pre, C]``) as sums at the spikes: each listed step's one or two spiking neurons
    (``sp``, :func:`step_spikes`) add its row of ``rhs`` times their counts to their sums (two
    scatter-adds of ``[R, C]``), and the few steps with more spikes add theirs (:func:`per_spike`
    over a list of capacity ``R/4``, or over all rows when there are more of them, a
    ``lax.cond``). ``valid`` ``[R]`` marks the real entries of ``rows``. ``spikes x C``
    additions instead of ``N_pre x R x C`` multiply-adds; exact: the same terms, summed in
    another order."""
    n_pre = s.shape[1]
    r = rows.shape[0]
    cols = sp.cols[:, rows]
    vals = jnp.where(valid, sp.vals[:, rows], 0).astype(rhs.dtype)
    seg = jnp.where(vals != 0, cols, n_pre)  # out of range: dropped
    total = jnp.zeros((n_pre, rhs.shape[1]), rhs.dtype)
    total = total.at[seg[0]].add(vals[0][:, None] * rhs, mode="drop")
    total = total.at[seg[1]].add(vals[1][:, None] * rhs, mode="drop")
    more = (sp.n[rows] > decoded(n_pre)) & valid
    cap = max(1, r // 4)

    def few():
        (j,) = jnp.nonzero(more, size=cap, fill_value=0)
        ok = jnp.arange(cap) < jnp.sum(more)
        return per_spike(jnp.where(ok[:, None], s[rows[j]], 0).astype(rhs.dtype), rhs[j])

    def many():
        return per_spike(jnp.where(more[:, None], s[rows], 0).astype(rhs.dtype), rhs)

    return total + jax.lax.cond(jnp.sum(more) <= cap, few, many)


def event_layer_errors(
    delta: Array,
    err0: DoubleExpState,
    e_out: Array,
    weights,
    feedback: tuple,
    kind: str,
    filt: tuple[float, float, float],
) -> tuple:
    """:func:`ssjax.rules.feedback.layer_errors` with the top hidden layer's error computed
    from the output's spikes: the error filter ``alpha`` is linear and time-invariant, so

        e_{L-1} = (alpha * delta) @ F^T = alpha * (delta @ F^T),

    with the filter's carried state ``err0`` (``[N_L]`` each) mapped through ``F^T`` too. The
    unfiltered error ``delta = S^ - S`` ``[K, N_L]`` is as sparse as the target and output
    spikes, so ``delta @ F^T`` is a sum of feedback rows (:func:`per_spike_currents`) and the
    dense ``[K, N_L] @ [N_L, N_{L-1}]`` product becomes one filter scan of ``[K, N_{L-1}]``.
    Deeper layers take the product of the layer above's error, as before. ``e_out``: the
    filtered output error; ``filt``: ``(tau_rise, tau_decay, dt)``. Exact: the same sums, in
    another order. Feed-forward ``weights``, ``kind`` not ``none``.
    """
    n = len(weights)
    f = feedback_matrix(weights, feedback, kind, n - 1)
    cur = per_spike_currents(delta, f.T)
    state = DoubleExpState(matmul(err0.rise, f.T), matmul(err0.decay, f.T))
    e, _ = double_exp_filter(cur, *filt, state=state, overwrite=True)
    errs = [e, e_out]
    for l in range(n - 2, 0, -1):
        errs.insert(0, matmul(errs[0], feedback_matrix(weights, feedback, kind, l).T))
    return tuple(errs)


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
    sp = step_spikes(s) if segment else None
    active = spike_steps(spikes) if sp is None else sp.n > 0
    n_rows = jnp.sum(active)
    size = capacities(max_rows, k)[-1]
    signals = functools.partial(post_signals, *post_args, psp=params, sig_fn=sig_fn)

    def compact():
        rows_h, sums, (a0, b0) = signals(slots=(spike_slots(active, size), size + 1))

        def gathered(rows, valid):
            rows = jnp.minimum(rows, k - 1)
            groups = [g[: rows.shape[0]] for g in rows_h] + [kern[rows]]
            cols = np.cumsum([g.shape[-1] for g in groups])[:-1]
            rhs = jnp.concatenate(groups, axis=1)  # the listed rows are few: one sum for all
            if sp is not None:
                total = spike_sums(s, sp, rows, valid, rhs)
            else:
                s_rows = jnp.where(valid[:, None], s[rows], 0.0)
                total = jnp.matmul(s_rows.T, rhs, precision=_HIGHEST)
            return jnp.split(total, list(cols), axis=1)

        # at the spikes, the work grows with the spikes, not the capacity: two capacities
        # (K/4, K/2) compile 100 MB less than five for the scale benchmark (measured)
        levels = 2 if sp is not None else None
        return on_capacity(active, max_rows, gathered, levels), sums, a0, b0

    def dense():
        h, sums, (a0, b0) = signals()
        return [jnp.matmul(s.T, g, precision=_HIGHEST) for g in (*h, kern)], sums, a0, b0

    (*summed, fin), sums, a0, b0 = jax.lax.cond(n_rows <= size, compact, dense)
    _, _, c = params.membrane_coeffs()
    return with_carried(params, free, summed, fin, psp0, [c * b for b in b0], a0), sums
