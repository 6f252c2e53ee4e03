"""Every learning rule through the same checks (the contract of ssjax.rules.base).

As optax's alias tests run every optimiser through one suite: the state's structure is stable,
one compilation serves consecutive blocks, a seed vmap equals a loop over seeds, running blocks
in one scan equals running them one by one, and the rule's accessors describe its state.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssjax.losses import VanRossum
from ssjax.network import NetState, Network, init_weights
from ssjax.neuron import LIFParams
from ssjax.neurons import ALIFParams
from ssjax.rules.base import Block, LearningRule, RuleOutput
from ssjax.rules.bptt import BPTTConfig, bptt
from ssjax.rules.regulariser import Regularizer
from ssjax.rules.superspike import SuperSpikeConfig, superspike
from ssjax.tasks.raster import frozen_poisson

NET = Network((30, 5, 2), LIFParams(delay=3e-4))
# adaptive neurons and a recurrent hidden layer: the stepwise route and BPTT run them
REC = Network((30, 5, 2), ALIFParams(delay=3e-4), recurrent=(True,), recurrent_delay=2e-4)
K = 600

RULES = {
    "superspike_dense": lambda **kw: superspike(NET, SuperSpikeConfig(feedback="random"), **kw),
    "superspike_event": lambda **kw: superspike(
        NET,
        SuperSpikeConfig(method="event", hebbian_delay=3e-4, regularizer=Regularizer(rho=1.0)),
        **kw,
    ),
    "superspike_stepwise": lambda **kw: superspike(
        NET, SuperSpikeConfig(method="stepwise", feedback="uniform"), **kw
    ),
    "bptt": lambda **kw: bptt(NET, BPTTConfig(), **kw),
    "superspike_stepwise_recurrent_alif": lambda **kw: superspike(
        REC, SuperSpikeConfig(method="stepwise", feedback="random", hebbian_delay=3e-4), **kw
    ),
    "bptt_recurrent_alif": lambda **kw: bptt(REC, BPTTConfig(), **kw),
}


def _blocks(n, seed=0):
    out = []
    for b in range(n):
        x = frozen_poisson(jax.random.PRNGKey(seed + b), 30, 40.0, K * 1e-4, 1e-4)
        y = frozen_poisson(jax.random.PRNGKey(seed + 50 + b), 2, 15.0, K * 1e-4, 1e-4)
        out.append(Block(x, y))
    return out


def _init(rule, key, net=NET):
    k_w, k_r = jax.random.split(key)
    w = tuple(3 * a for a in init_weights(net, k_w))
    return w, rule.init(w, k_r)


def _shapes(tree):
    return jax.tree.map(lambda a: (a.shape, a.dtype), tree)


# the event route (about 40 s here) runs with the long checks; its agreement with the dense
# and stepwise routes is in tests/rules/superspike/test_routes.py
@pytest.fixture(
    params=[pytest.param(n, marks=pytest.mark.slow) if n.endswith("event") else n for n in RULES]
)
def name(request) -> str:
    return request.param


@pytest.fixture
def rule(name) -> LearningRule:
    return RULES[name]()


@pytest.fixture
def net(name) -> Network:
    return REC if name.endswith("recurrent_alif") else NET


def test_rule_is_a_learning_rule_with_its_own_loss(rule, net):
    assert isinstance(rule, LearningRule)
    assert isinstance(rule.loss, VanRossum)
    w, st = _init(rule, jax.random.PRNGKey(0), net)
    assert isinstance(rule.network_state(st), NetState)


def test_state_structure_is_stable_and_updates_are_shaped_like_weights(rule, net):
    w, st = _init(rule, jax.random.PRNGKey(0), net)
    update = jax.jit(rule.update)
    for block in _blocks(2):
        out = update(w, st, block)
        assert isinstance(out, RuleOutput)
        assert jax.tree.structure(out.state) == jax.tree.structure(st)
        assert _shapes(out.state) == _shapes(st)
        assert _shapes(out.updates) == _shapes(w)
        assert out.error.shape == (K, NET.sizes[-1])
        assert [s.shape for s in out.record.spikes] == [(K, n) for n in NET.sizes[1:]]
        st = out.state
    assert any(float(jnp.abs(u).sum()) > 0 for u in out.updates)


def test_one_compilation_serves_consecutive_blocks(rule, net):
    traces = []

    def update(w, st, block):
        traces.append(1)
        return rule.update(w, st, block)

    f = jax.jit(update)
    w, st = _init(rule, jax.random.PRNGKey(1), net)
    for block in _blocks(3):
        st = f(w, st, block).state
    assert len(traces) == 1


def test_blocks_in_one_scan_equal_blocks_one_by_one(rule, net):
    w, st0 = _init(rule, jax.random.PRNGKey(2), net)
    blocks = _blocks(3)
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *blocks)

    def body(st, block):
        out = rule.update(w, st, block)
        return out.state, out.updates

    st_scan, upd_scan = jax.jit(lambda s: jax.lax.scan(body, s, stacked))(st0)
    f = jax.jit(rule.update)
    st = st0
    for b, block in enumerate(blocks):
        out = f(w, st, block)
        for u, v in zip(out.updates, upd_scan, strict=True):
            np.testing.assert_allclose(u, v[b], rtol=1e-5, atol=1e-9)
        st = out.state
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-9), st, st_scan)


def test_vmap_over_seeds_equals_a_loop(rule, net):
    keys = jax.random.split(jax.random.PRNGKey(3), 3)
    w, st = jax.vmap(lambda k: _init(rule, k, net))(keys)
    block = _blocks(1)[0]
    out = jax.jit(jax.vmap(rule.update, in_axes=(0, 0, None)))(w, st, block)
    for i, k in enumerate(keys):
        w_i, st_i = _init(rule, k, net)
        ref = jax.jit(rule.update)(w_i, st_i, block)
        jax.tree.map(
            lambda a, b, i=i: np.testing.assert_allclose(a[i], b, rtol=1e-4, atol=1e-8),
            (out.updates, out.state),
            (ref.updates, ref.state),
        )
    assert not np.allclose(out.updates[-1][0], out.updates[-1][1])  # seeds differ


def test_input_leaves_flag_what_depends_on_the_inputs_alone(rule, net, name):
    """The flagged leaves are equal across seeds (they hold the input stream), and the rule run
    with them shared (``shared_inputs``, unbatched in the vmap) gives the same result."""
    keys = jax.random.split(jax.random.PRNGKey(4), 3)
    w, st = jax.vmap(lambda k: _init(rule, k, net))(keys)
    flags = rule.input_leaves(jax.tree.map(lambda a: a[0], st))
    assert jax.tree.structure(flags) == jax.tree.structure(jax.tree.map(lambda a: a[0], st))
    assert any(jax.tree.leaves(flags))
    block = _blocks(1)[0]
    out = jax.vmap(rule.update, in_axes=(0, 0, None))(w, st, block)
    for keep, leaf in zip(jax.tree.leaves(flags), jax.tree.leaves(out.state), strict=True):
        if keep:
            np.testing.assert_array_equal(leaf[0], leaf[1])
    shared = RULES[name](shared_inputs=True)
    axes = jax.tree.map(lambda keep: None if keep else 0, flags)
    st_u = jax.tree.map(lambda a, keep: a[0] if keep else a, st, flags)
    out_s = jax.vmap(shared.update, in_axes=(0, axes, None), out_axes=(RuleOutput(0, axes, 0, 0)))(
        w, st_u, block
    )
    for u, v in zip(out.updates, out_s.updates, strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-8)
