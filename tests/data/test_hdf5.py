"""The SHD/SSC HDF5 layout, written here with h5py's variable-length dtypes and read back."""

import h5py
import numpy as np
import pytest

from ssjax.data.hdf5 import load_hdf5


def _write(path, times, units, labels, *, skip=(), time_dtype=np.float16):
    """A file in the Heidelberg layout: spikes/times, spikes/units (vlen), labels."""
    with h5py.File(path, "w") as f:
        sp = f.create_group("spikes")
        if "spikes/times" not in skip:
            d = sp.create_dataset("times", (len(times),), dtype=h5py.vlen_dtype(time_dtype))
            for i, t in enumerate(times):
                d[i] = np.asarray(t, time_dtype)
        if "spikes/units" not in skip:
            d = sp.create_dataset("units", (len(units),), dtype=h5py.vlen_dtype(np.uint16))
            for i, u in enumerate(units):
                d[i] = np.asarray(u, np.uint16)
        if "labels" not in skip:
            f.create_dataset("labels", data=np.asarray(labels, np.uint16))
        f.create_group("extra").create_dataset("speaker", data=np.zeros(len(labels), np.uint16))


def _example():
    rng = np.random.default_rng(0)
    times = [np.sort(rng.uniform(0, 0.05, rng.integers(0, 40))) for _ in range(6)]
    units = [rng.integers(0, 700, t.size) for t in times]
    return times, units, rng.integers(0, 20, 6)


def test_round_trip_against_the_stored_values(tmp_path):
    times, units, labels = _example()
    path = tmp_path / "shd_train.h5"
    _write(path, times, units, labels)
    ts = load_hdf5(path, n_units=700, dt=1e-3, duration=0.06, n_classes=20)
    assert (ts.n_trials, ts.n_units, ts.n_steps, ts.n_classes) == (6, 700, 60, 20)
    np.testing.assert_array_equal(ts.labels, labels)
    for i in range(6):
        # the float16 values the file holds, binned by rint(t / dt), as a dense raster
        t16 = np.asarray(times[i], np.float16).astype(np.float64)
        ref = np.zeros((60, 700))
        np.add.at(ref, (np.rint(t16 / 1e-3).astype(int), units[i]), 1)
        np.testing.assert_array_equal(ts.trial_raster(i), ref)


def test_own_split_files_share_the_time_grid(tmp_path):
    times, units, labels = _example()
    _write(tmp_path / "train.h5", times[:4], units[:4], labels[:4])
    _write(tmp_path / "test.h5", times[4:], units[4:], labels[4:])
    a = load_hdf5(tmp_path / "train.h5", n_units=700, dt=1e-3, duration=0.06, n_classes=20)
    b = load_hdf5(tmp_path / "test.h5", n_units=700, dt=1e-3, duration=0.06, n_classes=20)
    assert (a.n_trials, b.n_trials) == (4, 2) and a.n_steps == b.n_steps == 60


@pytest.mark.parametrize("missing", ["spikes/times", "spikes/units", "labels"])
def test_missing_dataset_names_file_and_field(tmp_path, missing):
    path = tmp_path / "bad.h5"
    _write(path, *_example(), skip=(missing,))
    with pytest.raises(ValueError, match=f"bad.h5: missing dataset '{missing}'"):
        load_hdf5(path, n_units=700, dt=1e-3)


def test_mismatched_lengths_name_file_and_fields(tmp_path):
    times, units, labels = _example()
    path = tmp_path / "len.h5"
    _write(path, times, units, labels[:5])
    with pytest.raises(ValueError, match=r"len\.h5: trial counts differ: .* labels 5"):
        load_hdf5(path, n_units=700, dt=1e-3)
    units = list(units)
    units[2] = np.append(units[2], 1)
    _write(path, times, units, labels)
    with pytest.raises(ValueError, match=r"len\.h5: trial 2: .*\(spikes/times\).*\(spikes/units\)"):
        load_hdf5(path, n_units=700, dt=1e-3)


def test_out_of_range_units_times_and_labels(tmp_path):
    times, units, labels = _example()
    path = tmp_path / "range.h5"
    _write(path, times, units, labels)
    with pytest.raises(ValueError, match=r"range\.h5: trial \d+: unit \d+ \(spikes/units\)"):
        load_hdf5(path, n_units=10, dt=1e-3)
    with pytest.raises(ValueError, match=r"range\.h5: trial \d+: spike at .*\(spikes/times\)"):
        load_hdf5(path, n_units=700, dt=1e-3, duration=0.01)
    with pytest.warns(UserWarning, match="dropped"):
        short = load_hdf5(path, n_units=700, dt=1e-3, duration=0.01, on_out_of_range="drop")
    assert short.n_steps == 10 and short.n_events < sum(t.size for t in times)
    with pytest.raises(ValueError, match=r"range\.h5: labels must lie in \[0, n_classes=3\)"):
        load_hdf5(path, n_units=700, dt=1e-3, n_classes=3)


def test_not_a_file_or_not_hdf5(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        load_hdf5(tmp_path / "nope.h5", n_units=1, dt=1e-3)
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match=r"text\.h5: not an HDF5 file"):
        load_hdf5(tmp_path / "text.h5", n_units=1, dt=1e-3)
