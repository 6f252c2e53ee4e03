"""Tests for ssjax.tasks.raster: .ras I/O on the SSBM reference rasters, binning, frozen Poisson."""

import os
import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssjax.tasks.raster import (
    RasterError,
    SpikeEvents,
    events_to_raster,
    frozen_poisson,
    load_raster,
    raster_to_events,
    read_ras,
    write_ras,
)

DT = 1e-4  # resolution of the SSBM files (0.1 ms)


def _ssbm_dir() -> pathlib.Path:
    shared = os.environ.get("SSJAX_SHARED")
    if shared:
        return pathlib.Path(shared) / "data" / "ssbm"
    root = pathlib.Path(__file__).resolve().parents[3] / "shared"
    return root / "data" / "ssbm"


SSBM = _ssbm_dir()
needs_ssbm = pytest.mark.skipif(
    not (SSBM / "poisson" / "target.ras").is_file(),
    reason=f"SSBM reference rasters not found under {SSBM} (set SSJAX_SHARED to the shared dir)",
)


def _write(tmp_path, text, name="spikes.ras"):
    path = tmp_path / name
    path.write_text(text)
    return path


# --- SSBM reference data ----------------------------------------------------------------------


@needs_ssbm
def test_poisson_target_five_spikes_at_known_bins():
    events = read_ras(SSBM / "poisson" / "target.ras", n=1)
    np.testing.assert_array_equal(np.rint(events.times / DT), [830, 1660, 2490, 3320, 4150])
    raster = load_raster(SSBM / "poisson" / "target.ras", 1, DT, 0.5)
    assert raster.shape == (5000, 1) and raster.dtype == np.float32
    np.testing.assert_array_equal(np.flatnonzero(raster[:, 0]), [830, 1660, 2490, 3320, 4150])
    assert raster.sum() == 5


@needs_ssbm
@pytest.mark.parametrize(
    ("task", "n", "period", "n_spikes"),
    [("poisson", 100, 0.5, 232), ("auryn", 100, 3.5, 1746), ("oxford", 200, 1.89, 1889)],
)
def test_input_rasters_are_about_5hz(task, n, period, n_spikes):
    raster = load_raster(SSBM / task / "input.ras", n, DT, period)
    assert raster.shape == (round(period / DT), n)
    assert raster.sum() == n_spikes
    events = read_ras(SSBM / task / "input.ras", n=n)
    assert events.ids.max() == n - 1 and events.times.max() < period
    # Frozen Poisson at 5 Hz: spike count ~ Poisson(5 n period), so allow 3 sigma of that count.
    # Measured: poisson 4.64 Hz (-1.1 sigma), auryn 4.99 Hz, oxford 5.00 Hz.
    expected = 5.0 * n * period
    rate = raster.sum() / (n * period)
    assert abs(rate - 5.0) <= 3 * np.sqrt(expected) / (n * period)


@needs_ssbm
def test_auryn_target():
    events = read_ras(SSBM / "auryn" / "target.ras", n=100)
    assert len(events) == 1630
    assert events.ids.min() >= 0 and events.ids.max() < 100
    assert events.times.max() < 3.5
    raster = load_raster(SSBM / "auryn" / "target.ras", 100, DT, 3.5)
    assert raster.shape == (35000, 100)
    assert raster.sum() == 1630
    with pytest.raises(RasterError, match="auryn.*target.ras.*beyond duration"):
        load_raster(SSBM / "auryn" / "target.ras", 100, DT, 3.0)


@needs_ssbm
def test_oxford_target_is_one_based():
    path = SSBM / "oxford" / "target.ras"
    with pytest.raises(RasterError) as info:
        read_ras(path, n=200)
    msg = str(info.value)
    assert "target.ras" in msg and "neuron id 200" in msg and "n=200" in msg
    assert "looks 1-based" in msg and info.value.offset == 1
    first_200 = next(
        k for k, line in enumerate(path.read_text().splitlines(), 1) if line.split()[1] == "200"
    )
    assert f"line {first_200}:" in msg

    events = read_ras(path, n=200, id_offset=1)
    assert len(events) == 10367
    assert events.ids.min() == 0 and events.ids.max() == 199
    raster = load_raster(path, 200, DT, 1.89, id_offset=1)
    assert raster.shape == (18900, 200) and raster.sum() == 10367


