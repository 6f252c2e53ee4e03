"""Online training: segment invariance, seeds vmapped = loop, per-period metrics, learning."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssjax.losses import error_distance, filtered_error, van_rossum_distance
from ssjax.network import Network, simulate
from ssjax.neuron import LIFParams
from ssjax.optim import Optimizer
from ssjax.rules.bptt import BPTTConfig
from ssjax.rules.regulariser import Regularizer
from ssjax.rules.superspike import SuperSpikeConfig
from ssjax.spike import Surrogate
from ssjax.tasks.timing import timing_task
from ssjax.train import (
    TrainSpec,
    _window,
    block_step,
    init_train_state,
    per_period,
    run_blocks,
    run_blocks_jit,
    unpack_output,
)

TASK = timing_task(jax.random.PRNGKey(0))


_OPT_KEYS = ("r0", "tau_rms", "eps", "burn_in", "drops")


def _trainer(**kw):
    """A TrainSpec; the optimiser's fields may be given flat (no burn-in or drops by default)."""
    kw.setdefault("net", Network((100, 4, 1)))
    kw.setdefault("block", 0.2)
    opt = {"burn_in": 0.0, "drops": ()} | {k: kw.pop(k) for k in _OPT_KEYS if k in kw}
    return TrainSpec(**kw, optimizer=Optimizer(**opt))


def _with_r0(spec, r0):
    return dataclasses.replace(spec, optimizer=dataclasses.replace(spec.optimizer, r0=r0))


def _rule(name, **kw):
    return BPTTConfig() if name == "bptt" else SuperSpikeConfig(**kw)


def test_segments_give_bit_identical_run():
    tr = _trainer(rule=SuperSpikeConfig(feedback="random", hebbian_delay=8e-4))
    st0 = init_train_state(tr, jax.random.PRNGKey(1))
    a, ma = run_blocks_jit(tr, TASK.inputs, TASK.targets, st0, 6)
    b, _ = run_blocks_jit(tr, TASK.inputs, TASK.targets, st0, 2)
    b, mb = run_blocks_jit(tr, TASK.inputs, TASK.targets, b, 4)
    jax.tree.map(np.testing.assert_array_equal, a, b)
    np.testing.assert_array_equal(ma.sq_err_seg[2:], mb.sq_err_seg)
    assert int(a.pos) == 12000


@pytest.mark.parametrize("rule", ["superspike", "bptt"])
def test_vmapped_seeds_equal_loop_over_seeds(rule):
    """Equal to float rounding: XLA's CPU dot may sum in another order when batched."""
    tr = _trainer(rule=_rule(rule, feedback="random"))
    keys = jax.random.split(jax.random.PRNGKey(2), 3)
    st = jax.vmap(lambda k: init_train_state(tr, k))(keys)
    f = jax.jit(jax.vmap(lambda s: run_blocks(tr, TASK.inputs, TASK.targets, s, 3)))
    sv, mv = f(st)
    for i, k in enumerate(keys):
        si, mi = run_blocks_jit(tr, TASK.inputs, TASK.targets, init_train_state(tr, k), 3)
        jax.tree.map(
            lambda v, s, i=i: np.testing.assert_allclose(v[i], s, rtol=1e-4, atol=1e-7), sv, si
        )
        np.testing.assert_allclose(mv.sq_err_seg[i], mi.sq_err_seg, rtol=1e-4, atol=1e-7)
    # seeds really differ (weights and feedback from their keys)
    assert not np.array_equal(sv.weights[0][0], sv.weights[0][1])
    if rule == "superspike":
        assert not np.array_equal(sv.rule.feedback[0][0], sv.rule.feedback[0][1])


