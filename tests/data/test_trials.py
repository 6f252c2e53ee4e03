"""TrialSet: CSR layout, binning, validation, O(events) memory, pytree, capacity, subsets."""

import jax
import numpy as np
import pytest

from ssjax.data.trials import TrialSet, batch_capacity, time_to_step


def _random_trials(rng, n_trials=7, n_units=5, n_steps=20, max_events=15):
    """Per-trial step/unit lists (with repeats) and labels, drawn with numpy."""
    steps, units = [], []
    for _ in range(n_trials):
        k = int(rng.integers(0, max_events + 1))
        steps.append(rng.integers(0, n_steps, k))
        units.append(rng.integers(0, n_units, k))
    labels = rng.integers(0, 3, n_trials)
    return steps, units, labels


def _from_lists(steps, units, labels, n_units, n_steps, **kw):
    off = np.concatenate([[0], np.cumsum([len(s) for s in steps])])
    return TrialSet(
        np.concatenate(steps),
        np.concatenate(units),
        off,
        labels,
        n_units=n_units,
        n_steps=n_steps,
        dt=1e-3,
        **kw,
    )


def test_layout_sorted_per_trial_and_raster_matches_the_events():
    rng = np.random.default_rng(0)
    steps, units, labels = _random_trials(rng)
    ts = _from_lists(steps, units, labels, 5, 20, n_classes=3)
    assert ts.n_trials == 7 and ts.n_events == sum(map(len, steps))
    np.testing.assert_array_equal(ts.counts, [len(s) for s in steps])
    for i in range(ts.n_trials):
        s, u = ts.trial(i)
        key = s.astype(np.int64) * 5 + u
        assert np.all(np.diff(key) >= 0)  # sorted by step, then unit
        # the same multiset of events as given: a raster by an independent loop
        ref = np.zeros((20, 5))
        for t, n in zip(steps[i], units[i], strict=True):
            ref[t, n] += 1
        np.testing.assert_array_equal(ts.trial_raster(i), ref)
    assert ts.labels.dtype == np.int32 and ts.n_classes == 3


def test_memory_is_order_events_no_dense_array():
    rng = np.random.default_rng(1)
    steps, units, labels = _random_trials(rng, n_trials=30, n_units=50, n_steps=400)
    ts = _from_lists(steps, units, labels, 50, 400).with_batch(8)
    leaves = jax.tree_util.tree_leaves(ts)
    assert len(leaves) == 4
    for leaf in leaves:
        assert leaf.ndim == 1
        assert leaf.size <= max(ts.n_events, ts.n_trials + 1)
    total = sum(leaf.nbytes for leaf in leaves)
    assert total == 4 * (2 * ts.n_events + 2 * ts.n_trials + 1)  # int32, nothing else held


def test_from_times_binning_round_and_floor():
    times = [np.array([0.0, 0.0014, 0.0015, 0.0026, 0.0049999]), np.array([0.003])]
    units = [np.array([0, 1, 1, 2, 0]), np.array([2])]
    r = TrialSet.from_times(times, units, [0, 1], n_units=3, dt=1e-3, duration=0.006)
    f = TrialSet.from_times(
        times, units, [0, 1], n_units=3, dt=1e-3, duration=0.006, rounding="floor"
    )
    # rint (half to even: 1.5 -> 2) and floor, against the formulas on float64
    np.testing.assert_array_equal(r.trial(0)[0], [0, 1, 2, 3, 5])
    np.testing.assert_array_equal(f.trial(0)[0], [0, 1, 1, 2, 4])
    np.testing.assert_array_equal(time_to_step([0.0025], 1e-3), [2])
    assert r.n_steps == 6 and r.duration == pytest.approx(0.006)
    # duration None: the last occupied step + 1
    assert TrialSet.from_times(times, units, [0, 1], n_units=3, dt=1e-3).n_steps == 6


def test_out_of_range_time_error_or_drop():
    times, units = [np.array([0.001, 0.0098])], [np.array([0, 1])]
    with pytest.raises(ValueError, match=r"f\.h5: trial 0: spike at t=0\.0098 s \(tt\)"):
        TrialSet.from_times(
            times,
            units,
            [0],
            n_units=2,
            dt=1e-3,
            duration=0.009,
            source="f.h5",
            fields=("tt", "uu"),
        )
    with pytest.warns(UserWarning, match="dropped 1 of 2 spikes"):
        ts = TrialSet.from_times(
            times, units, [0], n_units=2, dt=1e-3, duration=0.009, on_out_of_range="drop"
        )
    assert ts.n_events == 1 and ts.n_steps == 9


