"""The blocked products ``z^T post``: the dense product, the groups side by side, the sum
accumulated in the reverse scan and the event-driven sum, against a direct sum."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssjax.neuron import LIFParams
from ssjax.rules.superspike._adjoint import post_signals, psp_filter
from ssjax.rules.superspike.dense import dense_products, scan_products
from ssjax.rules.superspike.event import event_sums


@pytest.mark.parametrize("n_pre,n_post", [pytest.param(3, 2, marks=pytest.mark.slow), (20, 5)])
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
