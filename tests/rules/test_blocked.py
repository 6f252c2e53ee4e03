"""Blocked products of SuperSpike: the PSP trace split, event-driven currents, and the three
routes to ``z^T post`` against each other and against a direct sum (the routes against the
per-step rule are tested in test_superspike.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssjax.network import input_currents
from ssjax.neuron import LIFParams
from ssjax.rules.blocked import (
    dense_products,
    event_currents,
    event_sums,
    per_spike,
    post_signals,
    psp_filter,
    psp_filter_free,
    scan_products,
    spike_slots,
)
from ssjax.rules.superspike import SuperSpikeConfig
from ssjax.tasks.raster import frozen_poisson


def test_psp_trace_from_carried_state_is_spike_part_plus_free_decay():
    """The dense route's split of the presynaptic trace: spikes from a zero state + closed decay."""
    params = LIFParams()
    s = (jax.random.uniform(jax.random.PRNGKey(3), (3000, 7)) < 0.01).astype(jnp.float32)
    y0 = jax.random.uniform(jax.random.PRNGKey(4), (7,), minval=0.0, maxval=2.0)
    m0 = jax.random.uniform(jax.random.PRNGKey(5), (7,), minval=0.0, maxval=0.5)
    z_ref, (syn_ref, mem_ref) = psp_filter(params, s, (y0, m0))  # one scan from the state
    z, (syn, mem) = psp_filter_free(params, s)
    n = s.shape[1]
    np.testing.assert_allclose(
        z[:, :n] + y0 * z[:, n : n + 1] + m0 * z[:, n + 1 :], z_ref, atol=1e-6
    )
    np.testing.assert_allclose(syn[:n] + y0 * syn[n], syn_ref, atol=1e-6)
    np.testing.assert_allclose(mem[:n] + y0 * mem[n] + m0 * mem[n + 1], mem_ref, atol=1e-6)
    # the free columns are the closed-form decay of a unit state
    a, _, c = params.membrane_coeffs()
    t = np.arange(1, 3001)
    f_syn = c * (a**t - params.syn_decay**t) / (a - params.syn_decay)
    np.testing.assert_allclose(z[:, n], f_syn, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(z[:, n + 1], a**t, rtol=1e-4, atol=1e-9)
    # negative control: the carried state matters
    assert float(jnp.abs(z[:, :n] - z_ref).max()) > 0.1


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


@pytest.mark.parametrize("n_pre,n_post", [(3, 2), (20, 5)])
def test_product_routes_equal_the_direct_sum(n_pre, n_post):
    """``z^T post`` and the final PSP state by the dense product, the event-driven sum, the sum
    accumulated in the reverse scan and the groups side by side, against ``psp_filter`` and
    ``post_signals`` combined directly, from a carried trace (y0, m0)."""
    params, k = LIFParams(), 3000
    keys = jax.random.split(jax.random.PRNGKey(11), 6)
    s = (jax.random.uniform(keys[0], (k, n_pre)) < 0.01).astype(jnp.float32)
    e = jax.random.normal(keys[1], (k, n_post))
    sig = jax.random.uniform(keys[2], (k, n_post))
    pows = jnp.exp(-jnp.arange(k - 1, -1, -1, dtype=jnp.float32)[:, None] / jnp.array([100, 50]))
    psp0 = (
        jax.random.uniform(keys[3], (n_pre,), maxval=2.0),
        jax.random.uniform(keys[4], (n_pre,), maxval=0.5),
    )
    args = (5e-3, 10e-3, 1e-4, e, sig, pows)
    post, sums, _ = post_signals(*args)
    z, psp_ref = psp_filter(params, s, psp0)
    ref = [np.asarray(z, np.float64).T @ np.asarray(p, np.float64) for p in post]
    routes = {
        "dense": dense_products(params, s, psp0, post),
        "dense side by side": dense_products(params, s, psp0, post, concat=True),
    }
    # event: the list fits the largest capacity (compact rows) or overflows (dense fallback)
    n_steps = int(jnp.sum(jnp.any(s != 0, axis=1)))
    assert 10 < n_steps < 1000
    for name, cap, seg in (
        ("event", 4096, False),
        ("event, per spike", 4096, True),
        ("event, dense fallback", n_steps - 1, False),
    ):
        routes[name], sums_event = event_sums(params, cap, s, psp0, args, segment=seg)
        np.testing.assert_allclose(sums_event.decay, sums.decay, rtol=1e-6, err_msg=name)
    (got, psp), sums_scan = scan_products(params, s, psp0, args)
    routes["scan"] = (got, psp)
    np.testing.assert_allclose(sums_scan.decay, sums.decay, rtol=1e-6)
    for name, (got, psp) in routes.items():
        for g, r in zip(got, ref, strict=True):
            scale = np.abs(r).max()
            assert scale > 0
            np.testing.assert_allclose(g, r, rtol=0, atol=2e-5 * scale, err_msg=name)
        for p, q in zip(psp, psp_ref, strict=True):
            np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-7, err_msg=name)
    # negative control: without the carried trace the sums differ
    (bare, _), _ = scan_products(params, s, (0 * psp0[0], 0 * psp0[1]), args)
    assert np.abs(np.asarray(bare[0]) - ref[0]).max() > 1e-3 * np.abs(ref[0]).max()