@needs_ssbm
def test_oxford_drop_warns_with_count():
    path = SSBM / "oxford" / "target.ras"
    n_200 = sum(line.split()[1] == "200" for line in path.read_text().splitlines())
    assert n_200 > 0
    with pytest.warns(UserWarning, match=rf"dropped {n_200} of 10367 spikes"):
        events = read_ras(path, n=200, on_out_of_range="drop")
    assert len(events) == 10367 - n_200
    assert events.ids.max() == 199


# --- write / read round trips -----------------------------------------------------------------


def test_events_round_trip_exact(tmp_path):
    rng = np.random.default_rng(0)
    times = rng.uniform(0.0, 2.0, 500)
    times[:50] = rng.integers(0, 20000, 50) * DT  # on-grid times too
    ids = rng.integers(0, 40, 500)
    path = tmp_path / "ev.ras"
    write_ras(path, SpikeEvents(times, ids), header="random events\nsecond line")
    text = path.read_text().splitlines()
    assert text[:2] == ["# random events", "# second line"]
    back = read_ras(path, n=40)
    order = np.lexsort((ids, times))
    np.testing.assert_array_equal(back.times, times[order])  # bit-exact float64
    np.testing.assert_array_equal(back.ids, ids[order])
    assert back.times.dtype == np.float64 and back.ids.dtype == np.int64


def test_dense_round_trip_exact(tmp_path):
    rng = np.random.default_rng(1)
    raster = rng.poisson(0.05, size=(3000, 25)).astype(np.float32)
    assert raster.max() >= 2  # counts > 1 must survive as repeated lines
    path = tmp_path / "dense.ras"
    write_ras(path, raster, dt=DT)
    back = load_raster(path, 25, DT, 3000 * DT)
    np.testing.assert_array_equal(back, raster)
    lines = path.read_text().splitlines()
    assert len(lines) == raster.sum()
    # Times are written on the decimal grid (e.g. 0.0003), not as 0.00030000000000000003.
    assert max(len(line.split()[0]) for line in lines) <= len("0.0000000")
    times = np.array([float(line.split()[0]) for line in lines])
    assert np.all(np.diff(times) >= 0)


def test_events_raster_events_exact_on_bins():
    rng = np.random.default_rng(2)
    bins = rng.integers(0, 10000, 300)
    ids = rng.integers(0, 17, 300)
    events = SpikeEvents(bins * DT, ids)
    raster = events_to_raster(events, 17, DT)
    assert raster.shape == (bins.max() + 1, 17)
    back = raster_to_events(jnp.asarray(raster), DT)
    order = np.lexsort((ids, bins))
    np.testing.assert_array_equal(np.rint(back.times / DT), bins[order])
    np.testing.assert_array_equal(back.ids, ids[order])
    np.testing.assert_array_equal(events_to_raster(back, 17, DT), raster)


def test_events_to_raster_counts_and_duration():
    # 0.00104 and 0.00096 both round to bin 10 with dt = 0.1 ms: they add up.
    events = SpikeEvents([0.001, 0.00104, 0.00096, 0.0002], [1, 1, 1, 0])
    raster = events_to_raster(events, 3, DT, dtype=np.int32)
    assert raster.shape == (11, 3) and raster.dtype == np.int32
    assert raster[10, 1] == 3 and raster[2, 0] == 1 and raster.sum() == 4
    assert events_to_raster(events, 3, DT, duration=0.002).shape == (20, 3)
    with pytest.raises(RasterError, match="bin 10"):
        events_to_raster(events, 3, DT, duration=0.001)
    with pytest.raises(RasterError, match=r"neuron id 1 out of range \[0, 1\)"):
        events_to_raster(events, 1, DT)
    assert events_to_raster(SpikeEvents([], []), 4, DT).shape == (0, 4)


