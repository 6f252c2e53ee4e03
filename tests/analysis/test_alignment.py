"""Rule comparison maths: alignment conventions, output layer = gradient, rule pairs (the table
and plot are tested in tests/test_plots.py, the ``ssjax compare`` command in tests/test_cli.py)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssjax.analysis.alignment import RULES, alignment, compare_rules, rule_grads
from ssjax.network import Network, init_weights, simulate
from ssjax.rules.superspike import SuperSpikeConfig, init_rule_state, superspike_grads
from ssjax.tasks.raster import frozen_poisson

OUT = 1  # index of the output layer in the (20, 5, 2) network


def _layers(key):
    k1, k2 = jax.random.split(key)
    return (jax.random.normal(k1, (6, 4)), jax.random.normal(k2, (4, 3)))


def test_alignment_of_identical_opposite_and_scaled_updates():
    a = _layers(jax.random.PRNGKey(0))
    same = alignment(a, a)
    np.testing.assert_allclose(same.cosine, 1.0, atol=1e-6)
    np.testing.assert_allclose(same.norm_ratio, 1.0, rtol=1e-6)
    np.testing.assert_array_equal(same.sign_agreement, 1.0)
    neg = alignment(a, tuple(-x for x in a))
    np.testing.assert_allclose(neg.cosine, -1.0, atol=1e-6)
    np.testing.assert_allclose(neg.norm_ratio, 1.0, rtol=1e-6)
    np.testing.assert_array_equal(neg.sign_agreement, 0.0)
    half = alignment(a, tuple(2 * x for x in a))  # ratio is |a| / |b|
    np.testing.assert_allclose(half.norm_ratio, 0.5, rtol=1e-6)
    np.testing.assert_allclose(half.cosine, 1.0, atol=1e-6)
    # tiny float32 updates neither underflow nor lose the direction
    tiny = alignment(tuple(1e-30 * x for x in a), tuple(2e-30 * x for x in a))
    np.testing.assert_allclose(tiny.cosine, 1.0, atol=1e-6)
    np.testing.assert_allclose(tiny.norm_ratio, 0.5, rtol=1e-5)


def test_alignment_by_hand_and_sign_agreement_skips_zero_entries():
    a = (jnp.array([1.0, -1.0, 0.0, 2.0]),)
    b = (jnp.array([1.0, 1.0, 3.0, 0.0]),)
    r = alignment(a, b)
    # <a, b> = 0, so orthogonal; |a| = sqrt(6), |b| = sqrt(11); entries 0 and 1 are compared
    np.testing.assert_allclose(r.cosine, [0.0], atol=1e-7)
    np.testing.assert_allclose(r.norm_ratio, [np.sqrt(6 / 11)], rtol=1e-6)
    np.testing.assert_allclose(r.sign_agreement, [0.5])
    r = alignment((jnp.array([3.0, 4.0]),), (jnp.array([1.0, 0.0]),))
    np.testing.assert_allclose(r.cosine, [0.6], rtol=1e-6)
    np.testing.assert_allclose(r.norm_ratio, [5.0], rtol=1e-6)
    np.testing.assert_allclose(r.sign_agreement, [1.0])


def test_zero_norm_layers_give_documented_values_not_nan():
    x = jnp.array([[1.0, -2.0], [0.5, 3.0]])
    z = jnp.zeros_like(x)
    r = alignment((z, x, z), (x, z, z))
    for field in r:
        assert not bool(jnp.isnan(field).any())
    np.testing.assert_array_equal(r.cosine, [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(r.norm_ratio, [0.0, np.inf, 1.0])
    np.testing.assert_array_equal(r.sign_agreement, [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="shapes"):
        alignment((x,), (x[0],))


@pytest.fixture(scope="module")
def block():
    """A (20, 5, 2) network where every layer spikes, on a 0.2 s block of random input/target."""
    net = Network((20, 5, 2))
    w = tuple(3 * x for x in init_weights(net, jax.random.PRNGKey(1)))
    w = (w[0], jnp.abs(w[1]))  # excitatory output weights, so the output layer surely spikes
    k1, k2 = jax.random.split(jax.random.PRNGKey(2))
    x = frozen_poisson(k1, 20, 20.0, 0.2, 1e-4)
    y = frozen_poisson(k2, 2, 15.0, 0.2, 1e-4)
    _, rec = simulate(net, w, x)
    counts = [int(s.sum()) for s in rec.spikes]
    assert min(counts) > 0, counts
    grads = {
        r: rule_grads(r, net, w, x, y, key=jax.random.PRNGKey(3))
        for r in ("superspike:symmetric", "superspike:none", "bptt", "bptt:reset")
    }
    cfg = SuperSpikeConfig()
    # the unscaled SuperSpike update and the rule state it leaves behind
    raw, state, _ = jax.jit(superspike_grads, static_argnums=(0, 1))(
        net, cfg, w, x, y, init_rule_state(net, cfg)
    )
    grads["raw"], grads["state after"] = raw, state
    return net, w, x, y, grads


def test_output_layer_superspike_equals_bptt_and_reset_gradient_differs(block):
    net, w, x, y, g = block
    r = alignment(g["superspike:symmetric"], g["bptt"])
    assert float(jnp.abs(g["bptt"][OUT]).max()) > 0
    assert float(r.cosine[OUT]) > 0.9999
    assert abs(float(r.norm_ratio[OUT]) - 1.0) < 1e-3
    # ... which needs the t_b = K dt scaling: the raw update is the gradient divided by t_b
    t_b = x.shape[0] * net.neuron.dt
    np.testing.assert_allclose(g["raw"][OUT] * t_b, g["superspike:symmetric"][OUT], rtol=1e-6)
    # negative control: differentiating the reset changes the hidden gradient
    c = alignment(g["bptt:reset"], g["bptt"])
    assert float(c.cosine[0]) < 0.9999 or abs(float(c.norm_ratio[0]) - 1.0) > 1e-3
    # and the hidden layer is not where SuperSpike is exact either
    assert float(r.cosine[0]) < 0.9999 or abs(float(r.norm_ratio[0]) - 1.0) > 1e-3


def test_no_feedback_gives_zero_hidden_update_and_alignment_handles_it(block):
    _, _, _, _, g = block
    none = g["superspike:none"]
    np.testing.assert_array_equal(none[0], 0.0)
    np.testing.assert_allclose(none[OUT], g["superspike:symmetric"][OUT], rtol=1e-6)
    r = alignment(none, g["bptt"])
    assert all(bool(jnp.isfinite(f).all()) for f in r)
    assert float(r.cosine[0]) == 0.0 and float(r.norm_ratio[0]) == 0.0
    assert float(r.sign_agreement[0]) == 0.0
    assert float(r.cosine[OUT]) > 0.9999


def test_carried_rule_state_reaches_bptt(block):
    net, w, x, y, g = block
    state = g["state after"]
    carried = rule_grads("bptt", net, w, x, y, key=jax.random.PRNGKey(3), rule_state=state)
    assert not np.allclose(carried[OUT], g["bptt"][OUT])


def test_compare_rules_pairs(block):
    net, w, x, y, _ = block
    rules = ("superspike:symmetric", "superspike:random", "superspike:none", "bptt")
    res = compare_rules(rules, net, w, x, y, key=jax.random.PRNGKey(3))
    assert list(res) == list(itertools.combinations(rules, 2))
    assert all(r.cosine.shape == (net.n_layers,) for r in res.values())
    # random and symmetric feedback differ only in the hidden layer
    rs = res[("superspike:symmetric", "superspike:random")]
    assert float(rs.cosine[OUT]) > 0.9999 and float(rs.cosine[0]) < 0.9999


def test_unknown_or_repeated_rules_rejected(block):
    net, w, x, y, _ = block
    with pytest.raises(ValueError, match="'superspike:bogus'.*bptt:reset"):
        rule_grads("superspike:bogus", net, w, x, y, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="distinct"):
        compare_rules(("bptt", "bptt"), net, w, x, y, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="one sample"):
        rule_grads("bptt", net, w, x[:, None], y[:, None], key=jax.random.PRNGKey(0))
    assert len(RULES) == 6
