"""Recurrent hidden layers: both simulation routes, BPTT against finite differences, the
per-step SuperSpike rule against an explicit numpy replica over consecutive blocks, the fast
routes' refusal, the config keys, the alignment with BPTT; negative control: zero recurrent
weights give the feed-forward network's results bit for bit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssjax.analysis.alignment import alignment, rule_grads
from ssjax.experiment.config import ConfigError, build_trainer, load_config
from ssjax.filters import decay_factor
from ssjax.network import Network, init_state, init_weights, simulate, simulate_stepwise
from ssjax.neuron import LIFParams
from ssjax.params import ParamError
from ssjax.rules.bptt import bptt_grad, bptt_loss
from ssjax.rules.feedback import init_feedback
from ssjax.rules.superspike import SuperSpikeConfig, init_rule_state, superspike, superspike_grads
from ssjax.spike import Surrogate
from ssjax.tasks.raster import frozen_poisson

_stepwise = jax.jit(superspike_grads, static_argnums=(0, 1))


def _net(recurrent=(True,), delay=2e-4, sizes=(20, 6, 3), **neuron):
    return Network(sizes, LIFParams(**neuron), recurrent=recurrent, recurrent_delay=delay)


def _data(net, seed=0, k=2000, scale=4.0, dtype=jnp.float32):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    w = tuple(scale * a for a in init_weights(net, k1, dtype))
    x = frozen_poisson(k2, net.sizes[0], 30.0, k * 1e-4, 1e-4, dtype=dtype)
    y = frozen_poisson(k3, net.sizes[-1], 10.0, k * 1e-4, 1e-4, dtype=dtype)
    return w, x, y


def test_weights_state_and_validation():
    net = _net((True, False), 3e-4, (20, 6, 5, 3))
    assert net.weight_shapes() == ((20, 6), (6, 5), (5, 3), (6, 6))
    assert net.post_layers() == (0, 1, 2, 0) and net.recurrent_steps == 3
    w = init_weights(net, jax.random.PRNGKey(0))
    # the feed-forward draws are those of the network without recurrence
    ff = init_weights(Network(net.sizes), jax.random.PRNGKey(0))
    jax.tree.map(np.testing.assert_array_equal, w[:3], ff)
    assert w[3].shape == (6, 6) and float(jnp.abs(w[3]).max()) > 0
    assert init_state(net, (2,)).recurrent[0].shape == (3, 2, 6)
    assert init_state(Network(net.sizes)).recurrent == ()
    with pytest.raises(ValueError, match="expected 4 weight matrices"):
        simulate(net, w[:3], jnp.zeros((10, 20)))
    with pytest.raises(ParamError, match=r"\(network.recurrent\): must be"):
        _net((True, True))
    with pytest.raises(
        ParamError, match=r"\(network.recurrent_delay\): must be > 0 s and a multiple"
    ):
        _net(delay=1.5e-4)
    with pytest.raises(ParamError, match="network.recurrent_delay"):
        _net(delay=0.0)
    _net((False,), delay=0.0)  # read with recurrence only


@pytest.mark.parametrize("delay", [1e-4, 3e-4])
def test_routes_agree_and_recurrence_changes_the_activity(delay):
    net = _net(delay=delay)
    w, x, _ = _data(net)
    st, rec = simulate(net, w, x)
    st2, rec2 = simulate_stepwise(net, w, x)
    jax.tree.map(np.testing.assert_array_equal, (st, rec), (st2, rec2))
    assert all(float(s.sum()) > 0 for s in rec.spikes)
    # the recurrent buffer holds the last d_r hidden spikes
    np.testing.assert_array_equal(st.recurrent[0], rec.spikes[0][-net.recurrent_steps :])
    # a block cut in two gives the same record
    sa, ra = simulate(net, w, x[:700])
    _, rb = simulate(net, w, x[700:], sa)
    np.testing.assert_array_equal(jnp.concatenate([ra.spikes[0], rb.spikes[0]]), rec.spikes[0])
    _, ff = simulate(Network(net.sizes, net.neuron), w[:2], x)
    assert not np.array_equal(ff.spikes[0], rec.spikes[0])


def test_zero_recurrent_weights_equal_the_feed_forward_network_bit_for_bit():
    """Negative control: ``R = 0`` changes nothing (simulation, BPTT, SuperSpike per step);
    the recurrent matrix still gets a (non-zero) update."""
    net = _net(sizes=(20, 6, 5, 3), recurrent=(True, True), delay=1e-4)
    ff = Network(net.sizes, net.neuron)
    w, x, y = _data(ff, 1)
    w0 = w + (jnp.zeros((6, 6)), jnp.zeros((5, 5)))
    jax.tree.map(np.testing.assert_array_equal, simulate(net, w0, x)[1], simulate(ff, w, x)[1])
    g, _ = bptt_grad(net, w0, x, y)
    g_ff, _ = bptt_grad(ff, w, x, y)
    jax.tree.map(np.testing.assert_array_equal, g[:3], g_ff)
    assert float(jnp.abs(g[3]).max()) > 0
    cfg = SuperSpikeConfig(method="stepwise", feedback="symmetric")
    s, st, aux = _stepwise(net, cfg, w0, x, y, init_rule_state(net, cfg))
    s_ff, st_ff, aux_ff = _stepwise(ff, cfg, w, x, y, init_rule_state(ff, cfg))
    jax.tree.map(np.testing.assert_array_equal, aux, aux_ff)  # record and errors
    jax.tree.map(np.testing.assert_array_equal, st.layers[:3], st_ff.layers)  # traces
    # the sums m += e lambda: bit for bit under XLA's default CPU settings; under the suite's
    # single-loop tuning (conftest) the larger scan body is contracted differently (1 ulp)
    for a, b in zip(s[:3], s_ff, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6 * float(jnp.abs(b).max()))
    assert float(jnp.abs(s[3]).max()) > 0


def _smooth_net(delay):
    neuron = LIFParams(
        surrogate=Surrogate(forward="sigmoid", beta=300.0), tau_ref=0.0, reset_grad=True
    )
    return Network((20, 6, 3), neuron, recurrent=(True,), recurrent_delay=delay)


@pytest.mark.parametrize("delay", [1e-4, pytest.param(3e-4, marks=pytest.mark.slow)])
def test_bptt_matches_finite_differences_on_the_smooth_stand_in(delay):
    with jax.enable_x64(True):
        net = _smooth_net(delay)
        k1, k2, k3 = jax.random.split(jax.random.PRNGKey(5), 3)
        w = tuple(3 * a for a in init_weights(net, k1, jnp.float64))
        x = frozen_poisson(k2, 40, 40.0, 0.06, 1e-4, dtype=jnp.float64).reshape(600, 2, 20)
        y = frozen_poisson(k3, 6, 20.0, 0.06, 1e-4, dtype=jnp.float64).reshape(600, 2, 3)
        g, _ = bptt_grad(net, w, x, y)

        def f(ws):
            return bptt_loss(ws, net, x, y)[0]

        rng = np.random.default_rng(1)
        for l in range(len(w)):
            for _ in range(5 if l == 2 else 3):
                i, j = rng.integers(w[l].shape[0]), rng.integers(w[l].shape[1])
                h = 1e-6
                wp = tuple(a.at[i, j].add(h) if k == l else a for k, a in enumerate(w))
                wm = tuple(a.at[i, j].add(-h) if k == l else a for k, a in enumerate(w))
                fd = float((f(wp) - f(wm)) / (2 * h))
                assert float(g[l][i, j]) == pytest.approx(fd, rel=1e-5, abs=1e-6)
        assert all(float(jnp.abs(gl).max()) > 1e-2 for gl in g)  # the recurrent one too


def _double_exp(x, tau_r, tau_d, dt, r=None, d=None):
    """Numpy unit-integral double exponential along axis 0; returns (y, r, d)."""
    a_r, a_d = decay_factor(tau_r, dt), decay_factor(tau_d, dt)
    r = np.zeros(x.shape[1:]) if r is None else r
    d = np.zeros(x.shape[1:]) if d is None else d
    y = np.empty_like(x)
    for t in range(x.shape[0]):
        r, d = a_r * r + x[t], a_d * d + x[t]
        y[t] = (d - r) / (tau_d - tau_r)
    return y, r, d


def _shift(s, d):
    return np.concatenate([np.zeros((d,) + s.shape[1:]), s[: s.shape[0] - d]]) if d else s


def _replica(net, cfg, w, fb, x, y):
    """SuperSpike per synapse from the whole record, in numpy (float64): the hidden error
    ``e_l = e_{l+1} F^T``, the PSP trace ``z`` of each matrix's delayed presynaptic spikes
    (recurrent: the layer's own, ``d_r`` steps late), ``lambda = alpha * (z_j sigma'(U_i))``,
    ``m = sum_t e_i lambda_ij``; returns ``m`` per weight matrix and step."""
    p = net.neuron
    _, rec = simulate(net, w, x)
    s = [np.asarray(a, np.float64) for a in rec.spikes]
    u = [np.asarray(a, np.float64) for a in rec.u]
    e, _, _ = _double_exp(np.asarray(y, np.float64) - s[-1], cfg.tau_rise, cfg.tau_decay, p.dt)
    errs = [e]
    for l in range(net.n_layers - 1, 0, -1):
        f = np.asarray(w[l] if cfg.feedback == "symmetric" else fb[l - 1], np.float64)
        errs.insert(0, errs[0] @ f.T)
    pre = [np.asarray(x, np.float64)] + s[:-1]
    arriving = [_shift(a, p.delay_steps) for a in pre]
    arriving += [_shift(s[l], net.recurrent_steps) for l in net.recurrent_layers]
    d_h = cfg.delay_steps(p.dt)
    a_m, _, c = p.membrane_coeffs()
    out = []
    for k, l in enumerate(net.post_layers()):
        sig = np.asarray(p.surrogate_grad(jnp.asarray(u[l])), np.float64)
        spk, sig = _shift(arriving[k], d_h), _shift(sig, d_h)
        z = np.zeros_like(spk)
        zs, zm = np.zeros(spk.shape[1]), np.zeros(spk.shape[1])
        for t in range(spk.shape[0]):
            zs = zs + spk[t]
            zm = a_m * zm + c * zs
            z[t] = zm
            zs = zs * p.syn_decay
        lam, _, _ = _double_exp(z[:, :, None] * sig[:, None, :], cfg.tau_rise, cfg.tau_decay, p.dt)
        out.append(lam * errs[l][:, None, :])
    return out


@pytest.mark.parametrize(
    "feedback,hdelay,axonal", [("symmetric", 0.0, 0.0), ("random", 3e-4, 2e-4)]
)
def test_stepwise_superspike_equals_a_replica_over_consecutive_blocks(feedback, hdelay, axonal):
    with jax.enable_x64(True):
        net = Network((12, 5, 2), LIFParams(delay=axonal), recurrent=(True,), recurrent_delay=2e-4)
        w, x, y = _data(net, 2, k=1200, scale=5.0, dtype=jnp.float64)
        cfg = SuperSpikeConfig(method="stepwise", feedback=feedback, hebbian_delay=hdelay)
        fb = init_feedback(jax.random.PRNGKey(3), net, feedback, jnp.float64)
        st = init_rule_state(net, cfg, jnp.float64, fb)
        g1, st, aux = _stepwise(net, cfg, w, x[:600], y[:600], st)
        g2, st, _ = _stepwise(net, cfg, w, x[600:], y[600:], st)
        assert all(float(s.sum()) > 0 for s in aux.record.spikes)
        per_step = _replica(net, cfg, w, fb, x, y)
        for k in range(len(w)):
            for g, sl in ((g1, slice(0, 600)), (g2, slice(600, 1200))):
                want = -per_step[k][sl].sum(0) / 600
                assert float(np.abs(want).max()) > 0
                np.testing.assert_allclose(g[k], want, rtol=1e-9, atol=1e-12 * np.abs(want).max())


def test_alignment_with_bptt():
    """The output layer's update is BPTT's gradient (cosine 1); the hidden and recurrent ones
    are positively aligned with it (the numbers: scripts/recurrent_alignment.py)."""
    net = _net(delay=1e-4, sizes=(30, 8, 2))
    w, x, y = _data(net, 4, k=3000, scale=4.0)
    kw = {"cfg_kwargs": {"method": "stepwise"}, "key": jax.random.PRNGKey(0)}
    ss = rule_grads("superspike:symmetric", net, w, x, y, **kw)
    bp = rule_grads("bptt", net, w, x, y, **kw)
    al = alignment(ss, bp)
    assert float(al.cosine[1]) > 0.9999
    assert float(al.cosine[0]) > 0 and float(al.cosine[2]) > 0


@pytest.mark.parametrize("method", ["dense", "event"])
def test_fast_routes_refuse_recurrence(method):
    net = _net()
    cfg = SuperSpikeConfig(method=method)
    with pytest.raises(TypeError, match=rf"'{method}' route does not support recurrent"):
        superspike(net, cfg)


def test_config_keys(tmp_path):
    path = tmp_path / "rec.yaml"
    path.write_text(
        "network: {sizes: [100, 4, 1], recurrent: [true], recurrent_delay: 3.0e-4}\n"
        "rule: {method: stepwise}\n"
    )
    net = build_trainer(load_config(path)).net
    assert net.recurrent == (True,) and net.recurrent_steps == 3
    bad = [
        (["network.recurrent=[true, false]"], "network.recurrent: must be \\[\\] or one flag"),
        (["network.recurrent=[1]"], "network.recurrent: expected a list of"),
        (["network.recurrent_delay=0.0"], "network.recurrent_delay: must be > 0 s"),
        (["network.recurrent_delay=2.5e-4"], "network.recurrent_delay: must be > 0 s and a"),
        (["rule.method=event"], "rule.method: must be 'stepwise' with network.recurrent"),
    ]
    for overrides, msg in bad:
        with pytest.raises(ConfigError, match=msg):
            load_config(path, overrides)
    load_config(path, ["network.recurrent=[false]", "rule.method=dense"])