def test_raster_to_events_t0_and_validation():
    raster = np.zeros((5, 2))
    raster[3, 1] = 2
    ev = raster_to_events(raster, 0.01, t0=1.0)
    np.testing.assert_allclose(ev.times, [1.03, 1.03])
    np.testing.assert_array_equal(ev.ids, [1, 1])
    with pytest.raises(ValueError, match="integer spike counts"):
        raster_to_events(raster + 0.5, 0.01)
    with pytest.raises(ValueError, match="2-D"):
        raster_to_events(np.zeros(5), 0.01)


def test_write_argument_checks(tmp_path):
    with pytest.raises(ValueError, match="dt"):
        write_ras(tmp_path / "a.ras", np.zeros((3, 2)))
    with pytest.raises(ValueError, match="dt"):
        write_ras(tmp_path / "a.ras", SpikeEvents([0.1], [0]), dt=DT)


# --- malformed files --------------------------------------------------------------------------

HEAD = "# comment line\n\n   \n0.0123 3\n  # indented comment\n"  # bad line goes on line 6


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        ("0.1 3 7", "expected 2 fields"),
        ("0.1", "expected 2 fields"),
        ("abc 3", "not a number"),
        ("0.1 x", "not an integer"),
        ("0.1 2.5", "not an integer"),
        ("-0.1 3", "negative time"),
        ("nan 3", "not finite"),
        ("inf 3", "not finite"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, bad_line, reason):
    path = _write(tmp_path, HEAD + bad_line + "\n0.2 1\n", name="broken_file.ras")
    with pytest.raises(RasterError, match=reason) as info:
        read_ras(path)
    msg = str(info.value)
    assert "broken_file.ras" in msg
    assert re.search(r"\bline 6\b", msg), msg


def test_out_of_range_id_names_file_line_id_and_n(tmp_path):
    path = _write(tmp_path, HEAD + "0.1 12\n0.2 1\n0.3 15\n", name="range.ras")
    with pytest.raises(RasterError) as info:
        read_ras(path, n=10)
    msg = str(info.value)
    assert "range.ras" in msg and "line 6" in msg and "neuron id 12" in msg and "n=10" in msg
    assert "id_offset" not in msg  # max id 15 != n: not a 1-based file
    with pytest.warns(UserWarning, match="dropped 2 of 4"):
        events = read_ras(path, n=10, on_out_of_range="drop")
    np.testing.assert_array_equal(events.ids, [3, 1])
    # Without n only negative ids (after the offset) are out of range.
    with pytest.raises(RasterError, match=r"line 4.*neuron id -1 \(file id 3 - 4\)"):
        read_ras(path, id_offset=4)
    with pytest.raises(ValueError, match="on_out_of_range"):
        read_ras(path, on_out_of_range="clip")


def test_comments_and_blank_lines_ignored(tmp_path):
    path = _write(tmp_path, HEAD + "\n0.25 2.0\n# trailing\n")
    events = read_ras(path)
    np.testing.assert_array_equal(events.times, [0.0123, 0.25])
    np.testing.assert_array_equal(events.ids, [3, 2])  # "2.0" is an integer-valued id
    assert len(read_ras(_write(tmp_path, "# only comments\n\n", name="empty.ras"))) == 0


def test_missing_file(tmp_path):
    path = tmp_path / "nope.ras"
    with pytest.raises(RasterError, match="nope.ras"):
        read_ras(path)


# --- frozen Poisson ---------------------------------------------------------------------------


def test_frozen_poisson_deterministic_in_key():
    a = frozen_poisson(jax.random.key(3), 50, 20.0, 0.2, DT)
    b = frozen_poisson(jax.random.key(3), 50, 20.0, 0.2, DT)
    c = frozen_poisson(jax.random.key(4), 50, 20.0, 0.2, DT)
    assert a.shape == (2000, 50) and a.dtype == jnp.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert set(np.unique(np.asarray(a))) <= {0.0, 1.0}


