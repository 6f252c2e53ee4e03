"""Networks: layer-wise and step-wise routes agree; batching; delays; initialisation."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssjax.network import (
    Network,
    init_weights,
    matmul,
    simulate,
    simulate_stepwise,
)
from ssjax.neuron import LIFParams
from ssjax.spike import Surrogate
from ssjax.tasks.raster import frozen_poisson


def _inputs(key, T, batch, n, rate=50.0):
    x = frozen_poisson(key, n * int(np.prod(batch or (1,))), rate, T * 1e-4, 1e-4)
    return x.reshape((T, *batch, n))


def _net(sizes, delay=0.0, integrator="euler"):
    return Network(sizes, LIFParams(delay=delay, integrator=integrator))


def _active_weights(net, key, gain=5.0):
    return tuple(w * gain for w in init_weights(net, key))


@pytest.mark.parametrize("delay", [0.0, 8e-4])
@pytest.mark.parametrize("sizes", [(100, 1), (100, 4, 1), (30, 20, 10, 5)])
def test_layerwise_and_stepwise_identical(sizes, delay):
    net = _net(sizes, delay)
    w = _active_weights(net, jax.random.PRNGKey(0), gain=10.0)
    x = _inputs(jax.random.PRNGKey(1), 3000, (2,), sizes[0], rate=100.0)
    sa, ra = jax.jit(simulate, static_argnums=0)(net, w, x)
    sb, rb = jax.jit(simulate_stepwise, static_argnums=0)(net, w, x)
    for a, b in zip(ra.spikes, rb.spikes, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(ra.u, rb.u, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-7)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-7), sa, sb)
    # negative control: the check is not vacuous, every layer fired
    assert all(float(s.sum()) > 0 for s in ra.spikes)


def test_carried_state_equals_one_long_run():
    net = _net((50, 8, 3), delay=5e-4)
    w = _active_weights(net, jax.random.PRNGKey(2))
    x = _inputs(jax.random.PRNGKey(3), 4000, (), 50)
    sim = jax.jit(simulate, static_argnums=0)
    s_full, r_full = sim(net, w, x)
    s1, r1 = sim(net, w, x[:1500])
    s2, r2 = sim(net, w, x[1500:], s1)
    for l in range(2):
        np.testing.assert_array_equal(
            jnp.concatenate([r1.spikes[l], r2.spikes[l]]), r_full.spikes[l]
        )
    jax.tree.map(np.testing.assert_array_equal, s2, s_full)


def test_vmap_over_batch_equals_batched_call():
    net = _net((40, 6, 2))
    w = _active_weights(net, jax.random.PRNGKey(4))
    x = _inputs(jax.random.PRNGKey(5), 2000, (4,), 40)
    _, rb = simulate(net, w, x)
    _, rv = jax.vmap(lambda xi: simulate(net, w, xi), in_axes=1, out_axes=(0, 1))(x)
    for a, b in zip(rb.spikes, rv.spikes, strict=True):
        np.testing.assert_array_equal(a, b)


def test_delay_shifts_output_by_delay_steps():
    """With one layer, a delay of d steps shifts the whole response by exactly d steps."""
    x = _inputs(jax.random.PRNGKey(6), 3000, (), 60)
    n0 = _net((60, 5))
    w = _active_weights(n0, jax.random.PRNGKey(7), gain=8.0)
    _, r0 = simulate(n0, w, x)
    _, r8 = simulate(_net((60, 5), delay=8e-4), w, x)
    assert float(r0.spikes[0].sum()) > 0
    np.testing.assert_array_equal(r8.spikes[0][8:], r0.spikes[0][:-8])
    np.testing.assert_array_equal(r8.spikes[0][:8], 0.0)


def test_exact_and_euler_integrators_differ_by_order_dt():
    x = _inputs(jax.random.PRNGKey(8), 3000, (), 100, rate=5.0)
    ne, nx = _net((100, 4, 1)), _net((100, 4, 1), integrator="exact")
    w = _active_weights(ne, jax.random.PRNGKey(9), gain=1.0)
    _, re = simulate(ne, w, x)
    _, rx = simulate(nx, w, x)
    assert float(re.spikes[0].sum()) == 0  # subthreshold, so only the integrator differs
    excursion = float(jnp.abs(rx.u[0] - ne.neuron.u_rest).max())
    diff = float(jnp.abs(re.u[0] - rx.u[0]).max())
    assert 0 < diff < 0.02 * excursion  # O(dt / tau_m) = 1%


def test_init_weights_statistics_and_clipping():
    net = Network((400, 300))
    w = init_weights(net, jax.random.PRNGKey(10))[0]
    assert w.shape == (400, 300) and w.dtype == jnp.float32
    assert float(jnp.std(w)) == pytest.approx(0.05 / 20, rel=0.02)
    wide = dataclasses.replace(net, w0=20.0)
    w = init_weights(wide, jax.random.PRNGKey(10))[0]
    assert float(w.max()) == pytest.approx(0.1) and float(w.min()) == pytest.approx(-0.1)
    # same key -> same weights; different key -> different
    a = init_weights(net, jax.random.PRNGKey(1))[0]
    b = init_weights(net, jax.random.PRNGKey(1))[0]
    c = init_weights(net, jax.random.PRNGKey(2))[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_input_validation():
    net = _net((10, 3))
    w = init_weights(net, jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match=r"inputs must be \[T, \*B, 10\]"):
        simulate(net, w, jnp.zeros((5, 9)))
    with pytest.raises(ValueError, match=r"weights\[0\] has shape"):
        simulate(net, (jnp.zeros((10, 4)),), jnp.zeros((5, 10)))
    with pytest.raises(ValueError, match="sizes"):
        Network((10,))


@pytest.mark.parametrize("m", [1, 3, 8, 9, 40])  # multiply-adds up to 8 entries, then a product
def test_matmul_equals_the_float64_product(m):
    x = jax.random.normal(jax.random.PRNGKey(20), (50, 2, m))
    w = jax.random.normal(jax.random.PRNGKey(21), (m, 5))
    ref = np.asarray(x, np.float64) @ np.asarray(w, np.float64)
    terms = np.abs(np.asarray(x, np.float64)) @ np.abs(np.asarray(w, np.float64))
    got = matmul(x, w)
    assert got.shape == (50, 2, 5)
    np.testing.assert_array_less(np.abs(np.asarray(got) - ref), 1e-6 * terms + 1e-30)
    # seeds under vmap (per-seed weights) give the same values to float32 rounding of the terms:
    # the batched product may sum in another order (seen on an AMD EPYC host: 2.5e-5 relative
    # on a near-cancelling entry at m = 40)
    ws = jnp.stack([w, -2 * w])
    got_v = jax.vmap(lambda wi: matmul(x, wi), out_axes=1)(ws)
    np.testing.assert_array_less(np.abs(np.asarray(got_v[:, 0]) - ref), 1e-6 * terms + 1e-30)
    np.testing.assert_array_less(np.abs(np.asarray(got_v[:, 1]) + 2 * ref), 2e-6 * terms + 1e-30)


@pytest.mark.parametrize("forward", ["heaviside", "sigmoid"])
def test_traced_beta_equals_the_neuron_built_with_it(forward):
    """``beta`` given as a traced value gives the bits of a network whose surrogate holds it:
    the potentials, spikes and (through the surrogate) the weight gradient; the smooth forward
    depends on beta, so the control differs there."""
    tau_ref = 5e-3 if forward == "heaviside" else 0.0

    def net_of(beta):
        surrogate = Surrogate(beta=beta, forward=forward)
        return Network((20, 5, 3), LIFParams(tau_ref=tau_ref, surrogate=surrogate))

    net = net_of(1e3)
    w = _active_weights(net, jax.random.PRNGKey(8))
    x = _inputs(jax.random.PRNGKey(9), 800, (), 20)

    def loss(w, net, beta=None):
        _, rec = simulate(net, w, x, beta=beta)
        return jnp.sum(rec.u[-1]) + jnp.sum(rec.spikes[-1]), rec

    grad = jax.jit(jax.grad(loss, has_aux=True), static_argnums=1)
    got = grad(w, net.structure(), jnp.float32(250.0))  # beta traced
    ref = grad(w, net_of(250.0))  # beta a constant of the program
    jax.tree.map(np.testing.assert_array_equal, got, ref)
    assert float(ref[1].spikes[0].sum()) > 0
    other = grad(w, net)
    assert not np.array_equal(other[0][0], ref[0][0])  # beta reaches the gradient
