"""Minibatches of labelled trials, made dense on the device; epochs as arrays of trial indices.

An epoch is a fixed array of trial indices, ``idx [n_batches, B]`` with a validity ``mask``
(:func:`epoch_indices`), so that a whole epoch of training is one ``lax.scan`` over its rows::

    idx, mask = epoch_indices(epoch_key(key, epoch), trials.n_trials, B, drop_last=False)
    def step(carry, batch):
        x, labels = dense_batch(trials, *batch)           # x [T, B, N], labels [B]
        ...
    carry, _ = jax.lax.scan(step, carry, (idx, mask))

:func:`dense_batch` builds one batch's time-major ``x [T, B, N]`` from the device-resident
events of :class:`ssjax.data.trials.TrialSet`; only the batch is ever dense. With ``c_b`` the
spike count of batch member ``b`` (0 where masked), ``e_b = c_0 + ... + c_b`` and a static
capacity ``C`` (:meth:`TrialSet.with_batch`)::

    j   = [0, C)                          one slot per gathered spike
    b   = searchsorted(e, j, "right")     the member slot j belongs to
    src = offsets[idx[b]] + j - (e_b - c_b)
    x   = zeros[T, B, N].at[steps[src], b, units[src]].add(1)   for j < e_{B-1} (rest dropped)

``C`` is the sum of the ``B`` largest trial counts, computed on the host, so no batch of
distinct trials loses a spike. Spikes of one unit in one step add up (``spikes="count"``, the
default, as ssjax's rasters and :class:`ssjax.pattern.EventPattern` count them) or are clipped
to 1 (``spikes="binary"``).

Shuffling: ``jax.random.permutation`` of the trials from an explicit key, one per epoch
(:func:`epoch_key`: ``fold_in(run_key, epoch)``). The last, incomplete batch is dropped
(``drop_last=True``: every batch full, some trials unseen this epoch) or padded
(``drop_last=False``, the default: every trial seen exactly once per epoch; padded slots have
``mask`` False, index 0, an all-zero ``x`` and label 0, and a loss must weight by ``mask``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ssjax._types import Array, PRNGKey
from ssjax.data.trials import TrialSet

__all__ = ["SPIKE_MODES", "dense_batch", "epoch_indices", "epoch_key", "n_batches"]

SPIKE_MODES = ("count", "binary")


def epoch_key(key: PRNGKey, epoch) -> PRNGKey:
    """The shuffling key of ``epoch`` (int, may be traced): ``jax.random.fold_in(key, epoch)``,
    with ``key`` derived from the run seed; the same run and epoch give the same order."""
    return jax.random.fold_in(key, epoch)


def n_batches(n_trials: int, batch_size: int, drop_last: bool = False) -> int:
    """Batches per epoch: ``floor(n / B)`` with ``drop_last``, else ``ceil(n / B)``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return n_trials // batch_size if drop_last else -(-n_trials // batch_size)


@functools.partial(jax.jit, static_argnames=("n_trials", "batch_size", "drop_last", "shuffle"))
def _epoch_indices(key, n_trials: int, batch_size: int, drop_last: bool, shuffle: bool):
    nb = n_batches(n_trials, batch_size, drop_last)
    order = (
        jax.random.permutation(key, n_trials).astype(jnp.int32)
        if shuffle
        else jnp.arange(n_trials, dtype=jnp.int32)
    )
    size = nb * batch_size
    if size <= n_trials:  # drop_last: the tail of the permutation waits for another epoch
        idx, mask = order[:size], jnp.ones(size, bool)
    else:  # padded: index 0, masked out
        pad = size - n_trials
        idx = jnp.concatenate([order, jnp.zeros(pad, jnp.int32)])
        mask = jnp.arange(size) < n_trials
    return idx.reshape(nb, batch_size), mask.reshape(nb, batch_size)


