"""Tests for ssjax.classification: each readout's loss against a NumPy replica, its gradient
against finite differences (float64), first spike times and their surrogate gradient in closed
form, predictions, accuracy and the registry's errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ssjax.classification import (
    READOUTS,
    ClassifierLoss,
    accuracy,
    cross_entropy,
    first_spike_times,
    get_readout,
    predict,
)
from ssjax.params import ParamError

T, B, C, DT = 12, 5, 4, 1e-3


def _np_ce(z, y):
    z = z - z.max(axis=1, keepdims=True)
    return np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]


def _np_first(s, dt):
    """First spike time by search: the first step with s > 0, else T."""
    out = np.full(s.shape[1:], s.shape[0] * dt)
    for b, c in np.ndindex(*s.shape[1:]):
        hit = np.flatnonzero(s[:, b, c] > 0)
        if hit.size:
            out[b, c] = hit[0] * dt
    return out


def _np_loss(name, out, y, p: ClassifierLoss):
    """NumPy replica of every entry of READOUTS (per example)."""
    if name in ("max", "last", "mean"):
        red = {"max": out.max(0), "last": out[-1], "mean": out.mean(0)}[name]
        return _np_ce(p.scale * red, y)
    n = out.sum(0)
    if name == "count_ce":
        return _np_ce(n, y)
    if name == "count_mse":
        tgt = np.full(n.shape, p.count_false)
        tgt[np.arange(len(y)), y] = p.count_true
        return ((n - tgt) ** 2).mean(1)
    assert name == "first_spike"
    return _np_ce(-_np_first(out, DT) / p.tau, y)


def _outputs(name, rng):
    if READOUTS[name].outputs == "membrane":
        return -0.06 + 0.01 * rng.standard_normal((T, B, C))
    s = (rng.random((T, B, C)) < 0.2).astype(np.float64)
    s[:, 0, 1] = 0.0  # a silent output
    return s


def test_cross_entropy_is_optax_and_the_numpy_replica():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((7, 5)) * 10
    y = rng.integers(0, 5, 7)
    np.testing.assert_allclose(cross_entropy(z, y), _np_ce(z, y), rtol=1e-5)
    np.testing.assert_array_equal(
        cross_entropy(z, y), optax.softmax_cross_entropy_with_integer_labels(z, y)
    )


@pytest.mark.parametrize("name", list(READOUTS))
def test_loss_matches_numpy_and_prediction_is_argmax(name):
    with jax.enable_x64(True):
        rng = np.random.default_rng(1)
        out, y = _outputs(name, rng), rng.integers(0, C, B)
        p = ClassifierLoss(name, scale=300.0, count_true=3.0, count_false=0.5, tau=4e-3)
        assert p.outputs == READOUTS[name].outputs
        losses = np.asarray(p.losses(jnp.asarray(out), y, DT))
        assert losses.shape == (B,)
        np.testing.assert_allclose(losses, _np_loss(name, out, y, p), rtol=1e-12)
        assert float(p.loss(jnp.asarray(out), y, DT)) == pytest.approx(losses.mean(), rel=1e-12)
        scores = np.asarray(p.scores(jnp.asarray(out), DT))
        np.testing.assert_array_equal(p.predict(jnp.asarray(out), DT), scores.argmax(1))
        acc = float(p.accuracy(jnp.asarray(out), y, DT))
        assert acc == pytest.approx(np.mean(scores.argmax(1) == y))


@pytest.mark.parametrize("name", list(READOUTS))
def test_gradient_matches_finite_differences(name):
    # the losses as functions of continuous outputs (spikes in (0, 1) for the spike readouts)
    with jax.enable_x64(True):
        rng = np.random.default_rng(2)
        if READOUTS[name].outputs == "membrane":
            out = -0.06 + 0.01 * rng.standard_normal((T, B, C))
        else:
            out = rng.uniform(0.05, 0.6, (T, B, C))
        y = rng.integers(0, C, B)
        p = ClassifierLoss(name, scale=300.0, count_true=3.0, count_false=0.5, tau=4e-3)

        def f(o):
            return p.loss(o, y, DT)

        f = jax.jit(f)
        g = np.asarray(jax.jit(jax.grad(f))(jnp.asarray(out)))
        assert np.abs(g).max() > 0
        h = 1e-6 * (1e-2 if READOUTS[name].outputs == "membrane" else 1.0)
        idx = [tuple(rng.integers(0, n) for n in out.shape) for _ in range(12)]
        if name == "max":  # the argmax steps carry the gradient: test them too
            idx += [(int(out[:, b, c].argmax()), b, c) for b, c in [(0, 0), (1, 2), (3, 3)]]
        for i in idx:
            e = np.zeros_like(out)
            e[i] = h
            fd = (float(f(jnp.asarray(out + e))) - float(f(jnp.asarray(out - e)))) / (2 * h)
            assert g[i] == pytest.approx(fd, rel=1e-5, abs=1e-9 * max(1.0, np.abs(g).max()))


def test_first_spike_times_and_their_surrogate_gradient_in_closed_form():
    with jax.enable_x64(True):
        s = np.zeros((10, 1, 3))
        s[[4, 7], 0, 0] = 1.0  # first spike at step 4
        s[0, 0, 1] = 1.0  # at step 0
        # output 2 silent
        t = np.asarray(jax.jit(first_spike_times, static_argnums=1)(jnp.asarray(s), DT))
        np.testing.assert_allclose(t, [[4 * DT, 0.0, 10 * DT]], rtol=0, atol=1e-15)
        np.testing.assert_allclose(t, _np_first(s, DT))
        jac = np.asarray(jax.jit(jax.jacobian(lambda x: first_spike_times(x, DT)))(jnp.asarray(s)))
        # d t_c / d s[k, c]: (k - t*) dt before the first spike t*, (t* - t2) dt at it (t2: the
        # next spike, or T), 0 after; (k - T) dt if silent
        k = np.arange(10)
        want = np.where(k < 4, (k - 4) * DT, 0.0)
        want[4] = (4 - 7) * DT
        np.testing.assert_allclose(jac[0, 0, :, 0, 0], want, rtol=1e-12, atol=1e-18)
        np.testing.assert_allclose(jac[0, 1, :, 0, 1], np.where(k == 0, -10 * DT, 0.0))
        np.testing.assert_allclose(jac[0, 2, :, 0, 2], (k - 10) * DT, rtol=1e-12)
        # no cross-talk between outputs
        assert np.abs(jac[0, 0, :, 0, 1:]).max() == 0


def test_predict_accuracy_and_ties():
    z = jnp.asarray([[1.0, 3.0, 3.0], [2.0, 0.0, -1.0]])
    np.testing.assert_array_equal(predict(z), [1, 0])  # the first maximum on ties
    assert predict(z).dtype == jnp.int32
    assert float(accuracy(z, jnp.asarray([1, 2]))) == 0.5
    assert float(accuracy(z, jnp.asarray([2, 1]))) == 0.0  # negative control


def test_unknown_readout_and_bad_parameters_are_named():
    with pytest.raises(ValueError, match=r"unknown readout 'softmax'; choose one of 'max'"):
        get_readout("softmax")
    assert get_readout("last") is READOUTS["last"]
    with pytest.raises(ParamError, match=r"readout\.name") as exc:
        ClassifierLoss("softmax")
    assert "count_mse" in str(exc.value)
    with pytest.raises(ParamError, match=r"readout\.tau"):
        ClassifierLoss("first_spike", tau=0.0)
    with pytest.raises(ParamError, match=r"readout\.scale"):
        ClassifierLoss(scale=-1.0)


def test_first_spike_readout_learns_through_the_spike_surrogate():
    # output spikes of a LIF layer: the gradient reaches the weights through sigma', also for
    # outputs that never fire (where the first spike time alone would have no slope)
    from ssjax.network import Network, init_weights, simulate

    net = Network((20, 3))
    w = (0.02 * init_weights(net, jax.random.PRNGKey(0))[0],)
    rng = np.random.default_rng(3)
    x = jnp.asarray((rng.random((200, 4, 20)) < 0.05).astype(np.float32))
    labels = jnp.asarray([0, 1, 2, 0])
    p = ClassifierLoss("first_spike")

    @jax.jit
    def loss(w):
        _, rec = simulate(net, w, x)
        return p.loss(rec.spikes[-1], labels, net.neuron.dt), rec.spikes[-1]

    g, out = jax.grad(loss, has_aux=True)(w)
    assert float(out.sum()) == 0  # silent outputs, yet a gradient
    assert bool(jnp.all(jnp.isfinite(g[0]))) and float(jnp.abs(g[0]).min(axis=0).max()) > 0
