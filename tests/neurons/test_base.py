"""The neuron contract: a second neuron model, defined here, runs through the network, BPTT and
the per-step SuperSpike rule; the fast routes refuse it; LIF implements the contract."""

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssjax.network import Network, init_weights, simulate, simulate_stepwise
from ssjax.neuron import LIFParams
from ssjax.neurons import Neuron
from ssjax.rules.base import Block
from ssjax.rules.bptt import BPTTConfig, bptt, bptt_grad
from ssjax.rules.regulariser import Regularizer
from ssjax.rules.superspike import SuperSpikeConfig, init_rule_state, superspike, superspike_grads
from ssjax.spike import Surrogate
from ssjax.tasks.raster import frozen_poisson


class IFState(NamedTuple):
    u: jax.Array
    i: jax.Array


@dataclasses.dataclass(frozen=True)
class IFParams:
    """Non-leaky integrate-and-fire with reset by subtraction (not LIF: no leak, no clamp):

    I += x;  U += k I;  S = H(U - theta);  U -= S (theta - U_reset);  I *= a_s

    The reset is transparent to autodiff (SuperSpike's "ignore the reset"), so ``dU/dw`` is the
    trace ``z_syn += s; z += k z_syn; z_syn *= a_s``."""

    theta: float = -50e-3
    u_rest: float = -60e-3
    u_reset: float = -60e-3
    k: float = 0.01  # dt / tau_mem of the integrator
    tau_syn: float = 5e-3
    dt: float = 1e-4
    delay_steps: int = 0
    surrogate: Surrogate = dataclasses.field(default_factory=Surrogate)

    @property
    def a_s(self) -> float:
        return float(np.exp(-self.dt / self.tau_syn))

    def init(self, shape, dtype=jnp.float32):
        return IFState(jnp.full(shape, self.u_rest, dtype), jnp.zeros(shape, dtype))

    def step(self, state, x, beta=None):
        i = state.i + x
        u = state.u + self.k * i
        s = self.spike(u, beta)
        u_post = u - jax.lax.stop_gradient(s) * (self.theta - self.u_reset)
        return IFState(u_post, i * self.a_s), s, u

    def spike(self, u, beta=None):
        return self.surrogate(u - self.theta, beta)

    def surrogate_grad(self, u, beta=None):
        return self.surrogate.grad(u - self.theta, beta)

    def structure(self):
        return dataclasses.replace(self, surrogate=self.surrogate.structure())

    def psp_init(self, shape, dtype=jnp.float32):
        return jnp.zeros(shape, dtype), jnp.zeros(shape, dtype)

    def psp_step(self, trace, s):
        z_syn = trace[0] + s
        z = trace[1] + self.k * z_syn
        return (z_syn * self.a_s, z), z


NET = Network((30, 4, 2), IFParams())


def _data(seed=0, k=2000):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    w = tuple(3 * a for a in init_weights(NET, k1))
    x = frozen_poisson(k2, 30, 30.0, k * 1e-4, 1e-4)
    y = frozen_poisson(k3, 2, 10.0, k * 1e-4, 1e-4)
    return w, x, y


def _cos(a, b):
    a, b = np.ravel(a), np.ravel(b)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_both_models_implement_the_contract():
    assert isinstance(LIFParams(), Neuron) and isinstance(IFParams(), Neuron)
    assert not isinstance(Surrogate(), Neuron)
    with pytest.raises(TypeError, match="neuron contract"):
        Network((3, 2), Surrogate())


def test_simulate_runs_the_model_step_by_step():
    """Both network routes equal a direct numpy integration of the model (so they use its step,
    not LIF's); control: LIF with the same threshold gives other spikes."""
    w, x, _ = _data()
    _, rec = simulate(NET, w, x)
    _, rec_step = simulate_stepwise(NET, w, x)
    jax.tree.map(np.testing.assert_array_equal, rec, rec_step)
    p = NET.neuron
    s_in = np.asarray(x, np.float64)
    for l, wl in enumerate(w):
        wl = np.asarray(wl, np.float64)
        u, i = np.full(wl.shape[1], p.u_rest), np.zeros(wl.shape[1])
        us, ss = [], []
        for t in range(s_in.shape[0]):
            i = i + s_in[t] @ wl
            u = u + p.k * i
            s = (u > p.theta).astype(np.float64)
            us.append(u)
            ss.append(s)
            u = u - s * (p.theta - p.u_reset)
            i = i * p.a_s
        ss = np.array(ss)
        assert ss.sum() > 0
        np.testing.assert_allclose(rec.u[l], np.array(us), rtol=0, atol=1e-5)
        # a spike decided within float rounding of the threshold may flip: allow very few
        assert np.mean(np.asarray(rec.spikes[l]) != ss) < 1e-3
        s_in = np.asarray(rec.spikes[l], np.float64)  # the next layer sees the simulated spikes
    _, lif = simulate(Network(NET.sizes), w, x)
    assert not np.array_equal(lif.spikes[0], rec.spikes[0])


def test_stepwise_superspike_output_layer_equals_bptt_gradient():
    """Through the contract only: the per-step rule (its trace is the model's psp_step) gives
    -g = dL/dW / t_b for the output layer of the non-leaky model, as for LIF; BPTT runs as a
    learning rule too."""
    w, x, y = _data(1)
    cfg = SuperSpikeConfig(method="stepwise")
    rule = superspike(NET, cfg)
    out = rule.update(w, rule.init(w, jax.random.PRNGKey(2)), Block(x, y))
    assert float(out.record.spikes[-1].sum()) > 0
    gb, _ = bptt_grad(NET, w, x, y)
    assert float(jnp.abs(gb[-1]).max()) > 0
    assert _cos(out.updates[-1], gb[-1]) > 0.9999
    t_b = x.shape[0] * NET.neuron.dt
    np.testing.assert_allclose(
        float(jnp.linalg.norm(gb[-1]) / jnp.linalg.norm(out.updates[-1])), t_b, rtol=1e-4
    )
    # the same gradient through BPTT's learning rule
    b = bptt(NET, BPTTConfig())
    ob = b.update(w, b.init(w, jax.random.PRNGKey(2)), Block(x, y))
    jax.tree.map(lambda p, q: np.testing.assert_allclose(p, q, rtol=1e-6, atol=0), ob.updates, gb)


@pytest.mark.parametrize("method", ["dense", "event"])
def test_fast_routes_refuse_other_neurons(method):
    w, x, y = _data(3, k=200)
    cfg = SuperSpikeConfig(method=method)
    msg = rf"'{method}' route does not support the neuron type IFParams.*method='stepwise'"
    with pytest.raises(TypeError, match=msg):
        superspike(NET, cfg)
    with pytest.raises(TypeError, match=msg):
        superspike_grads(NET, cfg, w, x, y, init_rule_state(NET, cfg))

    # a LIF subclass may change the dynamics: refused as well
    class LIF2(LIFParams):
        pass

    with pytest.raises(TypeError, match="neuron type LIF2"):
        superspike(Network((30, 4, 2), LIF2()), cfg)


def test_regulariser_units_need_lif():
    with pytest.raises(TypeError, match="derived for LIF"):
        SuperSpikeConfig(method="stepwise", regularizer=Regularizer(rho=1.0)).hyper(NET)
    assert SuperSpikeConfig(method="stepwise").hyper(NET).rho == 0.0