def epoch_indices(
    key: PRNGKey | None,
    n_trials: int,
    batch_size: int,
    *,
    drop_last: bool = False,
    shuffle: bool = True,
) -> tuple[Array, Array]:
    """One epoch's batches: ``(idx [n_batches, B] int32, mask [n_batches, B] bool)``.

    ``idx`` is a permutation of the trials drawn from ``key`` (or ``0 .. n - 1`` in order with
    ``shuffle=False``, key unused), cut into rows of ``batch_size``; see the module docstring
    for ``drop_last`` and the padding. Jitted, ``n_trials`` and ``batch_size`` static.
    Raises ValueError when ``drop_last`` leaves no batch.
    """
    n_trials, batch_size = int(n_trials), int(batch_size)
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    if n_batches(n_trials, batch_size, drop_last) == 0:
        raise ValueError(
            f"drop_last with batch_size {batch_size} > {n_trials} trials leaves no batch"
        )
    if shuffle and key is None:
        raise ValueError("shuffle needs a jax.random key (epoch_key(run_key, epoch))")
    k = jax.random.PRNGKey(0) if key is None else key
    return _epoch_indices(k, n_trials, batch_size, bool(drop_last), bool(shuffle))


@functools.partial(jax.jit, static_argnames=("dtype", "spikes"))
def dense_batch(
    trials: TrialSet,
    idx: Array,
    mask: Array | None = None,
    *,
    dtype="float32",
    spikes: str = "count",
) -> tuple[Array, Array]:
    """Trials ``idx`` ``[B]`` (int, distinct where ``mask``) as ``(x [T, B, N], labels [B])``.

    ``x`` holds spike counts (``spikes="count"``) or 0/1 (``"binary"``) in ``dtype``, built on
    the device by the gather of the module docstring with ``trials.capacity`` slots; ``labels``
    int32. ``mask`` ``[B]`` bool (None: all valid): masked members get an all-zero ``x`` and
    label 0. ``trials`` needs :meth:`TrialSet.with_batch` with ``batch_size >= B``. Jitted,
    ``dtype`` and ``spikes`` static; ``trials`` may live on the device.
    """
    if spikes not in SPIKE_MODES:
        raise ValueError(f"spikes must be one of {SPIKE_MODES}, got {spikes!r}")
    if trials.capacity is None or trials.batch_size is None:
        raise ValueError(
            "dense_batch needs the batch capacity: call trials.with_batch(batch_size) first"
        )
    idx = jnp.asarray(idx, jnp.int32)
    if idx.ndim != 1:
        raise ValueError(f"idx must be [B], got shape {idx.shape}")
    B = idx.shape[0]
    if B > trials.batch_size:
        raise ValueError(
            f"batch of {B} trials, but the capacity is counted for {trials.batch_size}: "
            f"call with_batch({B})"
        )
    valid_b = jnp.ones(B, bool) if mask is None else jnp.asarray(mask, bool)
    T, N, C = trials.n_steps, trials.n_units, trials.capacity
    labels = jnp.where(valid_b, jnp.asarray(trials.labels)[idx], 0).astype(jnp.int32)
    x = jnp.zeros((T, B, N), dtype)
    if trials.n_events == 0 or C == 0 or B == 0:
        return x, labels
    off = jnp.asarray(trials.offsets)
    counts = jnp.where(valid_b, off[idx + 1] - off[idx], 0)
    ends = jnp.cumsum(counts)
    j = jnp.arange(C, dtype=jnp.int32)
    b = jnp.minimum(jnp.searchsorted(ends, j, side="right"), B - 1).astype(jnp.int32)
    used = j < ends[-1]
    src = jnp.where(used, off[idx[b]] + j - (ends[b] - counts[b]), 0)
    t = jnp.where(used, jnp.asarray(trials.steps)[src], T)  # step T: dropped by the scatter
    at = x.at[t, b, jnp.asarray(trials.units)[src]]
    one = jnp.ones((), dtype)
    x = at.add(one, mode="drop") if spikes == "count" else at.max(one, mode="drop")
    return x, labels
