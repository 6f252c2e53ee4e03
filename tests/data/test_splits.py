"""Splits: disjoint, covering, deterministic from the key, stratified by label."""

import jax
import numpy as np
import pytest

from ssjax.data.splits import split_indices, split_trials
from ssjax.data.trials import TrialSet


def test_split_is_a_partition_stratified_and_deterministic():
    labels = np.repeat([0, 1, 2], [40, 20, 60])
    key = jax.random.PRNGKey(0)
    parts = split_indices(labels, key, (0.7, 0.2, 0.1))
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(labels.size))
    for p, f in zip(parts, (0.7, 0.2, 0.1), strict=True):
        # each class in proportion, to within one trial per class
        np.testing.assert_allclose(
            np.bincount(labels[p], minlength=3), f * np.array([40, 20, 60]), atol=1
        )
    again = split_indices(labels, key, (0.7, 0.2, 0.1))
    for a, b in zip(parts, again, strict=True):
        np.testing.assert_array_equal(a, b)
    other = split_indices(labels, jax.random.PRNGKey(1), (0.7, 0.2, 0.1))
    assert not np.array_equal(parts[0], other[0])  # negative control: another key
    plain = split_indices(labels, key, (0.5, 0.5), stratify=False)
    assert [p.size for p in plain] == [60, 60]


def test_bad_fractions_raise():
    with pytest.raises(ValueError, match="sum to 1"):
        split_indices([0, 1], jax.random.PRNGKey(0), (0.5, 0.6))
    with pytest.raises(ValueError, match=">= 0"):
        split_indices([0, 1], jax.random.PRNGKey(0), (1.5, -0.5))


def test_split_trials_keeps_the_trials():
    rng = np.random.default_rng(0)
    times = [rng.uniform(0, 0.01, rng.integers(0, 5)) for _ in range(20)]
    units = [rng.integers(0, 3, t.size) for t in times]
    ts = TrialSet.from_times(times, units, np.arange(20) % 2, n_units=3, dt=1e-3, duration=0.011)
    train, val = split_trials(ts, jax.random.PRNGKey(3), (0.8, 0.2))
    assert (train.n_trials, val.n_trials) == (16, 4)
    assert train.n_steps == val.n_steps == ts.n_steps and val.n_classes == 2
    idx_train, _ = split_indices(np.asarray(ts.labels), jax.random.PRNGKey(3), (0.8, 0.2))
    for j, i in enumerate(idx_train):
        np.testing.assert_array_equal(train.trial_raster(j), ts.trial_raster(i))
