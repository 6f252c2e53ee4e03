"""randman as trials: the task's generator, one spike per unit and trial."""

import jax
import numpy as np
import pytest

from ssjax.data.randman import randman_heldout_trials, randman_trials
from ssjax.tasks.randman import randman_dataset


def test_trials_are_the_generators_samples():
    key = jax.random.PRNGKey(0)
    kw = dict(n_classes=3, n_units=7, dim=1, n_samples=5, dt=1e-3, duration=0.02, t_offset=0.002)
    ts = randman_trials(key, tail=0.01, **kw)
    times, labels = randman_dataset(key, **kw)
    assert (ts.n_trials, ts.n_units, ts.n_steps, ts.n_classes) == (15, 7, 32, 3)
    np.testing.assert_array_equal(ts.labels, labels)
    assert np.all(ts.counts == 7)
    for i in range(ts.n_trials):
        ref = np.zeros((32, 7))
        ref[np.rint(times[i].astype(np.float64) / 1e-3).astype(int), np.arange(7)] = 1
        np.testing.assert_array_equal(ts.trial_raster(i), ref)


@pytest.mark.slow
def test_heldout_trials():
    key = jax.random.PRNGKey(0)
    kw = dict(n_classes=3, n_units=7, dim=1, n_samples=5, dt=1e-3, duration=0.02, t_offset=0.002)
    held = randman_heldout_trials(key, 2, tail=0.01, **kw)
    assert held.n_trials == 6 and held.n_steps == 32 and np.all(held.counts == 7)
    assert np.all(np.bincount(np.asarray(held.labels)) == 2)
