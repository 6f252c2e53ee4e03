"""A folder of .ras files as trials, through ssjax's own .ras reader."""

import numpy as np
import pytest

from ssjax.data.ras import load_ras_folder
from ssjax.tasks.raster import SpikeEvents, events_to_raster, write_ras


def _folder(tmp_path, names, seed=0):
    rng = np.random.default_rng(seed)
    rasters = {}
    for n in names:
        r = (rng.random((30, 4)) < 0.1).astype(np.float32)
        write_ras(tmp_path / n, r, dt=1e-3)
        rasters[n] = r
    return rasters


def test_labels_from_file_names_round_trip(tmp_path):
    rasters = _folder(tmp_path, ["2_b.ras", "0_a.ras", "11-x.ras", "1.ras"])
    ts = load_ras_folder(tmp_path, n_units=4, dt=1e-3, duration=0.03)
    names = sorted(rasters)  # sorted name order
    np.testing.assert_array_equal(ts.labels, [0, 1, 11, 2])
    assert ts.n_classes == 12
    for i, n in enumerate(names):
        np.testing.assert_array_equal(ts.trial_raster(i), rasters[n])


def test_labels_file(tmp_path):
    rasters = _folder(tmp_path, ["a.ras", "b.ras"])
    (tmp_path / "labels.txt").write_text("# name label\nb.ras 1\na.ras 0\n")
    ts = load_ras_folder(tmp_path, n_units=4, dt=1e-3, duration=0.03, labels="labels.txt")
    np.testing.assert_array_equal(ts.labels, [0, 1])
    np.testing.assert_array_equal(ts.trial_raster(1), rasters["b.ras"])
    (tmp_path / "labels.txt").write_text("a.ras 0\n")
    with pytest.raises(ValueError, match=r"labels\.txt: no label for b\.ras"):
        load_ras_folder(tmp_path, n_units=4, dt=1e-3, labels="labels.txt")
    (tmp_path / "labels.txt").write_text("a.ras 0\nb.ras one\n")
    with pytest.raises(ValueError, match=r"labels\.txt, line 2: expected 'file_name label'"):
        load_ras_folder(tmp_path, n_units=4, dt=1e-3, labels="labels.txt")


def test_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_ras_folder(tmp_path / "none", n_units=4, dt=1e-3)
    write_ras(tmp_path / "noclass.ras", SpikeEvents([0.001], [0]))
    with pytest.raises(ValueError, match=r"noclass\.ras: no label in the file name"):
        load_ras_folder(tmp_path, n_units=4, dt=1e-3)
    (tmp_path / "noclass.ras").unlink()
    write_ras(tmp_path / "1_late.ras", SpikeEvents([0.001, 0.05], [0, 1]))
    write_ras(tmp_path / "0_ok.ras", SpikeEvents([0.001], [0]))
    with pytest.raises(ValueError, match=r"1_late\.ras: spike at t=0\.05 s"):
        load_ras_folder(tmp_path, n_units=4, dt=1e-3, duration=0.03)
    write_ras(tmp_path / "2_id.ras", SpikeEvents([0.001], [9]))
    with pytest.raises(ValueError, match=r"2_id\.ras, line 1: neuron id 9 out of range"):
        load_ras_folder(tmp_path, n_units=4, dt=1e-3, duration=0.06)


def test_binning_is_the_ras_tasks(tmp_path):
    """The folder's trial equals events_to_raster of the same file (task.kind: ras's route)."""
    ev = SpikeEvents([0.0004, 0.0005, 0.0015, 0.0021], [0, 1, 2, 3])
    write_ras(tmp_path / "0_t.ras", ev)
    ts = load_ras_folder(tmp_path, n_units=4, dt=1e-3, duration=0.003)
    np.testing.assert_array_equal(ts.trial_raster(0), events_to_raster(ev, 4, 1e-3, 0.003))
