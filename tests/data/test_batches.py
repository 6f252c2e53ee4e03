"""Device-side minibatches: equal to a numpy densification loop, epochs as index arrays in a
scan, reproducible shuffling, drop_last versus padding with a mask."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssjax.data.batches import dense_batch, epoch_indices, epoch_key, n_batches
from ssjax.data.trials import TrialSet


def _trials(seed=0, n_trials=11, n_units=6, n_steps=25, max_events=30):
    """Ragged random trials with repeated (step, unit) pairs and some empty trials."""
    rng = np.random.default_rng(seed)
    times, units = [], []
    for i in range(n_trials):
        k = 0 if i % 5 == 3 else int(rng.integers(1, max_events))
        s = rng.integers(0, n_steps, k)
        s[: k // 3] = s[0] if k else s[: k // 3]  # force repeats on one step
        times.append(s * 1e-3)
        units.append(rng.integers(0, n_units, k))
    labels = rng.integers(0, 4, n_trials)
    return TrialSet.from_times(
        times, units, labels, n_units=n_units, dt=1e-3, duration=n_steps * 1e-3, n_classes=4
    )


def _numpy_batch(ts, idx, mask, binary=False):
    """The independent route: a loop over the events of each trial into [T, B, N]."""
    x = np.zeros((ts.n_steps, len(idx), ts.n_units))
    labels = np.zeros(len(idx), np.int64)
    off = np.asarray(ts.offsets)
    for b, (i, m) in enumerate(zip(idx, mask, strict=True)):
        if not m:
            continue
        labels[b] = ts.labels[i]
        for e in range(off[i], off[i + 1]):
            t, n = ts.steps[e], ts.units[e]
            x[t, b, n] = 1 if binary else x[t, b, n] + 1
    return x, labels


@pytest.mark.parametrize("spikes", ["count", "binary"])
def test_dense_batch_equals_a_numpy_loop(spikes):
    ts = _trials().with_batch(4)
    dev = jax.device_put(ts)
    rng = np.random.default_rng(1)
    for _ in range(3):
        idx = rng.choice(ts.n_trials, 4, replace=False)
        mask = np.array([True, True, False, True])
        x, labels = dense_batch(dev, idx, mask, spikes=spikes)
        ref_x, ref_l = _numpy_batch(ts, idx, mask, binary=spikes == "binary")
        assert x.shape == (ts.n_steps, 4, ts.n_units) and x.dtype == jnp.float32
        np.testing.assert_array_equal(np.asarray(x), ref_x)
        np.testing.assert_array_equal(np.asarray(labels), ref_l)
    if spikes == "count":
        assert ref_x.max() > 1  # the repeats were exercised: count and binary differ


def test_worst_case_batch_loses_nothing_and_dtype_is_honoured():
    ts = _trials(seed=2).with_batch(3)
    idx = np.argsort(ts.counts)[::-1][:3]  # the three busiest trials fill the capacity exactly
    assert ts.counts[idx].sum() == ts.capacity
    x, _ = dense_batch(ts, idx, dtype="bfloat16")
    assert x.dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(x, np.float32), _numpy_batch(ts, idx, [1, 1, 1])[0])
    assert float(jnp.sum(x.astype(jnp.float32))) == ts.capacity


def test_dense_batch_needs_a_capacity_for_the_batch_size():
    ts = _trials()
    with pytest.raises(ValueError, match="with_batch"):
        dense_batch(ts, np.arange(2))
    with pytest.raises(ValueError, match="counted for 2"):
        dense_batch(ts.with_batch(2), np.arange(3))
    with pytest.raises(ValueError, match="spikes must be"):
        dense_batch(ts.with_batch(2), np.arange(2), spikes="clip")


def test_shuffle_reproducible_from_key_and_differs_across_epochs():
    run_key = jax.random.PRNGKey(7)
    a, _ = epoch_indices(epoch_key(run_key, 3), 50, 8)
    b, _ = epoch_indices(epoch_key(run_key, 3), 50, 8)
    c, _ = epoch_indices(epoch_key(run_key, 4), 50, 8)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))  # negative control: a new epoch
    ordered, _ = epoch_indices(None, 50, 8, shuffle=False)
    np.testing.assert_array_equal(np.asarray(ordered).reshape(-1)[:50], np.arange(50))


@pytest.mark.parametrize("n_trials", [48, 50])
def test_padding_sees_every_trial_once_and_drop_last_keeps_full_batches(n_trials):
    key = jax.random.PRNGKey(0)
    idx, mask = epoch_indices(key, n_trials, 8, drop_last=False)
    assert idx.shape == (n_batches(n_trials, 8), 8) == (-(-n_trials // 8), 8)
    seen = np.asarray(idx)[np.asarray(mask)]
    np.testing.assert_array_equal(np.sort(seen), np.arange(n_trials))  # each exactly once
    assert int((~np.asarray(mask)).sum()) == idx.size - n_trials
    idx, mask = epoch_indices(key, n_trials, 8, drop_last=True)
    assert idx.shape == (n_trials // 8, 8) and bool(np.all(np.asarray(mask)))
    flat = np.asarray(idx).reshape(-1)
    assert np.unique(flat).size == flat.size  # distinct trials
    with pytest.raises(ValueError, match="leaves no batch"):
        epoch_indices(key, 5, 8, drop_last=True)
    with pytest.raises(ValueError, match="needs a jax.random key"):
        epoch_indices(None, 5, 2)


def test_an_epoch_is_one_scan_over_the_index_arrays():
    ts = jax.device_put(_trials(seed=3, n_trials=13).with_batch(4))
    idx, mask = epoch_indices(epoch_key(jax.random.PRNGKey(1), 0), ts.n_trials, 4)

    @jax.jit
    def epoch(trials, idx, mask):
        def step(carry, batch):
            x, labels = dense_batch(trials, *batch)
            per_class = jnp.zeros(trials.n_classes).at[labels].add(batch[1] * x.sum((0, 2)))
            return carry + per_class, x.sum((0, 2))

        return jax.lax.scan(step, jnp.zeros(trials.n_classes), (idx, mask))

    per_class, per_member = epoch(ts, idx, mask)
    # every trial once: the spikes of the epoch, per class, equal those of the data set
    counts = np.asarray(ts.counts)
    labels = np.asarray(ts.labels)
    ref = np.bincount(labels, weights=counts, minlength=ts.n_classes)
    np.testing.assert_array_equal(np.asarray(per_class), ref)
    # and the scan's batches equal dense_batch called batch by batch
    for r in range(idx.shape[0]):
        x, _ = dense_batch(ts, idx[r], mask[r])
        np.testing.assert_array_equal(np.asarray(per_member[r]), np.asarray(x.sum((0, 2))))


def test_vmap_over_index_rows_equals_a_loop():
    """Seeds with their own shuffles: a vmap over index rows, as the seed vmap would do it."""
    ts = jax.device_put(_trials(seed=4).with_batch(4))
    idx, mask = epoch_indices(jax.random.PRNGKey(2), ts.n_trials, 4)
    xs, ls = jax.vmap(lambda i, m: dense_batch(ts, i, m))(idx, mask)
    for r in range(idx.shape[0]):
        x, labels = dense_batch(ts, idx[r], mask[r])
        np.testing.assert_array_equal(np.asarray(xs[r]), np.asarray(x))
        np.testing.assert_array_equal(np.asarray(ls[r]), np.asarray(labels))
