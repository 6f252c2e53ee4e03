"""Credit assignment: the layer errors of each feedback strategy against direct products."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssjax.network import Network, init_weights
from ssjax.rules.feedback import init_feedback, layer_errors


def _close_to_product(got, *factors):
    """``got`` equals the float64 product of ``factors`` to float32 rounding of its terms (the
    sums may run in another order: a near-cancelling entry keeps only an absolute precision)."""
    ref = functools.reduce(np.matmul, [np.asarray(f, np.float64) for f in factors])
    terms = functools.reduce(np.matmul, [np.abs(np.asarray(f, np.float64)) for f in factors])
    np.testing.assert_array_less(np.abs(np.asarray(got) - ref), 1e-6 * terms + 1e-30)


def test_layer_errors_per_feedback():
    net = Network((10, 4, 5, 3))
    w = init_weights(net, jax.random.PRNGKey(5))
    e = jax.random.normal(jax.random.PRNGKey(6), (7, 3))
    sym = layer_errors(e, w, (), "symmetric")
    _close_to_product(sym[1], e, w[2].T)
    _close_to_product(sym[0], e, w[2].T, w[1].T)
    uni = layer_errors(e, w, init_feedback(None, net, "uniform"), "uniform")
    np.testing.assert_allclose(uni[1], jnp.broadcast_to(e.sum(1, keepdims=True), (7, 5)), rtol=1e-6)
    np.testing.assert_allclose(
        uni[0], jnp.broadcast_to(5 * e.sum(1, keepdims=True), (7, 4)), rtol=1e-5
    )
    fb = init_feedback(jax.random.PRNGKey(7), net, "random")
    assert [f.shape for f in fb] == [(4, 5), (5, 3)]
    np.testing.assert_array_equal(fb[0], init_feedback(jax.random.PRNGKey(7), net, "random")[0])
    assert not np.array_equal(fb[0], init_feedback(jax.random.PRNGKey(8), net, "random")[0])
    assert abs(float(jnp.std(jnp.concatenate([f.ravel() for f in fb]))) - 1) < 0.35
    rnd = layer_errors(e, w, fb, "random")
    _close_to_product(rnd[1], e, fb[1].T)
    _close_to_product(rnd[0], e, fb[1].T, fb[0].T)
    np.testing.assert_array_equal(layer_errors(e, w, (), "none")[0], 0.0)
    with pytest.raises(ValueError, match="feedback must be one of"):
        layer_errors(e, w, (), "backprop")
