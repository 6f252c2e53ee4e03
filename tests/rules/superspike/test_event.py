"""The event route's parts: spike lists, event-driven input currents and the per-spike sum
(the route against the dense one and the per-step rule is tested in test_routes.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssjax.filters import DoubleExpState, double_exp_filter
from ssjax.network import Network, init_weights, input_currents
from ssjax.rules.feedback import init_feedback, layer_errors
from ssjax.rules.superspike import SuperSpikeConfig
from ssjax.rules.superspike.event import (
    decoded,
    event_currents,
    event_layer_errors,
    per_spike,
    per_spike_currents,
    spike_slots,
    spike_sums,
    step_spikes,
)
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


@pytest.mark.parametrize("rate", [5.0, 300.0, 3000.0])  # few steps with 3+ spikes; many; dense
def test_per_spike_input_currents_equal_the_dense_product(rate):
    s = frozen_poisson(jax.random.PRNGKey(8), 130, rate, 0.2, 1e-4)
    w = jax.random.normal(jax.random.PRNGKey(9), (130, 9)) * 0.01
    dense = input_currents(s, w)
    tol = 1e-6 * float(jnp.abs(dense).max())
    got = event_currents(SuperSpikeConfig().max_spikes, s, w, per_spike=True)
    np.testing.assert_allclose(got, dense, rtol=0, atol=tol)


def _sparse(key, shape, p, counts=True):
    """Sparse spike counts: about ``p`` per entry, some of 2, one full row, one empty."""
    k1, k2 = jax.random.split(key)
    s = (jax.random.uniform(k1, shape) < p).astype(jnp.float32)
    if counts:
        s = s * jax.random.randint(k2, shape, 1, 3)
    return s.at[3].set(1.0).at[4].set(0.0)


@pytest.mark.parametrize("n", [30, 3000])  # two spikes decoded per step; one (N > _TWO_MAX)
def test_step_spikes_decode_the_steps_with_few_spikes(n):
    s = _sparse(jax.random.PRNGKey(20), (400, n), 1.5 / n)
    sp = step_spikes(s)
    s_np, n_np, cols, vals = (np.asarray(a) for a in (s, sp.n, sp.cols, sp.vals))
    np.testing.assert_array_equal(n_np, np.sum(s_np != 0, axis=1))
    for t in range(s_np.shape[0]):
        (nz,) = np.nonzero(s_np[t])
        if 1 <= len(nz) <= decoded(n):
            got = {int(c): float(v) for c, v in zip(cols[:, t], vals[:, t], strict=True) if v}
            assert got == {int(c): float(s_np[t, c]) for c in nz}
        else:  # not decoded: no values, the spikes are read from s
            assert not np.any(vals[:, t])
    assert decoded(n) == (2 if n == 30 else 1)
    assert int(np.sum((n_np > 0) & (n_np <= decoded(n)))) > 100  # not vacuous


@pytest.mark.parametrize("p", [0.003, 0.03, 0.3])  # few steps with 3+ spikes; more than R/4
def test_per_spike_sums_and_currents_equal_the_products(p):
    """Sums at the spikes (decoded steps, the rest by a list or over all rows) against float64
    products, spike counts of 2 included."""
    n_pre, r, c = 60, 300, 7
    keys = jax.random.split(jax.random.PRNGKey(21), 3)
    s = _sparse(keys[0], (r, n_pre), p)
    rhs = jax.random.normal(keys[1], (r, c))
    w = jax.random.normal(keys[2], (n_pre, c))
    s64 = np.asarray(s, np.float64)
    n_more = int(jnp.sum(step_spikes(s).n > 2))
    assert n_more > 0 and (n_more <= r // 16) == (p < 0.01)  # which branch runs
    ref = s64.T @ np.asarray(rhs, np.float64)
    tol = 1e-5 * np.abs(ref).max()
    np.testing.assert_allclose(per_spike(s, rhs), ref, rtol=0, atol=tol)
    rows, valid = jnp.arange(r)[::-1], jnp.arange(r) >= 10  # listed in any order; padding
    ref_v = (
        s64[np.asarray(rows)[np.asarray(valid)]].T @ np.asarray(rhs, np.float64)[np.asarray(valid)]
    )
    got = spike_sums(s, step_spikes(s), rows, valid, rhs)
    np.testing.assert_allclose(got, ref_v, rtol=0, atol=tol)
    ref_c = s64 @ np.asarray(w, np.float64)
    np.testing.assert_allclose(
        per_spike_currents(s, w), ref_c, rtol=0, atol=1e-5 * np.abs(ref_c).max()
    )
    # negative control: the decoded spikes alone miss those of the steps with three or more
    sp = step_spikes(s)
    alone = sp.vals[0][:, None] * w[sp.cols[0]] + sp.vals[1][:, None] * w[sp.cols[1]]
    assert np.abs(np.asarray(alone) - ref_c).max() > 1e-3


@pytest.mark.parametrize("kind", ["symmetric", "random"])
def test_event_hidden_error_equals_the_filtered_product(kind):
    """alpha * (delta @ F^T) from a carried filter state = (alpha * delta) @ F^T (linearity),
    two hidden layers: the deeper one from the layer above's error."""
    net = Network((20, 9, 8, 140))
    w = init_weights(net, jax.random.PRNGKey(3))
    fb = init_feedback(jax.random.PRNGKey(4), net, kind)
    y = frozen_poisson(jax.random.PRNGKey(5), 140, 20.0, 0.1, 1e-4)
    out = frozen_poisson(jax.random.PRNGKey(6), 140, 20.0, 0.1, 1e-4)
    delta = y - out
    err0 = DoubleExpState(jnp.linspace(0, 3, 140), jnp.linspace(1, 5, 140))
    filt = (5e-3, 10e-3, 1e-4)
    e_out, _ = double_exp_filter(delta, *filt, state=err0)
    ref = layer_errors(e_out, w, fb, kind)
    got = event_layer_errors(delta, err0, e_out, w, fb, kind, filt)
    for g, r in zip(got, ref, strict=True):
        scale = float(jnp.abs(r).max())
        assert scale > 0
        np.testing.assert_allclose(g, r, rtol=0, atol=2e-5 * scale)
    # negative control: without the carried state the error differs
    zero = DoubleExpState(jnp.zeros(140), jnp.zeros(140))
    bad = event_layer_errors(delta, zero, e_out, w, fb, kind, filt)
    assert float(jnp.abs(bad[1] - ref[1]).max()) > 1e-3 * float(jnp.abs(ref[1]).max())
