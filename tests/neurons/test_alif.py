"""Adaptive LIF: closed forms of the membrane and the adaptive threshold, the network routes,
BPTT against finite differences, SuperSpike's per-step route, the fast routes' refusal, the
config section; negative controls: beta_a = 0 is LIF bit for bit, and LIF's gradient does not
match ALIF's finite differences."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssjax.experiment.config import ConfigError, build_trainer, load_config
from ssjax.network import Network, init_weights, simulate, simulate_stepwise
from ssjax.neuron import LIFParams, lif_init, lif_step
from ssjax.neurons import ALIFParams, Neuron, alif_step
from ssjax.rules.base import Block
from ssjax.rules.bptt import bptt_grad, bptt_loss
from ssjax.rules.superspike import SuperSpikeConfig, init_rule_state, superspike, superspike_grads
from ssjax.spike import Surrogate
from ssjax.tasks.raster import frozen_poisson

_stepwise = jax.jit(superspike_grads, static_argnums=(0, 1))


def _drive(p, i_ext, n_steps, step=alif_step):
    """``n_steps`` of one neuron under the constant external drive ``i_ext`` (V)."""

    def body(st, _):
        st, s, u = step(p, st, jnp.zeros(1), i_ext)
        return st, (s[0], u[0], st)

    init = p.init((1,), jnp.float64) if step is alif_step else lif_init(p, (1,), jnp.float64)
    return jax.lax.scan(body, init, None, length=n_steps)[1]


@pytest.mark.parametrize("integrator,tau_ref", [("euler", 0.0), ("exact", 1e-3)])
def test_constant_current_membrane_and_threshold_follow_their_closed_forms(integrator, tau_ref):
    """Under a constant drive ``I`` the membrane after the last spike (and refractory period) at
    step ``t_s`` is ``U_rest + I (1 - a^m)``, ``m = t - t_s - R``, and the threshold is
    ``theta + beta_a sum_{t_s < t} rho^(t - t_s - 1)``: spikes, ``u = U - beta_a a`` and ``a``
    from these closed forms alone equal the simulation; ``a`` decays by ``rho`` between spikes
    and jumps by exactly 1 at each."""
    with jax.enable_x64(True):
        p = ALIFParams(integrator=integrator, tau_ref=tau_ref, beta_a=2e-3, tau_a=30e-3)
        drive, n = 0.02, 4000
        s, u, st = _drive(p, drive, n)
        s, u, a = np.asarray(s), np.asarray(u), np.asarray(st.a[:, 0])
        am, rho, R = p.membrane_coeffs()[0], p.adapt_decay, p.ref_steps
        spikes, last = [], None
        want_s, want_u, want_a = np.zeros(n), np.zeros(n), np.zeros(n)
        for t in range(n):
            m = t + 1 if last is None else t - last - R
            v = p.u_rest if m <= 0 else p.u_rest + drive * (1 - am**m)
            a_t = sum(rho ** (t - ts - 1) for ts in spikes)  # before this step's spike
            want_u[t] = v - p.beta_a * a_t
            if want_u[t] > p.theta:
                want_s[t] = 1
                spikes.append(t)
                last = t
            want_a[t] = rho * a_t + want_s[t]
        assert len(spikes) >= 5
        np.testing.assert_array_equal(s, want_s)
        np.testing.assert_allclose(u, want_u, rtol=0, atol=1e-12)
        np.testing.assert_allclose(a, want_a, rtol=1e-12, atol=1e-15)
        # decay between spikes, a jump of exactly 1 at each
        prev = np.concatenate([[0.0], a[:-1]])
        np.testing.assert_allclose(a - rho * prev, s, rtol=0, atol=1e-12)
        assert math.isclose(rho, math.exp(-p.dt / p.tau_a))
        # the adaptation lengthens the inter-spike intervals
        isi = np.diff(spikes)
        assert isi[-1] > isi[0]


def test_without_adaptation_alif_is_lif_bit_for_bit():
    """Negative control: beta_a = 0 gives LIF's spikes and potentials exactly (under a constant
    drive whose LIF intervals are constant), and a network of them LIF's records and updates."""
    with jax.enable_x64(True):
        lif = LIFParams(tau_ref=1e-3)
        alif = ALIFParams(tau_ref=1e-3, beta_a=0.0)
        s_a, u_a, _ = _drive(alif, 0.02, 3000)
        s_l, u_l, _ = _drive(lif, 0.02, 3000, step=lif_step)
        np.testing.assert_array_equal(s_a, s_l)
        np.testing.assert_array_equal(u_a, u_l)
        assert len(set(np.diff(np.flatnonzero(np.asarray(s_l))))) == 1
    w, x, y = _data()
    net_a, net_l = Network((30, 4, 2), alif), Network((30, 4, 2), lif)
    jax.tree.map(np.testing.assert_array_equal, simulate(net_a, w, x)[1], simulate(net_l, w, x)[1])
    jax.tree.map(
        np.testing.assert_array_equal, bptt_grad(net_a, w, x, y)[0], bptt_grad(net_l, w, x, y)[0]
    )
    cfg = SuperSpikeConfig(method="stepwise")
    g_a = _stepwise(net_a, cfg, w, x, y, init_rule_state(net_a, cfg))[0]
    g_l = _stepwise(net_l, cfg, w, x, y, init_rule_state(net_l, cfg))[0]
    jax.tree.map(np.testing.assert_array_equal, g_a, g_l)


