"""SuperSpike's routes: per-step reference against the exact blocked forms (dense, event), the
one dispatch, output layer = gradient, frozen layers and the regulariser's term."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssjax.network import Network, init_weights
from ssjax.neuron import LIFParams
from ssjax.rules.bptt import bptt_grad
from ssjax.rules.feedback import init_feedback
from ssjax.rules.regulariser import Regularizer, rho_scale
from ssjax.rules.superspike import (
    SuperSpikeConfig,
    block_blocked,
    block_stepwise,
    init_rule_state,
    superspike_grads,
)
from ssjax.rules.superspike import event as event_route
from ssjax.tasks.raster import frozen_poisson

_stepwise = jax.jit(block_stepwise, static_argnums=(0, 1))
_dense = jax.jit(block_blocked, static_argnums=(0, 1))
_event = jax.jit(  # every layer event-driven (one seed, or seeds one after another)
    lambda net, *a: block_blocked(net, *a, event_layers=net.n_layers), static_argnums=(0, 1)
)
_event_in = jax.jit(  # the input layer only (seeds under vmap)
    lambda *a: block_blocked(*a, event_layers=1), static_argnums=(0, 1)
)


def _cos(a, b):
    a, b = np.ravel(a), np.ravel(b)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def _blocks(n, n_in, n_out, dtype, k=2000, seed=10):
    for b in range(n):
        x = frozen_poisson(jax.random.PRNGKey(seed + b), n_in, 30.0, k * 1e-4, 1e-4, dtype=dtype)
        y = frozen_poisson(
            jax.random.PRNGKey(seed + 100 + b), n_out, 10.0, k * 1e-4, 1e-4, dtype=dtype
        )
        yield x, y


CASES = [
    # sizes, axonal delay, Hebbian delay, feedback, regulariser
    ((40, 6, 3), 0.0, 0.0, "symmetric", {}),
    ((40, 6, 3), 8e-4, 8e-4, "random", {"rho": 1.0}),
    ((40, 6, 3), 0.0, 5e-4, "uniform", {"rho": 0.5, "error_dependent": True}),
    ((30, 5, 4, 2), 3e-4, 0.0, "symmetric", {"rho": 1.0, "layers": "all"}),
    # >= _PER_SPIKE inputs and outputs: input currents and sums at the spikes, the hidden
    # error from the output spikes (event route; a shorter check in the default suite below)
    pytest.param(
        (130, 6, 130), 0.0, 0.0, "symmetric", {"rho": 0.5, "error_dependent": True},
        marks=pytest.mark.slow,
    ),
    pytest.param(
        (130, 6, 130), 3e-4, 2e-4, "random", {"rho": 1.0, "layers": "all"},
        marks=pytest.mark.slow,
    ),
]  # fmt: skip


@pytest.mark.parametrize("x64", [False, pytest.param(True, marks=pytest.mark.slow)])
@pytest.mark.parametrize("sizes,delay,hdelay,feedback,het", CASES)
def test_stepwise_dense_event_agree_over_consecutive_blocks(
    sizes, delay, hdelay, feedback, het, x64
):
    with jax.enable_x64(x64):
        dtype = jnp.float64 if x64 else jnp.float32
        net = Network(sizes, LIFParams(delay=delay))
        cfg = SuperSpikeConfig(
            feedback=feedback, hebbian_delay=hdelay, max_spikes=64, regularizer=Regularizer(**het)
        )
        w = tuple(4 * a for a in init_weights(net, jax.random.PRNGKey(0), dtype))
        fb = init_feedback(jax.random.PRNGKey(1), net, feedback, dtype)
        s_a = s_b = s_c = s_d = init_rule_state(net, cfg, dtype, fb)
        tol = 1e-12 if x64 else 2e-5
        for x, y in _blocks(3, sizes[0], sizes[-1], dtype):
            g_a, s_a, aux = _stepwise(net, cfg, w, x, y, s_a)
            g_b, s_b, _ = _dense(net, cfg, w, x, y, s_b)
            g_c, s_c, _ = _event(net, cfg, w, x, y, s_c)
            g_d, s_d, _ = _event_in(net, cfg, w, x, y, s_d)
            assert all(float(s.sum()) > 0 for s in aux.record.spikes)  # every layer active
            for l in range(net.n_layers):
                scale = float(jnp.abs(g_a[l]).max())
                assert scale > 0
                np.testing.assert_allclose(g_b[l], g_a[l], rtol=0, atol=tol * scale)
                np.testing.assert_allclose(g_c[l], g_b[l], rtol=0, atol=tol * scale)
                np.testing.assert_allclose(g_d[l], g_b[l], rtol=0, atol=tol * scale)
            # carried states agree too (eligibility filters, traces, network)
            for s_x in (s_b, s_c, s_d):
                jax.tree.map(
                    lambda p, q: np.testing.assert_allclose(p, q, rtol=tol, atol=tol * 1e-3),
                    s_a,
                    s_x,
                )


@pytest.mark.parametrize("feedback", [pytest.param("symmetric", marks=pytest.mark.slow), "random"])
def test_event_route_at_the_spikes_equals_stepwise(feedback):
    """>= _PER_SPIKE inputs and outputs: the input currents and the input layer's sums taken at
    the spikes, the hidden error from the output spikes; with the regulariser and delays."""
    sizes = (130, 6, 130)
    assert min(sizes[0], sizes[-1]) >= event_route._PER_SPIKE
    net = Network(sizes, LIFParams(delay=3e-4))
    het = Regularizer(rho=1.0, layers="all")
    cfg = SuperSpikeConfig(feedback=feedback, hebbian_delay=2e-4, regularizer=het)
    w = tuple(4 * a for a in init_weights(net, jax.random.PRNGKey(0)))
    s_a = s_c = init_rule_state(
        net, cfg, jnp.float32, init_feedback(jax.random.PRNGKey(1), net, feedback)
    )
    for x, y in _blocks(2, sizes[0], sizes[-1], jnp.float32, k=1000):
        g_a, s_a, aux = _stepwise(net, cfg, w, x, y, s_a)
        g_c, s_c, _ = _event(net, cfg, w, x, y, s_c)
        assert all(float(s.sum()) > 0 for s in aux.record.spikes)
        assert int(jnp.sum(event_route.step_spikes(x).n > 2)) > 0  # steps with 3+ spikes
        for l in range(net.n_layers):
            scale = float(jnp.abs(g_a[l]).max())
            assert scale > 0
            np.testing.assert_allclose(g_c[l], g_a[l], rtol=0, atol=2e-5 * scale)
        jax.tree.map(lambda p, q: np.testing.assert_allclose(p, q, rtol=2e-5, atol=2e-8), s_a, s_c)


# 130: the input layer sums per spike; 60 (13 s) runs with the long checks
@pytest.mark.parametrize("n_in", [pytest.param(n, marks=pytest.mark.slow) for n in (60, 130)])
def test_event_route_sparse_and_fallback_branches_match_dense(n_in):
    net = Network((n_in, 8, 2))
    w = tuple(4 * a for a in init_weights(net, jax.random.PRNGKey(2)))
    x, y = next(_blocks(1, n_in, 2, jnp.float32))
    st = init_rule_state(net, SuperSpikeConfig())
    g_ref, _, aux = _dense(net, SuperSpikeConfig(), w, x, y, st)
    # steps that carry presynaptic spikes, per layer
    n_steps, n_hid = (int((s.sum(1) > 0).sum()) for s in (x, aux.record.spikes[0]))
    assert 0 < n_hid < n_steps
    assert (n_in >= event_route._PER_SPIKE) == (n_in == 130)  # which sum the input layer takes
    # each layer: overflow -> dense fallback; just fits; room to spare (a smaller capacity)
    for cap in (n_hid // 4, n_hid, n_steps // 4, n_steps, 4 * n_steps):
        g, _, _ = _event(net, SuperSpikeConfig(max_spikes=cap), w, x, y, st)
        for l in range(2):
            np.testing.assert_allclose(g[l], g_ref[l], atol=2e-5 * float(jnp.abs(g_ref[l]).max()))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_output_layer_update_equals_bptt_gradient(seed):
    """Conditions: reset not differentiated, same surrogate, no Hebbian delay, no regulariser,
    zero traces at the block start. Then -g = dL/dW / t_b exactly for the output layer."""
    net = Network((50, 7, 3))
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    w = tuple(3 * a for a in init_weights(net, k1))
    x = frozen_poisson(k2, 50, 30.0, 0.5, 1e-4)
    y = frozen_poisson(k3, 3, 10.0, 0.5, 1e-4)
    cfg = SuperSpikeConfig()
    g, _, aux = _dense(net, cfg, w, x, y, init_rule_state(net, cfg))
    gb, _ = bptt_grad(net, w, x, y)
    assert float(aux.record.spikes[-1].sum()) > 0
    assert _cos(g[-1], gb[-1]) > 0.9999
    np.testing.assert_allclose(
        float(jnp.linalg.norm(gb[-1]) / jnp.linalg.norm(g[-1])), 0.5, rtol=1e-4
    )
    # negative control: a hidden layer is *not* the gradient (no sigma' of the layer above)
    assert _cos(g[0], gb[0]) < 0.9999


def test_output_equivalence_breaks_with_hebbian_delay():
    """Negative control: a Hebbian delay violates the conditions of the equivalence."""
    net = Network((50, 3))
    w = tuple(3 * a for a in init_weights(net, jax.random.PRNGKey(3)))
    x, y = next(_blocks(1, 50, 3, jnp.float32, k=5000))
    cfg = SuperSpikeConfig(hebbian_delay=2e-3)
    g, _, _ = _dense(net, cfg, w, x, y, init_rule_state(net, cfg))
    gb, _ = bptt_grad(net, w, x, y)
    assert _cos(g[0], gb[0]) < 0.999


def test_feedback_none_freezes_hidden_layers():
    net = Network((40, 6, 3))
    w = tuple(4 * a for a in init_weights(net, jax.random.PRNGKey(4)))
    x, y = next(_blocks(1, 40, 3, jnp.float32))
    cfg = SuperSpikeConfig(feedback="none")
    g, _, _ = _dense(net, cfg, w, x, y, init_rule_state(net, cfg))
    assert float(jnp.abs(g[0]).max()) == 0.0 and float(jnp.abs(g[1]).max()) > 0


def test_regulariser_term_is_exact_with_zero_error():
    """With target = output (no error) only the regulariser acts: -g = rho w sum_t z^a / K."""
    net = Network((40, 6, 3))
    w = tuple(4 * a for a in init_weights(net, jax.random.PRNGKey(8)))
    x, _ = next(_blocks(1, 40, 3, jnp.float32))
    cfg = SuperSpikeConfig(feedback="random", regularizer=Regularizer(rho=2.0, a=4.0, tau=0.05))
    fb = init_feedback(jax.random.PRNGKey(9), net, "random")
    st = init_rule_state(net, cfg, feedback=fb)
    _, _, aux = _dense(net, cfg, w, x, jnp.zeros((x.shape[0], 3)), st)
    y = aux.record.spikes[-1]  # the network's own output as target: zero output error
    g, _, aux = _dense(net, cfg, w, x, y, st)
    s_h = np.asarray(aux.record.spikes[0], np.float64)
    assert s_h.sum() > 0
    a = np.exp(-1e-4 / 0.05)
    z = np.zeros(6)
    acc = np.zeros(6)
    for s in s_h:
        z = a * z + s
        acc += z**4
    # regularizer.rho is in the reference code's units: the rule applies rho_scale times it
    scale = rho_scale(net.neuron, cfg.tau_rise, cfg.tau_decay)
    expected = 2.0 * scale * np.asarray(w[0]) * acc[None, :] / x.shape[0]
    np.testing.assert_allclose(g[0], expected, rtol=1e-4, atol=1e-9)
    np.testing.assert_array_equal(g[1], 0.0)  # output layer: no error, not regularised


@pytest.mark.slow  # long check, run by .ci/run after the default suite
def test_superspike_grads_dispatches_methods():
    net = Network((20, 4, 2))
    w = tuple(4 * a for a in init_weights(net, jax.random.PRNGKey(12)))
    x, y = next(_blocks(1, 20, 2, jnp.float32, k=1000))
    outs = []
    for m in ("stepwise", "dense", "event"):
        cfg = SuperSpikeConfig(method=m)
        outs.append(superspike_grads(net, cfg, w, x, y, init_rule_state(net, cfg))[0])
    for o in outs[1:]:
        jax.tree.map(
            lambda p, q: np.testing.assert_allclose(
                p, q, atol=1e-5 * float(jnp.abs(q).max()) + 1e-12
            ),
            o,
            outs[0],
        )
    assert dataclasses.replace(SuperSpikeConfig(), method="event").method == "event"
