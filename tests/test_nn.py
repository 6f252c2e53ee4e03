"""ssjax.nn: the Flax NNX modules equal ssjax's functions bit for bit (LIF, ALIF, recurrent,
delays; gradients too); conversion to and from ssjax's weights; the LI readout equals a
never-spiking LIF's membrane; control: the module's own weights give another result."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

nnx = pytest.importorskip("flax.nnx")

from ssjax.network import Network, init_weights, simulate  # noqa: E402
from ssjax.neuron import LIFParams  # noqa: E402
from ssjax.neurons import ALIFParams  # noqa: E402
from ssjax.nn import ALIF, LI, LIF, SpikingNetwork  # noqa: E402
from ssjax.rules.bptt import bptt_grad, bptt_loss  # noqa: E402
from ssjax.tasks.raster import frozen_poisson  # noqa: E402

NETS = {
    "lif": Network((20, 6, 3), LIFParams()),
    "alif_delay": Network((20, 6, 5, 3), ALIFParams(delay=3e-4, beta_a=2e-3)),
    "recurrent": Network((20, 6, 5, 3), LIFParams(), recurrent=(True, False), recurrent_delay=2e-4),
}


def _data(net, seed=0, k=1500):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    w = tuple(4 * a for a in init_weights(net, k1))
    x = frozen_poisson(k2, 2 * net.sizes[0], 30.0, k * 1e-4, 1e-4).reshape(k, 2, -1)
    y = frozen_poisson(k3, 2 * net.sizes[-1], 10.0, k * 1e-4, 1e-4).reshape(k, 2, -1)
    return w, x, y


@pytest.mark.parametrize("name", list(NETS))
def test_module_equals_simulate_bit_for_bit_and_converts_weights(name):
    net = NETS[name]
    w, x, _ = _data(net)
    model = SpikingNetwork.from_network(net, w)
    assert model.network == net
    jax.tree.map(np.testing.assert_array_equal, model.weights(), w)
    ref = simulate(net, w, x)
    got = model(x)
    jax.tree.map(np.testing.assert_array_equal, got, ref)
    assert all(float(s.sum()) > 0 for s in ref[1].spikes)
    # carried state: two halves equal the whole
    st, r1 = model(x[:700])
    _, r2 = model(x[700:], st)
    np.testing.assert_array_equal(
        jnp.concatenate([r1.spikes[-1], r2.spikes[-1]]), ref[1].spikes[-1]
    )
    # control: the module's own draw is another network
    own = SpikingNetwork(net, rngs=nnx.Rngs(7))
    assert not np.array_equal(own(x)[1].spikes[0], ref[1].spikes[0])
    with pytest.raises(ValueError, match="weights must have the shapes"):
        model.load_weights(w[:1])


@pytest.mark.parametrize("name", [pytest.param("alif_delay", marks=pytest.mark.slow), "recurrent"])
def test_gradients_through_the_module_equal_bptt(name):
    net = NETS[name]
    w, x, y = _data(net, 1)
    model = SpikingNetwork.from_network(net, w)
    graphdef, params = nnx.split(model, nnx.Param)

    def loss(params):
        m = nnx.merge(graphdef, params)
        return bptt_loss(m.weights(), m.network, x, y)[0]

    g = nnx.merge(graphdef, jax.grad(loss)(params)).weights()
    g_ref, _ = bptt_grad(net, w, x, y)
    jax.tree.map(np.testing.assert_array_equal, g, g_ref)
    assert all(float(jnp.abs(a).max()) > 0 for a in g_ref)


def test_layers_and_the_li_readout():
    rngs = nnx.Rngs(0)
    lif = LIF(20, 6, rngs=rngs)
    alif = ALIF(20, 6, rngs=rngs)
    assert type(lif.neuron) is LIFParams and type(alif.neuron) is ALIFParams
    rec = LIF(20, 6, recurrent=True, recurrent_delay=3e-4, rngs=rngs)
    assert rec.r[...].shape == (6, 6) and rec.init_state((2,)).recurrent.shape == (3, 2, 6)
    with pytest.raises(ValueError, match="recurrent_delay"):
        LIF(20, 6, recurrent=True, recurrent_delay=0.0, rngs=rngs)
    # LI = the membrane of a LIF whose threshold is never reached
    _, x, _ = _data(NETS["lif"])
    li = LI(20, 3, rngs=rngs)
    x = x[:, 0]
    w = 4 * li.w[...]
    li.w[...] = w
    _, u = li(x)
    quiet = Network((20, 3), LIFParams(theta=10.0))
    _, rec_ref = simulate(quiet, (w,), x)
    assert float(rec_ref.spikes[0].sum()) == 0
    np.testing.assert_array_equal(u, rec_ref.u[0])
    assert float(jnp.abs(u - quiet.neuron.u_rest).max()) > 1e-3