NET = Network((30, 4, 2), ALIFParams(beta_a=3e-3, tau_a=50e-3))


def _data(seed=0, k=3000):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    w = tuple(3 * a for a in init_weights(NET, k1))
    x = frozen_poisson(k2, 30, 30.0, k * 1e-4, 1e-4)
    y = frozen_poisson(k3, 2, 10.0, k * 1e-4, 1e-4)
    return w, x, y


def test_network_routes_agree_and_adaptation_reduces_firing():
    assert isinstance(NET.neuron, Neuron)
    w, x, _ = _data()
    _, rec = simulate(NET, w, x)
    _, rec_step = simulate_stepwise(NET, w, x)
    jax.tree.map(np.testing.assert_array_equal, rec, rec_step)
    _, lif = simulate(Network(NET.sizes), w, x)
    n_alif, n_lif = float(rec.spikes[0].sum()), float(lif.spikes[0].sum())
    assert 0 < n_alif < n_lif


def test_stepwise_superspike_output_layer_equals_bptt_gradient():
    """The per-step rule with ALIF (sigma' at ``U - A``, LIF's PSP trace) gives
    ``-g = dL/dW / t_b`` for the output layer, as for LIF (the reset and the threshold's jumps
    are not differentiated: reset_grad=False)."""
    w, x, y = _data(1)
    rule = superspike(NET, SuperSpikeConfig(method="stepwise"))
    out = rule.update(w, rule.init(w, jax.random.PRNGKey(2)), Block(x, y))
    assert float(out.record.spikes[-1].sum()) > 0
    gb, _ = bptt_grad(NET, w, x, y)
    t_b = x.shape[0] * NET.neuron.dt
    a, b = np.ravel(out.updates[-1]) * t_b, np.ravel(gb[-1])
    assert float(np.abs(b).max()) > 0
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4 * float(np.abs(b).max()))


def _smooth(beta_a):
    neuron = ALIFParams(
        surrogate=Surrogate(forward="sigmoid", beta=300.0),
        tau_ref=0.0,
        reset_grad=True,
        beta_a=beta_a,
        tau_a=20e-3,
    )
    return Network((20, 6, 3), neuron)


