"""Event patterns: the device-built window equals the dense raster's looped slice exactly."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssjax.pattern import DensePattern, EventPattern, _window, as_pattern, max_window_count


def _raster(key, period, n, p=0.2, counts=False):
    rng = np.random.default_rng(key)
    r = (rng.random((period, n)) < p).astype(np.float32)
    if counts:  # some bins hold two spikes of one unit
        r += (rng.random((period, n)) < p / 4) * r
    return r


def _replica(raster, pos, k):
    """The looped slice, as an index gather ``(pos + t) mod P`` (independent of _window)."""
    return raster[(pos + np.arange(k)) % raster.shape[0]]


@pytest.mark.parametrize(
    "period,n,k", [(50, 7, 10), (50, 7, 50), (13, 5, 40), (3, 4, 20), (1, 3, 5), (64, 1, 7)]
)
def test_window_equals_the_dense_slice(period, n, k):
    """Random positions incl. wrap-around and k > P: the same counts as the dense slice and as
    the trainer's tiled ``_window``."""
    raster = _raster(period * 31 + n, period, n, counts=True)
    ev = EventPattern.from_dense(raster, block=k)
    assert ev.n_events == int(raster.sum())
    f = jax.jit(lambda pos: ev.window(pos, k))
    rng = np.random.default_rng(k)
    for pos in [0, period - 1, period, 3 * period + 2, *rng.integers(0, 10**6, 12)]:
        got = np.asarray(f(jnp.int32(pos)))
        np.testing.assert_array_equal(got, _replica(raster, int(pos), k))
        np.testing.assert_array_equal(got, np.asarray(_window(jnp.asarray(raster), pos, k)))
        assert got.dtype == np.float32


def test_window_under_vmap_over_positions():
    raster = _raster(3, 40, 6)
    ev = EventPattern.from_dense(raster, block=25)
    pos = jnp.asarray([0, 17, 39, 40, 41, 1234], jnp.int32)
    got = np.asarray(jax.vmap(lambda p: ev.window(p, 25))(pos))
    want = np.stack([_replica(raster, int(p), 25) for p in pos])
    np.testing.assert_array_equal(got, want)


def test_a_shorter_window_and_the_dtype():
    raster = _raster(4, 30, 3)
    ev = EventPattern.from_dense(raster.astype(np.float64), block=20)
    got = np.asarray(jax.jit(lambda p: ev.window(p, 8, "float32"))(jnp.int32(25)))
    np.testing.assert_array_equal(got, _replica(raster, 25, 8))
    assert got.dtype == np.float32 and ev.dtype == "float64"
    with pytest.raises(ValueError, match="with_block"):
        ev.window(jnp.int32(0), 21)
    np.testing.assert_array_equal(
        np.asarray(ev.with_block(21).window(jnp.int32(3), 21, "float32")), _replica(raster, 3, 21)
    )


def test_empty_pattern():
    ev = EventPattern(np.zeros(0, int), np.zeros(0, int), 10, 4, block=25)
    assert ev.capacity == 0
    np.testing.assert_array_equal(np.asarray(ev.window(jnp.int32(7), 25)), np.zeros((25, 4)))
    np.testing.assert_array_equal(ev.to_dense(), np.zeros((10, 4)))


def test_capacity_is_the_busiest_window_and_a_smaller_one_is_an_error():
    """The capacity counts the busiest window (a brute-force count over every start agrees);
    one event less is refused at construction (negative control: nothing is truncated)."""
    raster = _raster(9, 37, 5, p=0.3, counts=True)
    for k in (1, 5, 36, 37, 38, 80):
        need = max(int(_replica(raster, s, k).sum()) for s in range(37))
        steps, ids = np.nonzero(raster)
        c = raster[steps, ids].astype(int)
        assert max_window_count(np.repeat(steps, c), 37, k) == need
        assert EventPattern.from_dense(raster, block=k).capacity == need
        with pytest.raises(ValueError, match="busiest window"):
            EventPattern.from_dense(raster, block=k, capacity=need - 1)
        EventPattern.from_dense(raster, block=k, capacity=need + 3)  # more is allowed


def test_round_trip_and_checks():
    raster = _raster(5, 20, 4, counts=True)
    ev = EventPattern.from_dense(raster)
    np.testing.assert_array_equal(ev.to_dense(), raster)
    assert ev.shape == (20, 4)
    # unsorted input is sorted by step
    e2 = EventPattern([5, 1, 3], [0, 2, 1], 6, 3, block=6)
    assert e2.steps.tolist() == [1, 3, 5] and e2.ids.tolist() == [2, 1, 0]
    with pytest.raises(ValueError, match="steps must lie"):
        EventPattern([6], [0], 6, 3)
    with pytest.raises(ValueError, match="ids must lie"):
        EventPattern([0], [3], 6, 3)
    with pytest.raises(ValueError, match="block"):
        ev.window(jnp.int32(0), 4)  # no capacity yet


def test_pattern_is_a_pytree_through_jit():
    raster = _raster(6, 30, 3)
    ev = EventPattern.from_dense(raster, block=12)
    got = jax.jit(lambda p, pos: p.window(pos, 12))(ev, jnp.int32(22))
    np.testing.assert_array_equal(np.asarray(got), _replica(raster, 22, 12))


def test_dense_pattern_serves_the_old_slice():
    code = np.asarray([[1, -1], [2, -2], [0, 0]], np.int8)
    d = DensePattern(code, "float32")
    got = np.asarray(d.window(jnp.int32(2), 4))
    np.testing.assert_array_equal(got, _replica(code, 2, 4).astype(np.float32))
    assert got.dtype == np.float32
    raw = as_pattern(jnp.asarray(code))
    assert np.asarray(raw.window(jnp.int32(1), 2)).dtype == np.int8  # served as stored
    assert as_pattern(d) is d