def test_per_period_metrics_match_direct_simulation():
    """Blocks of 0.2 s over a 0.3 s pattern; weights frozen (burn-in) so the run is a plain
    simulation of the looped pattern, which is then cut into periods independently."""
    net = Network((100, 4, 1))
    tr = TrainSpec(net, optimizer=Optimizer(burn_in=100.0, drops=()), block=0.2, record_output=True)
    x, y = TASK.inputs[:3000], TASK.targets[:3000]
    st = init_train_state(tr, jax.random.PRNGKey(3))
    st = st._replace(weights=tuple(jnp.clip(4 * w, -0.1, 0.1) for w in st.weights))
    w = st.weights
    end, m = run_blocks_jit(tr, x, y, st, 9)  # 18000 steps = 6 periods
    jax.tree.map(np.testing.assert_array_equal, w, end.weights)  # burn-in: weights frozen
    pm = per_period(m, net.sizes, 3000, 1e-4)
    np.testing.assert_array_equal(pm.period, np.arange(6))
    xs, ys = jnp.tile(x, (6, 1)), jnp.tile(y, (6, 1))
    _, rec = simulate(net, w, xs)
    np.testing.assert_array_equal(
        unpack_output(m.out_bits, 2000).reshape(-1, 1), np.asarray(rec.spikes[-1], np.uint8)
    )
    e, _ = filtered_error(ys, rec.spikes[-1], 1e-4)
    direct = np.stack(
        [np.asarray(error_distance(e[p * 3000 : (p + 1) * 3000], 1e-4)) for p in range(6)]
    )
    np.testing.assert_allclose(pm.van_rossum, direct, rtol=1e-4)
    rate0 = np.asarray(rec.spikes[0]).reshape(6, 3000, 4).sum((1, 2)) / (4 * 0.3)
    np.testing.assert_allclose(pm.rate_hz[0], rate0)
    assert rate0.sum() > 0
    # a fresh target gives the first period's distance ~ number of unmatched spikes
    assert float(van_rossum_distance(y, jnp.zeros_like(y), 1e-4)[0]) == pytest.approx(3, abs=0.1)


@pytest.mark.parametrize("rule", ["superspike", "bptt"])
def test_single_neuron_learns_timing_task(rule):
    """Fig. 2 in miniature: 100 -> 1, 4 seeds, 300 s; the median distance drops below 0.5."""
    tr = TrainSpec(Network((100, 1)), rule=_rule(rule), optimizer=Optimizer(burn_in=5.0))
    keys = jax.random.split(jax.random.PRNGKey(4), 4)
    st = jax.vmap(lambda k: init_train_state(tr, k))(keys)
    _, m = jax.jit(jax.vmap(lambda s: run_blocks(tr, TASK.inputs, TASK.targets, s, 600)))(st)
    vr = np.stack(
        [
            per_period(jax.tree.map(lambda a, i=i: a[i], m), (100, 1), 5000, 1e-4).van_rossum[:, 0]
            for i in range(4)
        ],
        1,
    )
    start, end = np.median(vr[:5], 0), np.median(vr[-60:], 0)
    assert np.all(start > 3.0)  # 5 target spikes unmatched at first
    assert np.median(end) < 0.5


def test_trainer_validation():
    with pytest.raises(TypeError, match="learning-rule config"):
        _trainer(rule="eprop")
    with pytest.raises(ValueError, match="r0"):
        _trainer(r0=-1.0)
    with pytest.raises(
        ValueError, match=r"run\.block\): must be > 0 s and a multiple of neuron\.dt"
    ):
        _trainer(block=0.0)


@pytest.mark.parametrize("period,k", [(7, 3), (7, 7), (5, 12), (3, 20), (1, 4)])
def test_window_is_the_looped_pattern(period, k):
    """The block's slice of the looped pattern equals a gather of ``(pos + t) mod P``."""
    pattern = (np.arange(period * 2).reshape(period, 2) % 251).astype(np.uint8)
    for pos in (0, 1, period - 1, period, 3 * period + 2, 1000):
        got = np.asarray(_window(jnp.asarray(pattern), jnp.int32(pos), k))
        np.testing.assert_array_equal(got, pattern[(pos + np.arange(k)) % period])
        assert got.dtype == np.uint8


@pytest.mark.slow  # long check, run by .ci/run after the default suite
def test_skipped_block_keeps_the_input_stream_advancing():
    """on_nonfinite=skip reverts a bad block's learned state, but the input layer's delay lines
    hold the input stream and advance with the position (control: the hidden layer reverts)."""
    net = Network((100, 4, 1), LIFParams(delay=1e-3))
    tr = _trainer(net=net, on_nonfinite="skip", rule=SuperSpikeConfig(hebbian_delay=1e-3))
    st = init_train_state(tr, jax.random.PRNGKey(3))
    st = st._replace(weights=(st.weights[0], jnp.full_like(st.weights[1], jnp.nan)))
    new, m = block_step(tr, TASK.inputs, TASK.targets, st)
    assert not bool(m.finite)
    x = np.asarray(_window(TASK.inputs, st.pos, tr.block_steps), np.float32)
    # the axonal line holds the last 10 input steps; the Hebbian line the last 10 of the
    # arriving (axonally delayed) stream; both carry spikes, so a reverted (zero) line fails
    np.testing.assert_array_equal(new.rule.net.delay[0], x[-10:])
    np.testing.assert_array_equal(new.rule.layers[0].spk_buf, x[-20:-10])
    assert float(x[-10:].sum()) > 0 and float(x[-20:-10].sum()) > 0
    jax.tree.map(np.testing.assert_array_equal, new.rule.layers[1], st.rule.layers[1])
    np.testing.assert_array_equal(new.weights[0], st.weights[0])
    assert int(new.pos) == tr.block_steps