@pytest.mark.slow  # long check, run by .ci/run after the default suite
def test_bptt_matches_finite_differences_on_the_smooth_stand_in():
    """jax.grad through ALIF (threshold adaptation differentiated) equals central differences
    of the loss; control: LIF's gradient (no adaptation) is far from ALIF's differences."""
    with jax.enable_x64(True):
        net = _smooth(4e-3)
        k1, k2, k3 = jax.random.split(jax.random.PRNGKey(4), 3)
        w = tuple(3 * a for a in init_weights(net, k1, jnp.float64))
        x = frozen_poisson(k2, 40, 40.0, 0.06, 1e-4, dtype=jnp.float64).reshape(600, 2, 20)
        y = frozen_poisson(k3, 6, 20.0, 0.06, 1e-4, dtype=jnp.float64).reshape(600, 2, 3)
        g, aux = bptt_grad(net, w, x, y)
        g_lif, _ = bptt_grad(_smooth(0.0), w, x, y)
        assert float(aux.record.spikes[0].sum()) > 1  # graded spikes drive the adaptation

        def f(ws):
            return bptt_loss(ws, net, x, y)[0]

        rng = np.random.default_rng(0)
        fds, gs, gl = [], [], []
        for l in range(len(w)):
            for _ in range(4):
                i, j = rng.integers(w[l].shape[0]), rng.integers(w[l].shape[1])
                h = 1e-6
                wp = tuple(a.at[i, j].add(h) if k == l else a for k, a in enumerate(w))
                wm = tuple(a.at[i, j].add(-h) if k == l else a for k, a in enumerate(w))
                fd = float((f(wp) - f(wm)) / (2 * h))
                assert float(g[l][i, j]) == pytest.approx(fd, rel=1e-5, abs=1e-6)
                fds.append(fd)
                gs.append(float(g[l][i, j]))
                gl.append(float(g_lif[l][i, j]))
        assert all(float(jnp.abs(gl_).max()) > 1e-2 for gl_ in g)
        err_lif = np.abs(np.array(gl) - fds).max()
        assert err_lif > 100 * np.abs(np.array(gs) - fds).max() and err_lif > 1e-3


@pytest.mark.parametrize("method", ["dense", "event"])
def test_fast_routes_refuse_alif_by_name(method):
    w, x, y = _data(3, k=200)
    cfg = SuperSpikeConfig(method=method)
    msg = rf"'{method}' route does not support the neuron type ALIFParams.*method='stepwise'"
    with pytest.raises(TypeError, match=msg):
        superspike(NET, cfg)
    with pytest.raises(TypeError, match=msg):
        superspike_grads(NET, cfg, w, x, y, init_rule_state(NET, cfg))


def test_config_neuron_model_alif(tmp_path):
    path = tmp_path / "alif.yaml"
    path.write_text("neuron: {model: alif, beta_a: 2.0e-3, tau_a: 0.1}\nrule: {method: stepwise}\n")
    neuron = build_trainer(load_config(path)).net.neuron
    assert neuron == ALIFParams(beta_a=2e-3, tau_a=0.1)
    assert (
        type(
            build_trainer(
                load_config(path, ["neuron.model=lif", "neuron.beta_a=1e-3", "neuron.tau_a=0.2"])
            ).net.neuron
        )
        is LIFParams
    )
    bad = [
        (["neuron.tau_a=0.0"], "neuron.tau_a: must be > 0 and > neuron.dt"),
        (["neuron.beta_a=-1e-3"], "neuron.beta_a: must be >= 0 V"),
        (["neuron.model=lif"], "neuron.beta_a: not a key of neuron.model 'lif'"),
        (["neuron.model=alf"], "neuron.model: must be one of 'lif', 'alif'"),
        (["rule.method=dense"], "rule.method: must be 'stepwise' with neuron.model 'alif'"),
    ]
    for overrides, msg in bad:
        with pytest.raises(ConfigError, match=msg):
            load_config(path, overrides)
    # BPTT has no route to choose: ALIF with rule.method left at its default
    path.write_text("neuron: {model: alif}\nrule: {name: bptt}\n")
    assert type(build_trainer(load_config(path)).net.neuron) is ALIFParams
