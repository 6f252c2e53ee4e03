"""Tests for ssjax.readout: the LI readout against its closed form, LIF and a block split."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssjax.filters import epsilon_kernel
from ssjax.network import Network, simulate
from ssjax.neuron import LIFParams
from ssjax.readout import li_init, li_readout, li_scan


def _closed_form(p: LIFParams, w: float, t0: int, n_steps: int) -> np.ndarray:
    """``U - U_rest`` after one input spike of weight w at step t0: the geometric sum."""
    a, _, c = p.membrane_coeffs()
    q = p.syn_decay
    n = np.arange(n_steps) - t0
    v = c * w * (a ** (n + 1) - q ** (n + 1)) / (a - q)
    return np.where(n >= 0, v, 0.0)


@pytest.mark.parametrize("integrator", ["euler", "exact"])
def test_one_spike_response_is_the_closed_form(integrator):
    with jax.enable_x64(True):
        p = LIFParams(integrator=integrator, tau_mem=20e-3, tau_syn=5e-3)
        n, t0, w = 600, 37, 0.03
        x = np.zeros((n, 1, 3))
        x[t0, 0, 1] = w
        _, u = li_scan(p, jnp.asarray(x))
        v = np.asarray(u) - p.u_rest
        np.testing.assert_allclose(v[:, 0, 1], _closed_form(p, w, t0, n), rtol=1e-10, atol=1e-16)
        np.testing.assert_array_equal(v[:, 0, [0, 2]], 0.0)  # no input, no response
        assert v[:, 0, 1].max() > 1e-3  # not vacuous: a visible PSP
        if integrator == "exact":  # the PSP kernel of ssjax.filters, sampled one step later
            t = np.arange(1, n - t0 + 1) * p.dt
            eps = np.asarray(epsilon_kernel(jnp.asarray(t), p.tau_syn, p.tau_mem))
            np.testing.assert_allclose(v[t0:, 0, 1], w * eps, rtol=1e-10, atol=1e-16)
            k_peak = math.log(p.tau_mem / p.tau_syn) / (1 / p.tau_syn - 1 / p.tau_mem) / p.dt
            assert abs(int(np.argmax(v[:, 0, 1])) - t0 - (k_peak - 1)) <= 1


def test_readout_equals_a_lif_layer_that_never_spikes():
    rng = np.random.default_rng(0)
    s = jnp.asarray((rng.random((300, 4, 10)) < 0.05).astype(np.float32))
    w = jnp.asarray(rng.normal(0, 0.05, (10, 3)).astype(np.float32))
    p = LIFParams()
    quiet = Network((10, 3), LIFParams(theta=10.0))
    _, rec = simulate(quiet, (w,), s)
    assert float(rec.spikes[0].sum()) == 0
    _, u = li_readout(p, s, w)
    np.testing.assert_array_equal(u, rec.u[0])
    assert float(jnp.abs(u - p.u_rest).max()) > 1e-3


def test_blocks_carry_the_state():
    rng = np.random.default_rng(1)
    s = jnp.asarray((rng.random((200, 2, 6)) < 0.1).astype(np.float32))
    w = jnp.asarray(rng.normal(0, 0.05, (6, 4)).astype(np.float32))
    p = LIFParams()
    st_all, u_all = li_readout(p, s, w)
    st, u1 = li_readout(p, s[:77], w, li_init(p, (2, 4)))
    st, u2 = li_readout(p, s[77:], w, st)
    np.testing.assert_array_equal(np.concatenate([u1, u2]), u_all)
    jax.tree.map(np.testing.assert_array_equal, st, st_all)


def test_max_over_time_loss_gradient_through_the_readout_matches_finite_differences():
    from ssjax.classification import ClassifierLoss

    with jax.enable_x64(True):
        rng = np.random.default_rng(2)
        s = jnp.asarray((rng.random((150, 3, 8)) < 0.05).astype(np.float64))
        w = rng.normal(0, 0.02, (8, 4))
        labels = jnp.asarray([0, 3, 1])
        p, readout = LIFParams(tau_mem=20e-3), ClassifierLoss("max", scale=500.0)

        @jax.jit
        def loss(w):
            return readout.loss(li_readout(p, s, w)[1], labels, p.dt)

        g = np.asarray(jax.grad(loss)(jnp.asarray(w)))
        h = 1e-7
        for i in [(0, 0), (3, 1), (7, 3), (5, 2)]:
            e = np.zeros_like(w)
            e[i] = h
            fd = (float(loss(jnp.asarray(w + e))) - float(loss(jnp.asarray(w - e)))) / (2 * h)
            assert g[i] == pytest.approx(fd, rel=1e-5, abs=1e-8)
        assert np.abs(g).max() > 1e-3