def test_frozen_poisson_rate_and_dtype():
    n, rate, duration = 200, 5.0, 0.5
    x = np.asarray(frozen_poisson(jax.random.key(0), n, rate, duration, DT, dtype=jnp.int8))
    assert x.dtype == np.int8 and set(np.unique(x)) <= {0, 1}
    trials, p = x.size, rate * DT
    # Total count ~ Binomial(N T, p): mean 500, sd 22.4; allow 5 sd.
    assert abs(x.sum() - trials * p) <= 5 * np.sqrt(trials * p * (1 - p))
    rates = np.array([0.0, 1000.0])
    y = np.asarray(frozen_poisson(jax.random.key(1), 2, rates, 1.0, 1e-3))
    assert y[:, 0].sum() == 0 and y[:, 1].sum() == 1000  # p = 0 and p = 1 exactly


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"rate_hz": -1.0}, "rate_hz"),
        ({"rate_hz": 20000.0}, r"rate_hz \* dt"),
        ({"duration": 0.0}, "duration"),
        ({"dt": 0.0}, "dt"),
        ({"dt": -1e-4}, "dt"),
        ({"n": -2}, "n must"),
    ],
)
def test_frozen_poisson_validation(kwargs, name):
    args = {"n": 10, "rate_hz": 5.0, "duration": 0.1, "dt": DT} | kwargs
    with pytest.raises(ValueError, match=name):
        frozen_poisson(jax.random.key(0), **args)


def test_header_neuron_count_is_checked_against_n(tmp_path):
    path = tmp_path / "x.ras"
    write_ras(path, SpikeEvents(np.array([0.01, 0.02]), np.array([0, 3])), header="neurons 4")
    assert len(read_ras(path, n=4)) == 2
    assert len(read_ras(path)) == 2  # without n there is nothing to contradict
    with pytest.raises(RasterError, match=r"x.ras, line 1: the header says 4 neurons, but 5"):
        read_ras(path, n=5)


def test_one_based_ids_carry_the_offset_that_fits(tmp_path):
    path = tmp_path / "y.ras"
    path.write_text("0.01 1\n0.02 3\n")
    with pytest.raises(RasterError, match="looks 1-based") as info:
        read_ras(path, n=3)
    assert info.value.offset == 1
    path.write_text("0.01 0\n0.02 9\n")
    with pytest.raises(RasterError) as info:
        read_ras(path, n=3)
    assert info.value.offset is None  # not 1-based: no offset to suggest


@pytest.mark.parametrize(
    "n,rate,duration,chunk",
    [(7, 50.0, 0.5, 1000), (100, 5.0, 0.5, 1 << 22), (13, np.linspace(0, 300, 13), 0.37, 64),
     (1, 100.0, 0.2, 1), (3, 0.0, 0.1, 10)],
)  # fmt: skip
def test_frozen_poisson_events_equal_the_dense_draw(monkeypatch, n, rate, duration, chunk):
    """Drawn in chunks of rows (chunk boundaries inside a row, one row per chunk, one chunk),
    the events are exactly the dense raster's nonzeros; another key differs (control)."""
    from ssjax.tasks import raster as R

    monkeypatch.setattr(R, "_CHUNK", chunk)
    key = jax.random.PRNGKey(n)
    dense = np.asarray(R.frozen_poisson(key, n, rate, duration, 1e-4))
    steps, ids, T = R.frozen_poisson_events(key, n, rate, duration, 1e-4)
    want_s, want_i = np.nonzero(dense)
    assert T == dense.shape[0] and steps.dtype == np.int32
    np.testing.assert_array_equal(steps, want_s)
    np.testing.assert_array_equal(ids, want_i)
    if want_s.size:
        other, _, _ = R.frozen_poisson_events(jax.random.PRNGKey(99), n, rate, duration, 1e-4)
        assert not np.array_equal(other, want_s)
