"""Tests for ssjax.tasks.randman: manifold formula, smoothness, latency dataset, split, raster."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssjax.tasks.randman import (
    Randman,
    eval_randman,
    make_randman,
    manifold_spike_times,
    randman_dataset,
    randman_heldout,
    spectrum,
    spike_times_to_raster,
    train_test_split,
)

DT = 1e-4
DURATION = 0.05
T_OFFSET = 0.005
N_STEPS = round((T_OFFSET + DURATION) / DT)


def _dataset(seed=0, **kw):
    args = dict(n_classes=4, n_units=20, dim=1, n_samples=100)
    args.update(kw)
    return randman_dataset(jax.random.PRNGKey(seed), duration=DURATION, t_offset=T_OFFSET, **args)


def _ncm_accuracy(times, labels, key):
    """Nearest-class-mean classifier on spike-time vectors: train on the split, score the test."""
    x_tr, y_tr, x_te, y_te = train_test_split(times, labels, key)
    means = np.stack([x_tr[y_tr == c].mean(0) for c in range(labels.max() + 1)])
    pred = np.argmin(((x_te[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    return float((pred == y_te).mean())


def test_parameters_shapes_ranges_and_zero_dc_term():
    rm = make_randman(jax.random.PRNGKey(0), n_units=50, dim=3, n_freq=32, alpha=2.0)
    assert all(a.shape == (50, 3, 32) for a in rm)
    np.testing.assert_array_equal(np.asarray(rm.amp[..., 0]), 0.0)  # k = 0 contributes nothing
    raw = np.asarray(rm.amp[..., 1:] / spectrum(32, 2.0)[1:])  # amp = a * s_k with a ~ U[0, 1)
    for u in (raw, np.asarray(rm.freq), np.asarray(rm.phase)):
        assert u.min() >= 0.0 and u.max() < 1.0
        assert abs(u.mean() - 0.5) < 0.02  # 4650+ uniform draws: sd of the mean ~0.004
    np.testing.assert_allclose(np.asarray(spectrum(3, 2.0)), [1 / 2, 1 / 5, 1 / 10], rtol=1e-6)


def test_eval_matches_independent_numpy_loops():
    rm = make_randman(jax.random.PRNGKey(1), n_units=5, dim=3, n_freq=16, alpha=2.0)
    x = np.asarray(jax.random.uniform(jax.random.PRNGKey(2), (40, 3)), np.float64)
    amp, freq, phase = (np.asarray(a, np.float64) for a in rm)
    want = np.ones((40, 5))
    for i in range(5):
        for d in range(3):
            f = np.zeros(40)
            for k in range(16):
                arg = k * x[:, d] * freq[i, d, k] + phase[i, d, k]
                f += amp[i, d, k] * np.sin(2 * np.pi * arg)
            want[:, i] *= f
    got = np.asarray(eval_randman(rm, jnp.asarray(x, jnp.float32)))
    assert got.shape == (40, 5)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    jitted = jax.jit(eval_randman)(rm, jnp.asarray(x, jnp.float32))
    np.testing.assert_allclose(np.asarray(jitted), got, atol=1e-6)


def test_vmapped_construction_equals_single_draws():
    keys = jax.random.split(jax.random.PRNGKey(3), 3)
    stacked = jax.vmap(lambda k: make_randman(k, 4, 2))(keys)
    for c in range(3):
        one = make_randman(keys[c], 4, 2)
        for a, b in zip(one, stacked, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b[c]))


@pytest.mark.parametrize("dim", [1, 2])
def test_manifold_is_smooth_with_spectral_lipschitz_bound(dim):
    # |f'_{i,d}| <= sum_k amp_k 2 pi k c_k =: L_{i,d} and |f_{i,d}| <= sum_k amp_k =: B_{i,d}, so
    # along a step v, |dy_i| <= sum_d |v_d| L_{i,d} prod_{e != d} B_{i,e} (mean value theorem).
    # Worst case over draws (a, c < 1): L <= 2 pi sum_k k s_k, about 15.1 for F = 32, alpha = 2.
    rm = make_randman(jax.random.PRNGKey(4), n_units=30, dim=dim)
    amp, freq = np.asarray(rm.amp, np.float64), np.asarray(rm.freq, np.float64)
    k = np.arange(32)
    lip = (amp * 2 * np.pi * k * freq).sum(-1)  # [M, D]
    bnd = amp.sum(-1)  # [M, D]
    s = np.asarray(spectrum(32, 2.0), np.float64)
    l_max = 2 * np.pi * (k[1:] * s[1:]).sum()
    assert 14.0 < l_max < 16.0 and lip.max() <= l_max and bnd.max() <= s[1:].sum()

    kx, kv = jax.random.split(jax.random.PRNGKey(5))
    x = np.asarray(jax.random.uniform(kx, (2000, dim), minval=0.0, maxval=1.0 - 1e-3))
    v = np.abs(np.asarray(jax.random.normal(kv, (2000, dim))))
    v *= 1e-3 / np.linalg.norm(v, axis=1, keepdims=True)  # |step| = 1e-3, stays inside [0, 1]^D
    dy = np.abs(np.asarray(eval_randman(rm, x + v)) - np.asarray(eval_randman(rm, x)))  # [S, M]
    others = np.prod(bnd, axis=1, keepdims=True) / np.where(bnd > 0, bnd, 1.0)  # prod_{e != d}
    bound = (v[:, None, :] * (lip * others)[None]).sum(-1)  # [S, M]
    assert np.all(dy <= bound + 1e-5)  # 1e-5: float32 rounding of y (|y| < 1)
    assert dy.max() <= 1e-3 * l_max * s[1:].sum() ** (dim - 1) + 1e-5
    # not vacuous: every unit moves, and far more across [0, 1]^D than across one step
    y = np.asarray(eval_randman(rm, x))
    assert np.all(dy.max(0) > 0) and np.all(y.max(0) - y.min(0) > 10 * dy.max(0))


def test_dataset_single_spike_per_unit_in_window_on_grid():
    times, labels = _dataset()
    assert times.shape == (400, 20) and times.dtype == np.float32
    assert labels.shape == (400,) and labels.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(labels), [100] * 4)
    assert np.all(np.isfinite(times))
    assert times.min() >= np.float32(T_OFFSET) and times.max() < np.float32(T_OFFSET + DURATION)
    bins = np.rint(times.astype(np.float64) / DT)
    np.testing.assert_allclose(times, bins * DT, atol=1e-8)  # on the dt grid
    first, last = round(T_OFFSET / DT), round((T_OFFSET + DURATION) / DT) - 1
    # global min-max per unit: over the whole dataset every unit reaches both ends of the window
    np.testing.assert_array_equal(bins.min(0), first)
    np.testing.assert_array_equal(bins.max(0), last)
    raster = spike_times_to_raster(times, DT, N_STEPS)
    np.testing.assert_array_equal(raster.sum(axis=1), 1)  # exactly one spike per unit per sample


def test_dataset_deterministic_in_key():
    t0, l0 = _dataset(seed=11)
    t1, l1 = _dataset(seed=11)
    t2, l2 = _dataset(seed=12)
    np.testing.assert_array_equal(t0, t1)
    np.testing.assert_array_equal(l0, l1)
    assert not np.array_equal(t0, t2) and not np.array_equal(l0, l2)


def test_classes_are_separable_by_nearest_class_mean():
    # measured: 0.9375, 0.9875, 0.85 for seeds 0-2 (chance 0.25); threshold kept conservative
    accs = [_ncm_accuracy(*_dataset(seed=s), jax.random.PRNGKey(100 + s)) for s in range(3)]
    assert min(accs) > 0.6


def test_negative_control_same_manifold_is_at_chance():
    # Two classes from one manifold: labels carry no information, so accuracy ~ Binomial(200, 0.5)
    # / 200 (sd 0.035). Measured 0.5, 0.5, 0.435 for seeds 0-2; +-0.12 is ~3.4 sd.
    rm = make_randman(jax.random.PRNGKey(7), n_units=20, dim=1)
    twins = Randman(*(jnp.stack([a, a]) for a in rm))
    for s in range(3):
        times, labels = manifold_spike_times(
            jax.random.PRNGKey(s), twins, n_samples=500, duration=DURATION, t_offset=T_OFFSET
        )
        acc = _ncm_accuracy(times, labels, jax.random.fold_in(jax.random.PRNGKey(s), 1))
        assert abs(acc - 0.5) < 0.12


def test_split_is_stratified_disjoint_and_complete():
    labels = np.repeat(np.arange(3, dtype=np.int32), [50, 30, 21])  # unbalanced on purpose
    ids = np.arange(labels.size)[:, None]  # the sample index as "times" to track identity
    x_tr, y_tr, x_te, y_te = train_test_split(ids, labels, jax.random.PRNGKey(0), 0.2)
    tr, te = x_tr[:, 0], x_te[:, 0]
    assert np.intersect1d(tr, te).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([tr, te])), np.arange(labels.size))
    np.testing.assert_array_equal(labels[tr], y_tr)
    np.testing.assert_array_equal(labels[te], y_te)
    np.testing.assert_array_equal(np.bincount(y_te), [10, 6, 4])  # round(0.2 * n_c)
    again = train_test_split(ids, labels, jax.random.PRNGKey(0), 0.2)
    np.testing.assert_array_equal(again[2], x_te)
    with pytest.raises(ValueError, match="test_fraction"):
        train_test_split(ids, labels, jax.random.PRNGKey(0), 1.0)


def test_raster_one_spike_at_rounded_bin():
    times, _ = _dataset(seed=3, n_samples=10)
    raster = spike_times_to_raster(times, DT, N_STEPS)
    assert raster.shape == (40, N_STEPS, 20) and raster.dtype == np.uint8
    np.testing.assert_array_equal(raster.sum(axis=1), 1)
    want = np.vectorize(lambda t: int(round(float(t) / DT)))(times)
    np.testing.assert_array_equal(raster.argmax(axis=1), want)
    assert raster.sum() == times.size
    with pytest.raises(ValueError, match="outside"):
        spike_times_to_raster(times, DT, N_STEPS - 1)


def test_rejects_times_off_the_dt_grid():
    with pytest.raises(ValueError, match="duration"):
        randman_dataset(
            jax.random.PRNGKey(0), n_classes=2, n_units=3, dim=1, n_samples=4, duration=0.05005
        )
    assert math.isclose(N_STEPS * DT, T_OFFSET + DURATION)


def test_heldout_samples_are_unseen_draws_of_the_same_manifolds():
    kw = dict(n_classes=4, n_units=20, dim=1, duration=DURATION, t_offset=T_OFFSET)
    key = jax.random.PRNGKey(0)
    train, y_train = randman_dataset(key, n_samples=50, **kw)
    test, y_test = randman_heldout(key, n_samples=50, n_heldout=30, **kw)
    assert test.shape == (120, 20) and np.bincount(y_test).tolist() == [30] * 4
    assert test.min() >= T_OFFSET - 1e-7 and test.max() < T_OFFSET + DURATION
    # not seen in training: no held-out spike pattern equals a training sample's
    assert not (test[:, None] == train[None]).all(-1).any()
    np.testing.assert_array_equal(randman_heldout(key, n_samples=50, n_heldout=30, **kw)[0], test)

    def nearest(x):  # 1-nearest-neighbour label among the training samples
        return y_train[np.argmin(((x[:, None] - train[None]) ** 2).sum(-1), axis=1)]

    # the same manifolds: held-out samples lie next to training samples of their own class ...
    assert np.mean(nearest(test) == y_test) >= 0.95
    # ... which is not true of another key's manifolds
    other, y_other = randman_heldout(jax.random.PRNGKey(1), n_samples=50, n_heldout=30, **kw)
    assert np.mean(nearest(other) == y_other) < 0.7
