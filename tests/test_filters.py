"""Filters against explicit convolution with the closed-form kernels."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssjax import filters

DT = 1e-4


def _spikes(key, shape, p=0.01):
    return (jax.random.uniform(key, shape) < p).astype(jnp.float64)


def _conv(x, kernel):
    """Explicit causal convolution y[t] = sum_k kernel[k] x[t-k] along axis 0 (NumPy)."""
    x = np.asarray(x)
    T = x.shape[0]
    y = np.zeros_like(x)
    for k in range(min(T, len(kernel))):
        y[k:] += kernel[k] * x[: T - k]
    return y


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def test_exp_filter_matches_closed_form_convolution():
    x = _spikes(jax.random.PRNGKey(0), (800, 3))
    tau = 7e-3
    y, _ = filters.exp_filter(x, tau, DT, gain=1 / tau)
    kernel = np.exp(-np.arange(800) * DT / tau) / tau
    np.testing.assert_allclose(y, _conv(x, kernel), rtol=1e-12, atol=1e-9)


def test_double_exp_matches_alpha_kernel_convolution():
    x = _spikes(jax.random.PRNGKey(1), (1500, 2, 3))
    y, _ = filters.double_exp_filter(x, 5e-3, 10e-3, DT)
    kernel = np.asarray(filters.alpha_kernel(jnp.arange(1500) * DT, 5e-3, 10e-3))
    np.testing.assert_allclose(y, _conv(x, kernel), rtol=1e-10, atol=1e-8)
    # negative control: a different rise time is visibly different
    y2, _ = filters.double_exp_filter(x, 4e-3, 10e-3, DT)
    assert np.abs(np.asarray(y2) - np.asarray(y)).max() > 1.0


def test_reverse_filter_is_anticausal_convolution_and_adjoint():
    key1, key2 = jax.random.split(jax.random.PRNGKey(2))
    x = _spikes(key1, (900, 4))
    h = jax.random.normal(key2, (900, 4))
    kernel = np.asarray(filters.alpha_kernel(jnp.arange(900) * DT, 5e-3, 10e-3))
    yr, _ = filters.double_exp_filter(x, 5e-3, 10e-3, DT, reverse=True)
    np.testing.assert_allclose(yr, _conv(np.asarray(x)[::-1], kernel)[::-1], rtol=1e-10, atol=1e-8)
    # adjoint identity: <h, alpha * x> = <alpha^R * h, x>
    yc, _ = filters.double_exp_filter(x, 5e-3, 10e-3, DT)
    hr, _ = filters.double_exp_filter(h, 5e-3, 10e-3, DT, reverse=True)
    np.testing.assert_allclose(jnp.sum(h * yc), jnp.sum(hr * x), rtol=1e-11)


def test_carried_state_equals_one_long_run():
    x = _spikes(jax.random.PRNGKey(3), (1000, 5), p=0.05)
    y_full, s_full = filters.double_exp_filter(x, 5e-3, 10e-3, DT)
    y1, s1 = filters.double_exp_filter(x[:370], 5e-3, 10e-3, DT)
    y2, s2 = filters.double_exp_filter(x[370:], 5e-3, 10e-3, DT, state=s1)
    np.testing.assert_array_equal(np.concatenate([y1, y2]), y_full)
    np.testing.assert_array_equal(s2.decay, s_full.decay)
    np.testing.assert_allclose(filters.double_exp_readout(s2, 5e-3, 10e-3), y_full[-1], rtol=1e-14)


def test_kernels_closed_form_properties():
    t = jnp.arange(0, 0.3, DT)
    a = filters.alpha_kernel(t, 5e-3, 10e-3)
    assert float(a[0]) == 0.0
    assert float(jnp.sum(a) * DT) == pytest.approx(1.0, abs=1e-3)  # unit integral (Riemann)
    assert float(filters.alpha_kernel(-1e-3, 5e-3, 10e-3)) == 0.0
    eps = filters.epsilon_kernel(t, 5e-3, 10e-3)
    t_peak = 10e-3 * np.log(2)
    assert float(jnp.max(eps)) == pytest.approx(0.25, rel=1e-5)
    assert float(t[jnp.argmax(eps)]) == pytest.approx(t_peak, abs=DT)


def test_alpha_sq_sum_equals_numeric_sum():
    k = np.asarray(filters.alpha_kernel(jnp.arange(20000) * DT, 5e-3, 10e-3))
    assert filters.alpha_sq_sum(5e-3, 10e-3, DT) == pytest.approx(np.sum(k**2) * DT, rel=1e-12)


def test_validation():
    with pytest.raises(ValueError, match="tau_rise < tau_decay"):
        filters.double_exp_filter(jnp.zeros((3, 1)), 10e-3, 5e-3, DT)
    with pytest.raises(ValueError, match="tau > 0"):
        filters.decay_factor(0.0, DT)


def test_float32_dtype_preserved():
    with jax.enable_x64(False):
        x = jnp.zeros((10, 2), jnp.float32).at[0].set(1.0)
        y, s = filters.double_exp_filter(x, 5e-3, 10e-3, DT)
        assert y.dtype == jnp.float32 and s.rise.dtype == jnp.float32
