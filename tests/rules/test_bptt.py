"""BPTT: finite differences on a smooth stand-in; per-example vmap equals the batch gradient."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssjax.network import Network, init_weights
from ssjax.neuron import LIFParams
from ssjax.optim import Optimizer
from ssjax.rules.bptt import bptt_grad, bptt_loss, with_reset_grad
from ssjax.spike import Surrogate
from ssjax.tasks.raster import frozen_poisson


def _task(key, T, batch, n_in, n_out, dtype=jnp.float32):
    k1, k2 = jax.random.split(key)
    x = frozen_poisson(k1, n_in * batch, 40.0, T * 1e-4, 1e-4, dtype=dtype)
    y = frozen_poisson(k2, n_out * batch, 20.0, T * 1e-4, 1e-4, dtype=dtype)
    return x.reshape(T, batch, n_in), y.reshape(T, batch, n_out)


def _smooth_net(sizes):
    neuron = LIFParams(
        surrogate=Surrogate(forward="sigmoid", beta=300.0), tau_ref=0.0, reset_grad=True
    )
    return Network(sizes, neuron)


@pytest.mark.parametrize("sizes", [(20, 3), pytest.param((20, 6, 3), marks=pytest.mark.slow)])
def test_gradient_matches_finite_differences_on_smooth_stand_in(sizes):
    with jax.enable_x64(True):
        net = _smooth_net(sizes)
        w = tuple(3 * x for x in init_weights(net, jax.random.PRNGKey(0), jnp.float64))
        x, y = _task(jax.random.PRNGKey(1), 600, 2, sizes[0], sizes[-1], jnp.float64)
        g, _ = bptt_grad(net, w, x, y)

        def f(ws):
            return bptt_loss(ws, net, x, y)[0]

        rng = np.random.default_rng(0)
        for l in range(len(w)):
            for _ in range(4):
                i, j = rng.integers(w[l].shape[0]), rng.integers(w[l].shape[1])
                h = 1e-6
                wp = tuple(a.at[i, j].add(h) if k == l else a for k, a in enumerate(w))
                wm = tuple(a.at[i, j].add(-h) if k == l else a for k, a in enumerate(w))
                fd = (f(wp) - f(wm)) / (2 * h)
                assert float(g[l][i, j]) == pytest.approx(float(fd), rel=1e-5, abs=1e-6)
        # the check is not vacuous: gradients are non-trivial in every layer
        assert all(float(jnp.abs(gl).max()) > 1e-2 for gl in g)


@pytest.mark.parametrize(
    "reset_grad", [pytest.param(r, marks=pytest.mark.slow) for r in (False, True)]
)
def test_vmap_per_example_gradients_average_to_batch_gradient(reset_grad):
    net = with_reset_grad(Network((30, 5, 2)), reset_grad)
    w = tuple(4 * x for x in init_weights(net, jax.random.PRNGKey(2)))
    x, y = _task(jax.random.PRNGKey(3), 2000, 4, 30, 2)
    g_batch, aux = bptt_grad(net, w, x, y)
    g_each, _ = jax.vmap(
        lambda xi, yi: bptt_grad(net, w, xi[:, None], yi[:, None]), in_axes=(1, 1)
    )(x, y)
    for gb, ge in zip(g_batch, g_each, strict=True):
        np.testing.assert_allclose(gb, ge.mean(0), rtol=1e-5, atol=1e-6 * float(jnp.abs(gb).max()))
    assert float(aux.record.spikes[-1].sum()) > 0 and float(jnp.abs(g_batch[0]).max()) > 0


def test_reset_gradient_choice_changes_hidden_gradient():
    net = Network((30, 5, 2))
    w = tuple(4 * x for x in init_weights(net, jax.random.PRNGKey(4)))
    x, y = _task(jax.random.PRNGKey(5), 2000, 2, 30, 2)
    g0, a0 = bptt_grad(with_reset_grad(net, False), w, x, y)
    g1, a1 = bptt_grad(with_reset_grad(net, True), w, x, y)
    np.testing.assert_array_equal(a0.loss, a1.loss)  # same forward pass
    assert float(a0.record.spikes[0].sum()) > 0
    assert not np.allclose(g0[0], g1[0])


def test_carried_error_state_is_a_constant():
    net = Network((30, 2))
    w = tuple(4 * x for x in init_weights(net, jax.random.PRNGKey(6)))
    x, y = _task(jax.random.PRNGKey(7), 3000, 1, 30, 2)
    _, aux1 = bptt_loss(w, net, x[:1500], y[:1500])
    loss_full, aux_full = bptt_loss(w, net, x, y)
    loss2, aux2 = bptt_loss(w, net, x[1500:], y[1500:], aux1.state, aux1.err_state)
    np.testing.assert_allclose(aux1.loss + aux2.loss, aux_full.loss, rtol=1e-5)
    g, _ = bptt_grad(net, w, x[1500:], y[1500:], aux1.state, aux1.err_state)
    assert all(bool(jnp.isfinite(gl).all()) for gl in g)


def test_targets_shape_validated():
    net = Network((10, 2))
    w = init_weights(net, jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="targets must be"):
        bptt_loss(w, net, jnp.zeros((100, 10)), jnp.zeros((100, 3)))


def test_jit_with_static_network():
    net = dataclasses.replace(Network((10, 2)))
    w = init_weights(net, jax.random.PRNGKey(0))
    x, y = _task(jax.random.PRNGKey(8), 500, 1, 10, 2)
    g1, _ = jax.jit(bptt_grad, static_argnums=0)(net, w, x, y)
    g2, _ = bptt_grad(net, w, x, y)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), g1, g2)


def _one_block(rule):
    """One 0.5 s block of the timing task under ``TrainSpec(rule=rule)``, fixed rate; returns
    the new state, the metrics, and the block's inputs, targets and start weights."""
    from ssjax.tasks.timing import timing_task
    from ssjax.train import TrainSpec, block_step, init_train_state

    task = timing_task(jax.random.PRNGKey(0))
    spec = TrainSpec(
        Network((100, 1)),
        rule=rule,
        optimizer=Optimizer("fixed", burn_in=0.0, drops=()),
        block=0.5,
    )
    st = init_train_state(spec, jax.random.PRNGKey(1))
    st = st._replace(weights=tuple(4 * w for w in st.weights))  # the output fires
    new, m = jax.jit(block_step, static_argnums=0)(spec, task.inputs, task.targets, st)
    return new, m, (task.inputs.astype(jnp.float32), task.targets, st.weights)


