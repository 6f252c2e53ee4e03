"""Van Rossum distance and filtered error on hand-made spike trains."""

import jax.numpy as jnp
import numpy as np
import pytest

from ssjax.filters import alpha_kernel
from ssjax.losses import (
    error_distance,
    filtered_error,
    moving_average_cost,
    van_rossum_distance,
    van_rossum_loss,
)

DT = 1e-4
T = 5000


def train(*steps, n=T):
    x = np.zeros((n, 1), np.float32)
    for s in steps:
        x[s, 0] += 1
    return jnp.asarray(x)


def test_equal_trains_have_zero_distance():
    a = train(100, 830, 2000, 4000)
    assert float(van_rossum_distance(a, a, DT)[0]) == 0.0


def test_one_isolated_unmatched_spike_costs_one():
    empty = train()
    for s in (100, 2000):
        d = van_rossum_distance(train(s), empty, DT)
        assert float(d[0]) == pytest.approx(1.0, rel=1e-4)
    # three well-separated spikes cost three
    assert float(van_rossum_distance(train(100, 1500, 3000), empty, DT)[0]) == pytest.approx(
        3.0, rel=1e-4
    )


def test_symmetric_and_grows_with_shift():
    a, b = train(1000, 3000), train(1020, 3300)
    np.testing.assert_allclose(
        van_rossum_distance(a, b, DT), van_rossum_distance(b, a, DT), rtol=1e-6
    )
    shifts = [float(van_rossum_distance(train(1000), train(1000 + k), DT)[0]) for k in (5, 20, 80)]
    assert shifts[0] < shifts[1] < shifts[2] < 2.0
    assert shifts[0] < 0.05  # a 0.5 ms jitter costs little


def test_truncated_spike_at_window_end_costs_less():
    d = float(van_rossum_distance(train(T - 20), train(), DT)[0])
    assert 0.0 <= d < 0.1


def test_filtered_error_matches_explicit_convolution():
    tgt, out = train(100, 2500), train(800, 2510, 4000)
    e, _ = filtered_error(tgt, out, DT)
    k = np.asarray(alpha_kernel(jnp.arange(T) * DT, 5e-3, 10e-3))
    delta = np.asarray(tgt - out)[:, 0]
    ref = np.convolve(delta, k)[:T]
    np.testing.assert_allclose(np.asarray(e[:, 0]), ref, rtol=1e-4, atol=1e-2)
    assert float(jnp.max(e)) > 0 and float(jnp.min(e)) < 0  # signs: missing spike positive


def test_loss_is_half_unnormalised_distance():
    tgt, out = train(100, 2500), train(800)
    e, _ = filtered_error(tgt, out, DT)
    loss = van_rossum_loss(e, DT)
    from ssjax.filters import alpha_sq_sum

    assert float(loss) == pytest.approx(
        0.5 * float(error_distance(e, DT)[0]) * alpha_sq_sum(5e-3, 10e-3, DT), rel=1e-5
    )


def test_batch_shapes():
    tgt = jnp.zeros((T, 3, 2)).at[100, :, 0].set(1.0)
    d = van_rossum_distance(tgt, jnp.zeros_like(tgt), DT)
    assert d.shape == (3, 2)
    np.testing.assert_allclose(d[:, 0], 1.0, rtol=1e-4)
    np.testing.assert_array_equal(d[:, 1], 0.0)


def test_moving_average_cost_against_recursion():
    e = jnp.full((5000, 2), 3.0)
    c = None
    for _ in range(40):  # 200 s in blocks of 5 s, as the trainer carries it
        c = moving_average_cost(e, 1e-3, tau=10.0, state=c)
    assert float(c) == pytest.approx(9.0 * (1 - np.exp(-20.0)), rel=1e-5)
    # block-wise with a carried state equals the per-step float64 recursion
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 2, 4)) * 50
    ms = np.mean(x**2, axis=-1)
    a = np.exp(-1e-3 / 0.5)
    c = np.zeros(2)
    for m in ms:
        c = a * c + (1 - a) * m
    c1 = moving_average_cost(jnp.asarray(x[:1100], jnp.float32), 1e-3, tau=0.5)
    c2 = moving_average_cost(jnp.asarray(x[1100:], jnp.float32), 1e-3, tau=0.5, state=c1)
    np.testing.assert_allclose(c2, c, rtol=1e-5)


def test_window_outcome_on_hand_made_responses():
    from ssjax.losses import window_outcome

    code = np.zeros((40, 2), np.int8)
    code[5:15] = [1, -1]
    code[14] = [2, -2]  # window 1: output 0 is correct
    code[25:35] = [-1, 1]
    code[34] = [-2, 2]  # window 2: output 1 is correct
    right = np.zeros((40, 2), np.float32)
    right[8, 0] = right[30, 1] = 1.0
    ended, correct, _ = window_outcome(right, code)
    np.testing.assert_array_equal(np.nonzero(np.asarray(ended))[0], [14, 34])
    assert float(correct.sum()) == 2.0
    both = right.copy()
    both[9, 1] = 1.0  # the wrong output also fired in window 1
    assert float(window_outcome(both, code)[1].sum()) == 1.0
    outside = np.zeros((40, 2), np.float32)
    outside[20, 0] = outside[38, 1] = 1.0  # spikes outside windows do not count
    assert float(window_outcome(outside, code)[1].sum()) == 0.0
    # a window cut in two with the carried state gives the same outcome
    e1, c1, f = window_outcome(right[:10], code[:10])
    e2, c2, _ = window_outcome(right[10:], code[10:], f)
    np.testing.assert_array_equal(np.concatenate([c1, c2]), np.asarray(correct))
