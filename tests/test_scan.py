"""overwrite_scan: equal to lax.scan bit for bit, in place, and its users (LIF layer, filter)."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssjax._scan import overwrite_scan
from ssjax.filters import double_exp_filter
from ssjax.network import Network, init_state, init_weights, layer_scan, simulate
from ssjax.neuron import LIFParams, lif_step
from ssjax.spike import Surrogate
from ssjax.tasks.raster import frozen_poisson


def _step(c, x):
    # a carry that mixes the row into two states, and an output of the row's shape
    a, b = c
    a = 0.9 * a + x
    b = b + jnp.sin(a)
    return (a, b), a * b - x


@pytest.mark.parametrize("reverse", [False, True])
def test_overwrite_scan_equals_scan(reverse):
    xs = jax.random.normal(jax.random.PRNGKey(0), (50, 3, 4))
    init = (jnp.ones((3, 4)), jnp.zeros((3, 4)))
    want = jax.jit(lambda x: jax.lax.scan(_step, init, x, reverse=reverse))(xs)
    got = jax.jit(lambda x: overwrite_scan(_step, init, x, reverse=reverse))(xs)
    jax.tree.map(np.testing.assert_array_equal, got, want)
    # negative control: the outputs are not the inputs left in place
    assert not np.allclose(got[1], xs)


def test_overwrite_scan_one_step_and_shape_check():
    xs = jnp.arange(4.0).reshape(1, 4)
    c, ys = overwrite_scan(lambda c, x: (c + x, 2 * x), jnp.zeros(4), xs)
    np.testing.assert_array_equal(ys, 2 * xs)
    np.testing.assert_array_equal(c, xs[0])
    with pytest.raises(ValueError, match="must match its input row"):
        overwrite_scan(lambda c, x: (c, x[:2]), jnp.zeros(4), jnp.zeros((3, 4)))


def _loop_copies(hlo: str, shape: str) -> int:
    """Copies of a ``shape`` array inside while-loop bodies of an optimised HLO module."""
    bodies = re.findall(r"^%?\S*region\S* \(.*?^}", hlo, flags=re.S | re.M)
    return sum(len(re.findall(rf"{re.escape(shape)}\S* copy\(", b)) for b in bodies)


def _naive_overwrite(params, st, x):
    # the row is read and its output written in the same step: XLA copies the array each step
    def step(c, t):
        st, buf = c
        st, _, u = lif_step(params, st, buf[t])
        return (st, buf.at[t].set(u)), None

    return jax.lax.scan(step, (st, x), jnp.arange(x.shape[0]))[0]


def test_refractory_layer_is_updated_in_place():
    """The carried currents are overwritten in place: no copy of the [T, N] array per step.

    A refractory LIF layer reads the row in several state updates; with the row read in the
    step that writes it, XLA copied the whole array every step (1000x slower at 5000 x 256)."""
    params = LIFParams()
    assert params.ref_steps > 0
    st = init_state(Network((8, 16), params), (), jnp.float32).layers[0]
    x = jnp.zeros((200, 16))

    def run(x):
        return layer_scan(params, st, x * 1.5, overwrite=True)

    hlo = jax.jit(run).lower(x).compile().as_text()
    assert _loop_copies(hlo, "f32[200,16]") == 0
    # negative control: the check finds the copy of the naive form
    naive = jax.jit(lambda x: _naive_overwrite(params, st, x * 1.5)).lower(x).compile()
    assert _loop_copies(naive.as_text(), "f32[200,16]") > 0


SURROGATES = [Surrogate(), Surrogate(forward="sigmoid", kind="sigmoid")]


@pytest.mark.parametrize(
    "tau_ref, surrogate", [(0.0, SURROGATES[0]), (2e-3, SURROGATES[0]), (0.0, SURROGATES[1])]
)
def test_layer_scan_overwrite_is_bit_identical(tau_ref, surrogate):
    params = LIFParams(tau_ref=tau_ref, surrogate=surrogate)
    net = Network((50, 30), params)
    st = init_state(net, (2,), jnp.float32).layers[0]
    x = frozen_poisson(jax.random.PRNGKey(1), 100, 200.0, 0.3, 1e-4).reshape(3000, 2, 50)
    cur = x @ (8.0 * init_weights(net, jax.random.PRNGKey(2))[0])
    run = jax.jit(layer_scan, static_argnums=(0,), static_argnames="overwrite")
    want = run(params, st, cur)
    got = run(params, st, cur, overwrite=True)
    jax.tree.map(np.testing.assert_array_equal, got, want)
    assert float(want[1].sum()) > 10  # negative control: the layer fired


@pytest.mark.parametrize("delay", [0.0, 5e-4])
def test_simulate_overwrite_is_bit_identical(delay):
    net = Network((40, 20, 5), LIFParams(delay=delay))
    w = tuple(6.0 * a for a in init_weights(net, jax.random.PRNGKey(3)))
    x = frozen_poisson(jax.random.PRNGKey(4), 40, 100.0, 0.2, 1e-4)
    run = jax.jit(simulate, static_argnums=0, static_argnames="overwrite")
    want = run(net, w, x)
    got = run(net, w, x, overwrite=True)
    jax.tree.map(np.testing.assert_array_equal, got, want)
    assert all(float(s.sum()) > 0 for s in want[1].spikes)


@pytest.mark.parametrize("reverse", [False, True])
def test_filter_overwrite_is_bit_identical(reverse):
    x = frozen_poisson(jax.random.PRNGKey(5), 20, 50.0, 0.2, 1e-4) - 0.5
    run = jax.jit(
        lambda x, ow: double_exp_filter(x, 5e-3, 10e-3, 1e-4, reverse=reverse, overwrite=ow),
        static_argnums=1,
    )
    jax.tree.map(np.testing.assert_array_equal, run(x, True), run(x, False))
