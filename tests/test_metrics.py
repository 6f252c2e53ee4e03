"""Metrics (``ssjax.metrics``): every route to a number gives the same bits.

Per period: the accumulator fed block by block, in uneven chunks, or resumed from its JSON state
equals :func:`per_period` on the whole run, which equals a vectorised ``np.add.at`` reference;
the runner's seed-stacked route equals one accumulator per seed. Window accuracy: the XOR
breakdown, the held-out networks and an independent numpy count agree window by window.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssjax.losses import window_outcome
from ssjax.metrics import (
    PeriodAccumulator,
    add_seed_blocks,
    heldout_accuracy,
    per_period,
    period_record,
    rate_hz,
    window_accuracy,
    window_correct,
)
from ssjax.network import Network, simulate
from ssjax.optim import Optimizer
from ssjax.rules.superspike import SuperSpikeConfig
from ssjax.tasks.timing import timing_task
from ssjax.tasks.xor import XORSpec, xor_stream
from ssjax.tasks.xor import window_accuracy as xor_window_accuracy
from ssjax.train import TrainSpec, init_train_state, run_blocks, run_blocks_jit

DT = 1e-4
PERIOD = 3000  # 0.3 s pattern, 0.2 s blocks: blocks straddle periods


def _take(m, sl):
    return jax.tree.map(lambda a: a[sl], m)


@pytest.fixture(scope="module")
def run():
    """11 blocks (22000 steps: 7 full periods and a partial one) of a learning 30-3-2 network
    on a 2-output timing task; weights boosted so every layer spikes."""
    net = Network((30, 3, 2))
    task = timing_task(jax.random.PRNGKey(0), n_in=30, n_out=2, dt=DT)
    x, y = task.inputs[:PERIOD], task.targets[:PERIOD]
    tr = TrainSpec(
        net,
        rule=SuperSpikeConfig(feedback="random"),
        block=0.2,
        optimizer=Optimizer(burn_in=0.4, drops=()),
    )
    st = init_train_state(tr, jax.random.PRNGKey(3))
    st = st._replace(weights=tuple(jnp.clip(4 * w, -0.1, 0.1) for w in st.weights))
    _, m = run_blocks_jit(tr, x, y, st, 11)
    return net, jax.device_get(m)


def _reference_per_period(m, sizes):
    """The vectorised sums (np.add.at over all segments) per_period was written as before."""
    p0 = np.asarray(m.period0)
    n_blocks, n_seg = np.asarray(m.steps_seg).shape
    pid = (p0[:, None] + np.arange(n_seg)[None, :]).ravel()
    n = int(pid.max()) + 1
    steps = np.zeros(n, np.int64)
    np.add.at(steps, pid, np.asarray(m.steps_seg).ravel())
    sq = np.asarray(m.sq_err_seg, np.float64)
    vr = np.zeros((n, sq.shape[-1]))
    np.add.at(vr, pid, sq.reshape(-1, sq.shape[-1]))
    rates = []
    for sp, size in zip(m.spikes_seg, sizes[1:], strict=True):
        acc = np.zeros(n)
        np.add.at(acc, pid, np.asarray(sp, np.float64).ravel())
        rates.append(acc / (size * PERIOD * DT))
    full = np.nonzero(steps == PERIOD)[0]
    return full, vr[full], [r[full] for r in rates]


def test_per_period_equals_the_vectorised_sums(run):
    net, m = run
    pm = per_period(m, net.sizes, PERIOD, DT)
    full, vr, rates = _reference_per_period(m, net.sizes)
    np.testing.assert_array_equal(pm.period, np.arange(7))
    np.testing.assert_array_equal(pm.period, full)
    np.testing.assert_array_equal(pm.van_rossum, vr)
    for got, want in zip(pm.rate_hz, rates, strict=True):
        np.testing.assert_array_equal(got, want)
    assert pm.van_rossum.shape == (7, 2) and np.all(pm.van_rossum > 0)
    assert all(np.all(r > 0) for r in pm.rate_hz)
    np.testing.assert_array_equal(pm.accuracy, np.zeros(7))  # a timing task has no windows


def _values(m):
    return {
        "van_rossum": m.sq_err_seg,
        "spikes": tuple(m.spikes_seg),
        "ended": m.ended_seg,
        "correct": m.correct_seg,
    }


def _feed(acc, m, cuts):
    out = []
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        part = _take(m, slice(a, b))
        out += acc.add(part.period0, part.steps_seg, _values(part))
    return out


def _assert_same_totals(a, b):
    assert [p for p, _ in a] == [p for p, _ in b]
    for (_, ta), (_, tb) in zip(a, b, strict=True):
        assert ta.keys() == tb.keys() and ta["steps"] == tb["steps"] == PERIOD
        for k in ta.keys() - {"steps"}:
            np.testing.assert_array_equal(np.asarray(ta[k]), np.asarray(tb[k]), err_msg=k)


@pytest.mark.parametrize("cuts", [[0, 11], list(range(12)), [0, 3, 4, 9, 11]])
def test_accumulator_fed_in_pieces_equals_per_period(run, cuts):
    net, m = run
    got = _feed(PeriodAccumulator(PERIOD), m, cuts)
    pm = per_period(m, net.sizes, PERIOD, DT)
    assert [p for p, _ in got] == pm.period.tolist()
    np.testing.assert_array_equal(np.stack([t["van_rossum"] for _, t in got]), pm.van_rossum)
    for l, n in enumerate(net.sizes[1:]):
        rates = np.stack([rate_hz(t["spikes"][l], n, PERIOD, DT) for _, t in got])
        np.testing.assert_array_equal(rates, pm.rate_hz[l])
    _assert_same_totals(got, _feed(PeriodAccumulator(PERIOD), m, [0, 11]))


def test_resumed_accumulator_equals_an_uninterrupted_one(run):
    _, m = run
    whole = _feed(PeriodAccumulator(PERIOD), m, [0, 11])
    first = PeriodAccumulator(PERIOD)
    before = _feed(first, m, [0, 4])  # block 4 ends mid-period 2
    saved = json.loads(json.dumps(first.state()))  # as a checkpoint stores it
    assert list(saved) == ["2"] and 0 < saved["2"]["steps"] < PERIOD
    after = _feed(PeriodAccumulator(PERIOD, partial=saved), m, [4, 6, 11])
    _assert_same_totals(before + after, whole)


def test_seed_stacked_route_equals_one_accumulator_per_seed():
    net = Network((30, 3, 2))
    task = timing_task(jax.random.PRNGKey(0), n_in=30, n_out=2, dt=DT)
    x, y = task.inputs[:PERIOD], task.targets[:PERIOD]
    tr = TrainSpec(net, block=0.2, optimizer=Optimizer(burn_in=0.4, drops=()))
    keys = jax.random.split(jax.random.PRNGKey(5), 3)
    st = jax.vmap(lambda k: init_train_state(tr, k))(keys)
    st = st._replace(weights=tuple(jnp.clip(4 * w, -0.1, 0.1) for w in st.weights))
    _, m = jax.jit(jax.vmap(lambda s: run_blocks(tr, x, y, s, 5)))(st)
    m = jax.device_get(m)
    stacked = add_seed_blocks(PeriodAccumulator(PERIOD), m)
    assert [p for p, _ in stacked] == [0, 1, 2]
    for s in range(3):
        ms = _take(m, s)
        one = PeriodAccumulator(PERIOD).add(
            ms.period0,
            ms.steps_seg,
            {
                "vr": np.asarray(ms.sq_err_seg, np.float64).mean(-1),
                "spikes": tuple(ms.spikes_seg),
                "ended": ms.ended_seg,
                "correct": ms.correct_seg,
            },
        )
        pm = per_period(ms, net.sizes, PERIOD, DT)
        for (p, ts), (q, to), k in zip(stacked, one, range(3), strict=True):
            assert p == q == k
            assert ts["vr"][s] == to["vr"]  # the same float64 sums, bit for bit
            rec = period_record(ts, net.sizes, PERIOD, DT, classify=True)
            assert rec["rate_hz"][0][s] == pm.rate_hz[0][k]
            assert rec["accuracy"][s] == 0.0
            # the history's distance is per_period's averaged over outputs, to float rounding
            assert rec["van_rossum"][s] == pytest.approx(pm.van_rossum[k].mean(), rel=1e-12)


# ----------------------------------------------------------------------- window accuracy


def _numpy_window_ok(spikes, code):
    """Independent count: spiking steps of each output inside each window (from its code)."""
    active = np.any(code != 0, axis=1)
    starts = np.flatnonzero(active & ~np.concatenate([[False], active[:-1]]))
    ends = np.flatnonzero(np.any(np.abs(code) == 2, axis=1))
    cs = np.concatenate([np.zeros((1, code.shape[1]), np.int64), np.cumsum(spikes > 0, axis=0)])
    counts = cs[ends + 1] - cs[starts]
    want, avoid = code[ends] > 0, code[ends] < 0
    return np.all(np.where(want, counts > 0, True) & np.where(avoid, counts == 0, True), axis=1)


@pytest.fixture(scope="module")
def stream():
    return xor_stream(jax.random.PRNGKey(7), XORSpec(n_ref=4, n_a=3, n_b=3), 24)


def test_window_routes_agree_window_by_window(stream):
    T = stream.code.shape[0]
    rng = np.random.default_rng(0)
    answers = np.zeros((T, 2), np.float32)
    answers[stream.onsets + 100, stream.labels] = 1.0  # every pattern right ...
    answers[rng.random(T) < 5e-4] = 1.0  # ... then noise spoils some
    ok = _numpy_window_ok(answers, stream.code)
    assert 0 < ok.sum() < len(ok) == 24
    np.testing.assert_array_equal(np.asarray(window_correct(answers, stream.code)) > 0, ok)
    assert window_accuracy(answers, stream.code) == ok.mean()
    acc, per_kind = xor_window_accuracy(answers, stream)
    assert acc == ok.mean()
    np.testing.assert_array_equal(per_kind, [ok[stream.kinds == k].mean() for k in range(4)])
    # the trainer's per-step outcome counts the same windows
    ended, correct, _ = window_outcome(answers, stream.code)
    assert float(jnp.sum(ended)) == 24 and float(jnp.sum(correct)) == ok.sum()
    assert np.isnan(window_accuracy(answers, np.zeros_like(stream.code)))


def test_heldout_accuracy_hand_checkable():
    # 1 input -> 2 outputs; a weight of 0.1 V (PSP peak 25 mV > the 10 mV to threshold) makes its
    # output fire a few ms after the input spike. Five 20 ms windows, 30 ms apart; the input
    # fires at the start of windows 0-2 only; labels 0, 0, 1, 0, 1.
    net = Network((1, 2))
    W, gap, labels, fired = 200, 300, [0, 0, 1, 0, 1], [1, 1, 1, 0, 0]
    T = 5 * (W + gap)
    x, code = np.zeros((T, 1), np.float32), np.zeros((T, 2), np.int8)
    for k, (y, f) in enumerate(zip(labels, fired, strict=True)):
        on = k * (W + gap) + gap
        x[on, 0] = f
        code[on : on + W], code[on : on + W, y] = -1, 1
        code[on + W - 1] *= 2
    # seed 0 answers "class 0" to every input: right in windows 0, 1; seed 1 "class 1": window 2
    # (windows 3, 4 get no spike, so no answer); seed 2 is silent: nothing is right
    weights = (jnp.asarray([[[0.1, 0.0]], [[0.0, 0.1]], [[0.0, 0.0]]]),)
    acc = heldout_accuracy(net, weights, x, code)
    assert acc.dtype == np.float64
    np.testing.assert_array_equal(acc, [0.4, 0.2, 0.0])
    for s in range(3):  # = window_accuracy of each network's own simulated output
        out = simulate(net, (weights[0][s],), jnp.asarray(x))[1].spikes[-1]
        assert window_accuracy(out, code) == acc[s]
