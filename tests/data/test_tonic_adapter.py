"""tonic-format events (structured arrays, t in microseconds) as trials, without tonic."""

import numpy as np
import pytest

from ssjax.data.tonic_adapter import from_tonic_dataset, from_tonic_events, tonic_units

# the dtypes of tonic's N-MNIST and SHD data sets (tonic.datasets.NMNIST.dtype, .SHD.dtype)
NMNIST = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])
SHD = np.dtype([("t", int), ("x", int), ("p", int)])


def _events(rng, dtype, n, size, t_max_us):
    ev = np.zeros(n, dtype)
    ev["t"] = np.sort(rng.integers(0, t_max_us, n))
    ev["x"] = rng.integers(0, size[0], n)
    if "y" in dtype.names:
        ev["y"] = rng.integers(0, size[1], n)
    ev["p"] = rng.integers(0, size[2], n)
    return ev


def test_nmnist_layout_matches_a_frame_per_step():
    rng = np.random.default_rng(0)
    size = (5, 4, 2)
    events = [_events(rng, NMNIST, 30, size, 10_000) for _ in range(3)]
    ts = from_tonic_events(
        events, [1, 0, 1], sensor_size=size, dt=1e-3, duration=0.01, rounding="floor"
    )
    assert (ts.n_units, ts.n_steps) == (40, 10)
    for i, ev in enumerate(events):
        # tonic's frame layout [T, P, H, W] (ToFrame), flattened: the independent route
        frames = np.zeros((10, 2, 4, 5))
        np.add.at(frames, (ev["t"] // 1000, ev["p"], ev["y"], ev["x"]), 1)
        np.testing.assert_array_equal(ts.trial_raster(i), frames.reshape(10, -1))


def test_single_polarity_1d_sensor_as_shd():
    ev = np.zeros(3, SHD)
    ev["t"], ev["x"], ev["p"] = [0, 1500, 2000], [699, 3, 3], [0, 0, 0]
    ts = from_tonic_events([ev], [4], sensor_size=(700, 1, 1), dt=1e-3, duration=0.003)
    s, u = ts.trial(0)
    np.testing.assert_array_equal(s, [0, 2, 2])  # rint(1.5) = 2, rint(2.0) = 2
    np.testing.assert_array_equal(u, [699, 3, 3])
    assert ts.trial_raster(0)[2, 3] == 2  # two spikes of unit 3 in step 2: a count


def test_out_of_sensor_coordinates():
    ev = np.zeros(2, NMNIST)
    ev["x"] = [1, 7]
    with pytest.raises(ValueError, match=r"trial 0: event field 'x' = 7 outside"):
        from_tonic_events([ev], [0], sensor_size=(5, 4, 2), dt=1e-3)
    np.testing.assert_array_equal(
        tonic_units(ev, (5, 4, 2), on_out_of_range="drop"), [1, 40]
    )  # 40 = W H P: dropped by from_times
    with pytest.warns(UserWarning, match="dropped 1"):
        ts = from_tonic_events([ev], [0], sensor_size=(5, 4, 2), dt=1e-3, on_out_of_range="drop")
    assert ts.n_events == 1
    with pytest.raises(ValueError, match="field 't'"):
        tonic_units(np.zeros(1, [("x", int)]), (1, 1, 1))


def test_dataset_protocol_without_tonic():
    """Any object with __getitem__ -> (events, label), __len__ and sensor_size: tonic's."""
    rng = np.random.default_rng(1)

    class Events:
        sensor_size = (700, 1, 1)
        data = [(_events(rng, SHD, 8, (700, 1, 1), 5000), k % 3) for k in range(4)]

        def __len__(self):
            return len(self.data)

        def __getitem__(self, i):
            return self.data[i]

    ts = from_tonic_dataset(Events(), dt=1e-3, duration=0.006, limit=3)
    assert ts.n_trials == 3 and ts.n_units == 700
    np.testing.assert_array_equal(ts.labels, [0, 1, 2])


def test_a_tonic_installation_agrees():
    tonic = pytest.importorskip("tonic")
    rng = np.random.default_rng(2)
    size = (6, 3, 2)
    ev = _events(rng, NMNIST, 50, size, 10_000)
    frames = tonic.functional.to_frame_numpy(
        ev, size, time_window=1000, start_time=0, end_time=10_000
    )
    ts = from_tonic_events([ev], [0], sensor_size=size, dt=1e-3, duration=0.01, rounding="floor")
    np.testing.assert_array_equal(ts.trial_raster(0), frames.reshape(frames.shape[0], -1))
