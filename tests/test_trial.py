"""Trial training (ssjax.trial): each route against an independent one, trial by trial."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ssjax.classification import ClassifierLoss
from ssjax.data import (
    TrialSet,
    dense_batch,
    epoch_indices,
    epoch_key,
    randman_heldout_trials,
    randman_trials,
)
from ssjax.network import Network, simulate
from ssjax.neuron import LIFParams
from ssjax.readout import li_readout
from ssjax.rules.base import Block
from ssjax.rules.superspike import SuperSpikeConfig, superspike
from ssjax.trial import (
    TrialSpec,
    evaluate_trials,
    init_trial_state,
    train_epoch,
    train_step,
)

# one compilation per route: the trainer's steps and the independent per-trial routes are jitted
step = jax.jit(train_step, static_argnums=(0, 1))

# the trainer's step and the independent per-trial routes are jitted: one compilation each
step = jax.jit(train_step, static_argnums=(0, 1))

DT = 1e-3
NEURON = LIFParams(dt=DT, tau_mem=20e-3, tau_syn=5e-3)
N_IN, T, C = 12, 40, 3


def _trials(n=7, seed=0, rate=0.15):
    rng = np.random.default_rng(seed)
    steps, units, off, labels = [], [], [0], []
    for i in range(n):
        raster = rng.random((T, N_IN)) < rate
        t, u = np.nonzero(raster)
        steps.append(t)
        units.append(u)
        off.append(off[-1] + len(t))
        labels.append(i % C)
    return TrialSet(
        np.concatenate(steps), np.concatenate(units), off, labels,
        n_units=N_IN, n_steps=T, dt=DT, n_classes=C,
    )  # fmt: skip


def _spec(readout="max", rule="bptt", **kw):
    net = Network((N_IN, 6, C), NEURON, w0=2.0)
    return TrialSpec(net, rule=rule, readout=ClassifierLoss(readout), **kw)


def _per_trial_loss(spec, weights, trials, i):
    """One trial simulated alone ([T, 1, N]) and scored: an independent route."""
    x = jnp.asarray(trials.trial_raster(i))[:, None]
    y = jnp.asarray([int(trials.labels[i])])
    return _scored(spec, weights, x, y)


@functools.partial(jax.jit, static_argnums=0)
def _scored(spec, weights, x, y):
    _, rec = simulate(spec.net, weights, x)
    if spec.readout.outputs == "membrane":
        _, out = li_readout(spec.net.neuron, rec.spikes[-2], weights[1])
    else:
        out = rec.spikes[-1]
    return spec.readout.losses(out, y, DT)[0]


@pytest.mark.parametrize("readout", ["max", "count_ce"])
def test_bptt_step_equals_the_mean_gradient_of_trials_run_alone(readout):
    spec = _spec(readout)
    trials = _trials().with_batch(4)
    lr = 1e-3
    tx = optax.sgd(lr)
    state = init_trial_state(spec, tx, jax.random.PRNGKey(1))
    idx, mask = jnp.asarray([0, 3, 5, 0]), jnp.asarray([True, True, True, False])
    x, labels = dense_batch(trials, idx, mask)
    new, m = step(spec, tx, state, x, labels, mask)

    def mean_loss(w):
        return sum(_per_trial_loss(spec, w, trials, i) for i in (0, 3, 5)) / 3

    loss, g = jax.jit(jax.value_and_grad(mean_loss))(state.weights)
    assert float(m.loss) == pytest.approx(float(loss), rel=1e-5)
    assert int(m.n) == 3
    assert any(float(jnp.abs(gi).max()) > 0 for gi in g)  # the check is not vacuous
    for w_new, w, gi in zip(new.weights, state.weights, g, strict=True):
        np.testing.assert_allclose(w_new, np.clip(w - lr * gi, -0.1, 0.1), rtol=1e-5, atol=1e-9)
    # negative control: the padded slot (trial 0 again) would change the mean
    _, m_all = step(spec, tx, state, x, labels, jnp.ones(4, bool))
    assert float(m_all.loss) != pytest.approx(float(m.loss), rel=1e-6)


@pytest.mark.parametrize("error", ["window", "van_rossum"])
def test_superspike_step_equals_the_rule_on_each_trial_alone(error):
    cfg = SuperSpikeConfig(error=error, feedback="random")
    spec = _spec("count_ce", "superspike", superspike=cfg, window_start=0.01,
                 target_times=(0.02, 0.03))  # fmt: skip
    trials = _trials().with_batch(3)
    tx = optax.sgd(1.0)
    state = init_trial_state(spec, tx, jax.random.PRNGKey(2))
    idx = jnp.asarray([1, 2, 6])
    x, labels = dense_batch(trials, idx)
    new, _ = step(spec, tx, state, x, labels)
    update = jax.jit(superspike(spec.net, cfg).update)
    total = None
    for b, i in enumerate([1, 2, 6]):
        y = int(trials.labels[i])
        tgt = np.zeros((T, C), np.float32)
        if error == "window":  # the correct output must fire in [10, 40) steps, the others not
            tgt[10:, :] = -1
            tgt[10:, y] = 1
            tgt[-1] *= 2
        else:
            tgt[[20, 30], y] = 1
        tail = np.zeros((50, N_IN), np.float32)  # error_tail: 50 ms of silence
        xb = jnp.concatenate([x[:, b], tail])
        tb = jnp.concatenate([jnp.asarray(tgt), jnp.zeros((50, C))])
        out = update(state.weights, state.rule, Block(xb, tb))
        total = out.updates if total is None else jax.tree.map(jnp.add, total, out.updates)
    assert any(float(jnp.abs(u).max()) > 0 for u in total)
    for w_new, w, u in zip(new.weights, state.weights, total, strict=True):
        np.testing.assert_allclose(w_new, np.clip(w - u / 3, -0.1, 0.1), rtol=1e-5, atol=1e-9)


def test_superspike_needs_a_spike_readout():
    with pytest.raises(ValueError, match="count_ce"):
        _spec("max", "superspike")


def test_an_epoch_equals_its_batches_one_by_one_and_sees_every_trial_once():
    spec = _spec("last")
    trials = _trials(n=7).with_batch(3)
    tx = optax.sgd(0.05)  # adam would turn rounding-level gradients into lr-sized steps
    state = init_trial_state(spec, tx, jax.random.PRNGKey(3))
    key = epoch_key(jax.random.PRNGKey(4), 0)
    new, metrics = train_epoch(spec, tx, state, trials, key)
    idx, mask = epoch_indices(key, 7, 3)
    assert sorted(np.asarray(idx)[np.asarray(mask)].tolist()) == list(range(7))
    st = state
    for b in range(idx.shape[0]):
        x, labels = dense_batch(trials, idx[b], mask[b])
        st, m = step(spec, tx, st, x, labels, mask[b])
        assert float(m.loss) == pytest.approx(float(metrics.loss[b]), rel=1e-5)
    for a, b in zip(new.weights, st.weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-9)
    assert int(new.step) == 3 and metrics.n.tolist() == [3, 3, 1]
    # another epoch key, another order (negative control for the shuffle)
    other, _ = epoch_indices(epoch_key(jax.random.PRNGKey(4), 1), 7, 3)
    assert not np.array_equal(np.asarray(idx), np.asarray(other))


def test_evaluation_equals_scoring_each_trial_alone():
    spec = _spec("mean")
    trials = _trials(n=5).with_batch(2)
    weights = init_trial_state(spec, optax.sgd(0.1), jax.random.PRNGKey(5)).weights
    ev = evaluate_trials(spec, weights, trials)
    losses = [float(_per_trial_loss(spec, weights, trials, i)) for i in range(5)]
    assert float(ev["loss"]) == pytest.approx(np.mean(losses), rel=1e-5)

    @jax.jit
    def mean_potential(x):
        _, rec = simulate(spec.net, weights, x)
        return jnp.mean(li_readout(NEURON, rec.spikes[-2], weights[1])[1], 0)[0]

    preds = [
        int(jnp.argmax(mean_potential(jnp.asarray(trials.trial_raster(i))[:, None])))
        for i in range(5)
    ]
    assert np.asarray(ev["predictions"]).tolist() == preds
    assert float(ev["accuracy"]) == pytest.approx(np.mean(np.asarray(preds) == trials.labels))


def test_carried_state_continues_each_slot_across_batches():
    spec = _spec("last", carry_state=True)
    trials = _trials(n=4).with_batch(2)
    tx = optax.sgd(0.0)  # weights fixed: the outputs are the simulation's alone
    state = init_trial_state(spec, tx, jax.random.PRNGKey(6), batch_size=2)
    x1, y1 = dense_batch(trials, jnp.asarray([0, 1]))
    x2, y2 = dense_batch(trials, jnp.asarray([2, 3]))
    st, _ = step(spec, tx, state, x1, y1)
    _, m2 = step(spec, tx, st, x2, y2)
    # one simulation of both batches back to back, scored on the second half
    w = state.weights
    _, rec = simulate(spec.net, w, jnp.concatenate([x1, x2]))
    _, u = li_readout(NEURON, rec.spikes[-2], w[1])
    want = spec.readout.loss(u[T:], y2, DT)
    assert float(m2.loss) == pytest.approx(float(want), rel=1e-5)
    # negative control: from rest, the second batch scores differently
    _, m_rest = step(_spec("last"), tx, init_trial_state(_spec("last"), tx,
                           jax.random.PRNGKey(6)), x2, y2)  # fmt: skip
    assert float(m_rest.loss) != pytest.approx(float(m2.loss), rel=1e-6)


def test_bad_trials_are_clear_errors():
    spec = _spec()
    tx = optax.sgd(0.1)
    state = init_trial_state(spec, tx, jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="with_batch"):
        train_epoch(spec, tx, state, _trials(), jax.random.PRNGKey(0))
    wide = TrialSet([0], [0], [0, 1], [0], n_units=N_IN + 1, n_steps=T, dt=DT)
    with pytest.raises(ValueError, match="input units"):
        evaluate_trials(spec, state.weights, wide.with_batch(1))
    slow = TrialSet([0], [0], [0, 1], [0], n_units=N_IN, n_steps=T, dt=2 * DT)
    with pytest.raises(ValueError, match="dt"):
        evaluate_trials(spec, state.weights, slow.with_batch(1))


@pytest.mark.slow  # ~30 s: a few epochs of randman
@pytest.mark.parametrize("rule", ["bptt", "superspike"])
def test_randman_trials_are_learnt_above_chance(rule):
    kw = dict(n_classes=3, n_samples=80, n_units=20, dt=DT)
    key = jax.random.PRNGKey(0)
    train = randman_trials(key, **kw).with_batch(16)
    test = randman_heldout_trials(key, 40, **kw).with_batch(16)
    net = Network((20, 32, 3), NEURON, w0=2.0)
    if rule == "bptt":
        spec = TrialSpec(net, readout=ClassifierLoss("max"))
        tx = optax.adam(2e-3)
    else:
        cfg = SuperSpikeConfig(error="window", feedback="symmetric")
        spec = TrialSpec(net, "superspike", ClassifierLoss("count_ce"), cfg, window_start=0.005)
        tx = optax.adam(2e-3)
    state = init_trial_state(spec, tx, jax.random.PRNGKey(1))
    before = float(evaluate_trials(spec, state.weights, test)["accuracy"])
    for epoch in range(EPOCHS):
        state, _ = train_epoch(spec, tx, state, train, epoch_key(jax.random.PRNGKey(2), epoch))
    after = float(evaluate_trials(spec, state.weights, test)["accuracy"])
    print(rule, before, after)
    assert after > max(before, 1 / 3) + 0.2


EPOCHS = 15
