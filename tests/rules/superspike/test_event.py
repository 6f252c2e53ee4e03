"""The event route's parts: spike lists, event-driven input currents and the per-spike sum
(the route against the dense one and the per-step rule is tested in test_routes.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssjax.network import input_currents
from ssjax.rules.superspike import SuperSpikeConfig
from ssjax.rules.superspike.event import event_currents, per_spike, spike_slots
from ssjax.tasks.raster import frozen_poisson


def test_spike_slots_list_the_spike_steps_in_order():
    active = jnp.array([False, True, False, True, True, False])
    np.testing.assert_array_equal(spike_slots(active, 5), [5, 0, 5, 1, 2, 5])


@pytest.mark.parametrize("rate", [5.0, 50.0, 3000.0])  # sparse list, larger list, dense fallback
def test_event_input_currents_equal_the_dense_product(rate):
    s = frozen_poisson(jax.random.PRNGKey(6), 50, rate, 0.2, 1e-4)
    w = jax.random.normal(jax.random.PRNGKey(7), (50, 9)) * 0.01
    cfg = SuperSpikeConfig()
    dense = input_currents(s, w)
    tol = 1e-6 * float(jnp.abs(dense).max())  # the same dot products, summed in another order
    assert tol > 0
    np.testing.assert_allclose(event_currents(cfg.max_spikes, s, w), dense, rtol=0, atol=tol)
    # seeds sharing the inputs: one gathered list, every seed's weights
    ws = jnp.stack([w, 2 * w, -w])
    got = jax.vmap(lambda wi: event_currents(cfg.max_spikes, s, wi))(ws)
    np.testing.assert_allclose(got[1], 2 * dense, rtol=0, atol=2 * tol)
    np.testing.assert_allclose(got[2], -dense, rtol=0, atol=tol)


@pytest.mark.parametrize("p_multi", [0.05, 0.5])  # few multi-spike columns; more than R/8
def test_per_spike_sum_equals_the_product(p_multi):
    """Columns with one unit spike summed per spike, the rest (several spikes, a count of 2,
    empty padding) by a product over a short list or, with too many, over all columns."""
    n_pre, r, c = 30, 200, 7
    keys = jax.random.split(jax.random.PRNGKey(21), 5)
    one = jax.nn.one_hot(jax.random.randint(keys[0], (r,), 0, n_pre), n_pre)
    extra = jax.random.uniform(keys[1], (r, n_pre)) < p_multi / n_pre * 2
    s_rows = one + extra * (jax.random.uniform(keys[2], (r, 1)) < 0.5)  # some columns: 2+
    s_rows = s_rows.at[3, :].set(0.0).at[5].set(2.0 * one[5])  # an empty column, a count of 2
    rhs = jax.random.normal(keys[3], (r, c))
    ref = np.asarray(s_rows, np.float64).T @ np.asarray(rhs, np.float64)
    n_rest = int(jnp.sum((jnp.sum(s_rows != 0, 1) > 1) | (jnp.sum(s_rows, 1) > 1)))
    assert (n_rest <= r // 8) == (p_multi < 0.1) and n_rest > 0  # which branch runs
    got = per_spike(s_rows, rhs)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5 * np.abs(ref).max())
    # negative control: the per-spike part alone misses the multi-spike columns
    single = (jnp.sum(s_rows != 0, 1) == 1) & (jnp.sum(s_rows, 1) == 1)
    assert np.abs(np.asarray(per_spike(s_rows * single[:, None], rhs)) - ref).max() > 1e-3