def _counting_run():
    """``run_blocks`` jitted with the spec static, and the number of times it was traced."""
    traces = []

    def run(spec, x, y, st, n, hyper):
        traces.append(1)
        return run_blocks(spec, x, y, st, n, hyper)

    return jax.jit(run, static_argnums=(0, 4)), traces


def _traced_against_baked(specs, exact):
    """Run every spec as its structure with traced hyper-parameters, against the run with its
    constants baked in; one compilation for all. Returns the final first-layer weights."""
    assert len({s.structure() for s in specs}) == 1 and len(set(specs)) == len(specs)
    run, traces = _counting_run()
    finals = []
    for spec in specs:
        st = init_train_state(spec, jax.random.PRNGKey(5))
        got, m = run(spec.structure(), TASK.inputs, TASK.targets, st, 3, spec.hyper(jnp.float32))
        ref, mr = run_blocks_jit(spec, TASK.inputs, TASK.targets, st, 3)  # constants baked in
        if exact:
            jax.tree.map(np.testing.assert_array_equal, (got, m), (ref, mr))
        else:
            jax.tree.map(
                lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-9),
                (got, m),
                (ref, mr),
            )
        finals.append(np.asarray(got.weights[0]))
    assert len(traces) == 1
    assert all(not np.array_equal(finals[0], f) for f in finals[1:])


def test_traced_optimiser_hyper_parameters_share_one_program_and_keep_the_bits():
    """Specs that differ only in r0, tau_rms, eps and drop factors compile once (as their
    structure), and each gives the bits of its own constants-baked run."""
    base = dict(net=Network((100, 4, 1)), block=0.2, drops=((0.4, 0.5),))
    specs = [
        _trainer(**base),
        _trainer(**base, r0=3e-3, tau_rms=5.0),
        _trainer(**{**base, "drops": ((0.4, 0.1),)}, eps=1e-9),
    ]
    _traced_against_baked(specs, exact=True)


def test_traced_regulariser_hyper_parameters_share_one_program():
    """rho and a traced: one program; equal to the baked runs to float rounding only (XLA fuses
    the regulariser's products with constant and with traced factors differently)."""
    base = dict(net=Network((100, 4, 1)), block=0.2)
    specs = [
        _trainer(**base, rule=SuperSpikeConfig(regularizer=Regularizer(rho=1.0))),
        _trainer(**base, rule=SuperSpikeConfig(regularizer=Regularizer(rho=30.0, a=2.0))),
    ]
    _traced_against_baked(specs, exact=False)


def _steep(beta, **kw):
    """The 100-4-1 network with surrogate steepness ``beta`` (1/V)."""
    return Network((100, 4, 1), LIFParams(surrogate=Surrogate(beta=beta, **kw)))


@pytest.mark.parametrize("rule", ["superspike", "bptt"])
def test_traced_surrogate_beta_shares_one_program_and_keeps_the_bits(rule):
    """beta travels in the rule's hyper-parameters (SuperSpike's sigma', BPTT's spike VJP):
    specs that differ only in it compile once, each with the bits of its own baked run."""
    specs = [
        _trainer(net=_steep(beta), rule=_rule(rule, feedback="random")) for beta in (1e3, 250.0)
    ]
    assert specs[0].hyper().rule.beta == 1e3 and specs[1].hyper().rule.beta == 250.0
    _traced_against_baked(specs, exact=True)


def test_traced_beta_with_the_regulariser_in_code_units():
    """rho_scale carries beta (the reference code's sigma' does): derived on the host per spec,
    so the traced run still matches its own baked run."""
    specs = [
        _trainer(net=_steep(beta), rule=SuperSpikeConfig(regularizer=Regularizer(rho=1.0)))
        for beta in (1e3, 400.0)
    ]
    rhos = [s.hyper().rule.rho for s in specs]
    assert rhos[1] == pytest.approx(rhos[0] * 1e3 / 400.0, rel=1e-12)
    _traced_against_baked(specs, exact=False)