@pytest.mark.parametrize(
    ("times", "units", "labels", "kw", "match"),
    [
        ([[0.001]], [[3]], [0], {}, r"src: trial 0: unit 3 \(units\) outside \[0, n_units=3\)"),
        ([[-0.001]], [[0]], [0], {}, "negative or not finite"),
        ([[np.nan]], [[0]], [0], {}, "negative or not finite"),
        ([[0.001]], [[0]], [5], {"n_classes": 2}, r"labels must lie in \[0, n_classes=2\)"),
        ([[0.001]], [[0]], [-1], {"n_classes": 2}, "trial 0 has label -1"),
        ([[0.001, 0.002]], [[0]], [0], {}, "trial 0: 2 spike times"),
        ([[0.001]], [[0], [1]], [0], {}, "times has 1 trials but units has 2"),
        ([[0.001]], [[0]], [0, 1], {}, "labels has 2"),
    ],
)
def test_validation_errors_name_source_and_field(times, units, labels, kw, match):
    with pytest.raises(ValueError, match=match):
        TrialSet.from_times(times, units, labels, n_units=3, dt=1e-3, source="src", **kw)


def test_constructor_checks_offsets_and_ranges():
    with pytest.raises(ValueError, match="offsets must have n_trials"):
        TrialSet([0], [0], [0, 1, 1], [0], n_units=1, n_steps=2, dt=1e-3)
    with pytest.raises(ValueError, match="rise from 0"):
        TrialSet([0, 1], [0, 0], [0, 2, 1], [0, 0], n_units=1, n_steps=2, dt=1e-3)
    with pytest.raises(ValueError, match="trial 1 has step 2"):
        TrialSet([0, 2], [0, 0], [0, 1, 2], [0, 0], n_units=1, n_steps=2, dt=1e-3)
    with pytest.raises(ValueError, match="dt must be > 0"):
        TrialSet([0], [0], [0, 1], [0], n_units=1, n_steps=2, dt=0.0)


def test_with_batch_capacity_is_the_sum_of_the_largest_trials():
    rng = np.random.default_rng(2)
    steps, units, labels = _random_trials(rng, n_trials=9)
    ts = _from_lists(steps, units, labels, 5, 20)
    counts = sorted((len(s) for s in steps), reverse=True)
    assert batch_capacity(ts.counts, 4) == sum(counts[:4])
    b = ts.with_batch(4)
    assert (b.batch_size, b.capacity) == (4, sum(counts[:4]))
    assert ts.capacity is None  # a copy; the original is unchanged
    assert ts.with_batch(4, capacity=sum(counts[:4]) + 10).capacity == sum(counts[:4]) + 10
    with pytest.raises(ValueError, match="smaller than the"):
        ts.with_batch(4, capacity=sum(counts[:4]) - 1)


def test_pytree_round_trip_and_device_put_keep_the_sizes():
    rng = np.random.default_rng(3)
    ts = _from_lists(*_random_trials(rng), 5, 20).with_batch(3)
    leaves, tree = jax.tree_util.tree_flatten(ts)
    back = jax.tree_util.tree_unflatten(tree, leaves)
    dev = jax.device_put(ts)
    for other in (back, dev):
        assert (other.n_units, other.n_steps, other.dt, other.batch_size, other.capacity) == (
            5,
            20,
            1e-3,
            3,
            ts.capacity,
        )
        np.testing.assert_array_equal(np.asarray(other.steps), ts.steps)


def test_subset_keeps_each_trial():
    rng = np.random.default_rng(4)
    ts = _from_lists(*_random_trials(rng, n_trials=10), 5, 20)
    idx = np.array([7, 2, 2, 9, 0])
    sub = ts.subset(idx)
    assert sub.n_trials == 5 and sub.n_classes == ts.n_classes and sub.capacity is None
    for j, i in enumerate(idx):
        np.testing.assert_array_equal(sub.trial_raster(j), ts.trial_raster(i))
        assert sub.labels[j] == ts.labels[i]
    with pytest.raises(ValueError, match="trial indices"):
        ts.subset([10])