def test_bptt_rule_trains_and_reports_on_its_own_loss_constants():
    """The BPTT rule's loss is its configured filter (it was the 5 ms / 10 ms default whatever
    the config said: the weights after a block were bit-identical), and the reported distance
    normalises with the same filter."""
    from ssjax.losses import van_rossum_distance
    from ssjax.network import simulate
    from ssjax.rules.bptt import BPTTConfig

    slow = BPTTConfig(tau_rise=2e-3, tau_decay=20e-3)
    a, m_a, (x, y, w) = _one_block(BPTTConfig())
    b, m_b, _ = _one_block(slow)
    assert not np.array_equal(a.weights[0], b.weights[0])
    net = Network((100, 1))
    out = simulate(net, w, x)[1].spikes[-1]
    assert float(out.sum()) > 0
    for m, cfg in ((m_a, BPTTConfig()), (m_b, slow)):
        want = van_rossum_distance(y, out, 1e-4, tau_rise=cfg.tau_rise, tau_decay=cfg.tau_decay)
        np.testing.assert_allclose(m.sq_err_seg.sum(0), want, rtol=1e-5)
    # the step is minus the gradient of that loss (fixed rate r0 = 1e-3, then the clip)
    for new, cfg in ((a, BPTTConfig()), (b, slow)):
        g, _ = bptt_grad(net, w, x, y, tau_rise=cfg.tau_rise, tau_decay=cfg.tau_decay)
        np.testing.assert_allclose(
            new.weights[0], jnp.clip(w[0] - 1e-3 * g[0], -0.1, 0.1), rtol=1e-6, atol=1e-9
        )