@pytest.mark.slow  # long check, run by .ci/run after the default suite
def test_vmap_over_surrogate_beta_equals_separate_runs():
    """beta as a batched value: one vmapped program for both rules' structure, each row equal
    to the run with that beta."""
    betas = (250.0, 1e3, 4e3)
    for rule in ("superspike", "bptt"):
        specs = [_trainer(net=_steep(b), rule=_rule(rule, feedback="random")) for b in betas]
        static = specs[0].structure()
        assert all(s.structure() == static for s in specs)
        stacked = jax.tree.map(lambda *a: jnp.stack(a), *[s.hyper(jnp.float32) for s in specs])
        st = init_train_state(specs[0], jax.random.PRNGKey(7))
        run = jax.vmap(
            lambda h, static=static, st=st: (
                run_blocks(static, TASK.inputs, TASK.targets, st, 2, h)[0].weights
            )
        )
        out = jax.jit(run)(stacked)
        for i, spec in enumerate(specs):
            ref = run_blocks_jit(spec, TASK.inputs, TASK.targets, st, 2)[0]
            for a, b in zip(out, ref.weights, strict=True):
                np.testing.assert_allclose(a[i], b, rtol=1e-5, atol=1e-8)
        assert not np.allclose(out[0][0], out[0][2])


def test_vmap_over_a_hyper_parameter_equals_separate_runs():
    """r0 as a batched value: one vmapped program, each row equal to the run with that r0."""
    spec = _trainer(rule=SuperSpikeConfig(feedback="random"))
    r0s = (1e-3, 4e-3, 1.6e-2)
    hypers = [_with_r0(spec, r).hyper(jnp.float32) for r in r0s]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *hypers)
    st = init_train_state(spec, jax.random.PRNGKey(6))
    f = jax.jit(
        jax.vmap(
            lambda h: run_blocks(spec.structure(), TASK.inputs, TASK.targets, st, 2, h)[0].weights
        )
    )
    out = f(stacked)
    for i, r in enumerate(r0s):
        ref = run_blocks_jit(_with_r0(spec, r), TASK.inputs, TASK.targets, st, 2)[0]
        for a, b in zip(out, ref.weights, strict=True):
            np.testing.assert_allclose(a[i], b, rtol=1e-5, atol=1e-8)
    assert not np.allclose(out[0][0], out[0][2])


def test_structure_keeps_what_decides_the_program():
    """``regularizer.rho > 0`` decides whether the regulariser is computed: it stays in the
    structure."""

    def rule(rho, a=4.0):
        return SuperSpikeConfig(regularizer=Regularizer(rho=rho, a=a))

    on, off = rule(2.0), rule(0.0)
    assert on.structure() != off.structure()
    assert on.structure() == rule(7.0, 1.0).structure()
    assert _trainer(drops=((1.0, 0.1),)).structure() != _trainer(drops=((2.0, 0.1),)).structure()
    # beta is traced; the surrogate's kind decides the program
    assert _trainer(net=_steep(300.0)).structure() == _trainer(net=_steep(1e3)).structure()
    kind = _trainer(net=_steep(1e3, kind="sigmoid")).structure()
    assert kind != _trainer(net=_steep(1e3)).structure()


@pytest.mark.parametrize("method", ["dense", pytest.param("event", marks=pytest.mark.slow)])
def test_event_pattern_trains_bit_identically_to_the_dense_arrays(method):
    """The same run from the pattern held as events (gathered block by block on the device) as
    from the dense rasters: every state leaf and metric bit-identical, seeds vmapped."""
    from ssjax.pattern import EventPattern

    tr = _trainer(rule=SuperSpikeConfig(method=method))
    k = tr.block_steps
    x = EventPattern.from_dense(np.asarray(TASK.inputs), block=k)
    y = EventPattern.from_dense(np.asarray(TASK.targets), block=k)
    st = jax.vmap(lambda s: init_train_state(tr, jax.random.PRNGKey(s)))(jnp.arange(2))
    run = jax.jit(jax.vmap(lambda s, a, b: run_blocks(tr, a, b, s, 4), in_axes=(0, None, None)))
    want = run(st, TASK.inputs, TASK.targets)
    got = run(st, x, y)
    jax.tree.map(np.testing.assert_array_equal, got, want)
    assert float(jnp.sum(want[1].sq_err_seg)) > 0  # the run saw targets
