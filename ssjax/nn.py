"""Flax NNX modules of ssjax's spiking layers, built on the same pure functions.

Each module holds its weights as ``nnx.Param`` and calls the functions of :mod:`ssjax.network`
that :func:`ssjax.network.simulate` calls, in the same order, so their outputs equal ssjax's bit
for bit (tested):

- :class:`LIF`: one layer of spiking neurons, ``x[t] = s_in[t - d] @ W (+ s[t - d_r] @ R)``,
  any neuron of the contract (:class:`ssjax.neuron.LIFParams` by default); ``recurrent=True``
  adds the recurrent matrix ``R``, delayed ``d_r >= 1`` steps
  (:func:`ssjax.network.recurrent_scan`);
- :class:`ALIF`: the same with adaptive LIF neurons (:class:`ssjax.neurons.alif.ALIFParams`);
- :class:`LI`: a leaky-integrator readout, LIF's membrane without spike or reset
  (:func:`ssjax.readout.li_readout`), whose potential is the output;
- :class:`SpikingNetwork`: the layers of a :class:`ssjax.network.Network`; ``__call__`` is
  :func:`ssjax.network.simulate`. :meth:`SpikingNetwork.from_network` and
  :meth:`SpikingNetwork.weights` convert to and from ssjax's weight tuple (feed-forward, then
  recurrent), :attr:`SpikingNetwork.network` gives the static ``Network`` back.

Shapes are time-major ``[T, *B, N]``; weights ``[N_pre, N_post]`` in volts; SI units. State is
passed explicitly (a pure ``(state, outputs)`` interface, as ssjax's), not stored in the module.
Needs ``flax`` (``pip install 'ssjax[nnx]'``).

Reference: Flax NNX (flax.readthedocs.io/en/latest/nnx_basics.html); Zenke & Ganguli (2018).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from ssjax._types import Array, Weights
from ssjax.network import (
    NetState,
    Network,
    Record,
    delay_line,
    input_currents,
    layer_scan,
    recurrent_scan,
)
from ssjax.neuron import LIFParams, LIFState, lif_init
from ssjax.neurons import ALIFParams, Neuron
from ssjax.readout import li_readout

__all__ = ["ALIF", "LI", "LIF", "LayerState", "SpikingNetwork"]


class LayerState(NamedTuple):
    """A layer's carried state: the neurons' state ``[*B, N]`` leaves, the axonal delay line of
    its input ``[d, *B, N_in]`` and its recurrent delay line ``[d_r, *B, N]`` (None if not
    recurrent)."""

    neuron: object
    delay: Array
    recurrent: Array | None


def _normal(rngs: nnx.Rngs, shape, w0: float, dtype) -> Array:
    # ssjax's initialisation (ssjax.network.init_weights) before its clip
    return jax.random.normal(rngs.params(), shape, dtype) * (w0 / math.sqrt(shape[0]))


class LIF(nnx.Module):
    """A layer of spiking neurons with input weights ``W`` ``[n_in, n_out]`` (V).

    ``__call__(s_in, state)`` with ``s_in`` ``[T, *B, n_in]`` returns ``(state, s, u)``, spikes
    and the potentials the spikes were decided on ``[T, *B, n_out]``, as one layer of
    :func:`ssjax.network.simulate`. ``recurrent``: a recurrent matrix ``R`` ``[n_out, n_out]``
    whose spikes arrive ``recurrent_delay`` (s, >= dt) later.
    """

    default_neuron: Neuron = LIFParams()

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        neuron: Neuron | None = None,
        recurrent: bool = False,
        recurrent_delay: float = 1e-4,
        w0: float = 0.05,
        rngs: nnx.Rngs,
        dtype=jnp.float32,
    ):
        self.neuron = self.default_neuron if neuron is None else neuron
        self.n_in, self.n_out = n_in, n_out
        self.w = nnx.Param(_normal(rngs, (n_in, n_out), w0, dtype))
        self.recurrent_delay = recurrent_delay
        self.r = nnx.Param(_normal(rngs, (n_out, n_out), w0, dtype)) if recurrent else None
        if recurrent and int(round(recurrent_delay / self.neuron.dt)) < 1:
            raise ValueError(f"recurrent_delay must be >= dt, got {recurrent_delay}")

    @property
    def recurrent_steps(self) -> int:
        """The recurrent delay in steps."""
        return int(round(self.recurrent_delay / self.neuron.dt))

    def init_state(self, batch_shape=(), dtype=jnp.float32) -> LayerState:
        """Resting neurons, empty delay lines."""
        b = tuple(batch_shape)
        rec = None
        if self.r is not None:
            rec = jnp.zeros((self.recurrent_steps, *b, self.n_out), dtype)
        return LayerState(
            self.neuron.init(b + (self.n_out,), dtype),
            jnp.zeros((self.neuron.delay_steps, *b, self.n_in), dtype),
            rec,
        )

    def __call__(self, s_in: Array, state: LayerState | None = None, *, beta=None):
        """``(state, s, u)`` over the steps of ``s_in`` (``beta``: the surrogate's steepness)."""
        w = self.w[...]
        if state is None:
            state = self.init_state(s_in.shape[1:-1], w.dtype)
        s_d, buf = delay_line(state.delay, s_in)
        cur = input_currents(s_d, w)
        if self.r is None:
            st, s, u = layer_scan(self.neuron, state.neuron, cur, beta=beta)
            return LayerState(st, buf, None), s, u
        assert state.recurrent is not None
        st, rbuf, s, u = recurrent_scan(
            self.neuron, state.neuron, state.recurrent, cur, self.r[...], beta=beta
        )
        return LayerState(st, buf, rbuf), s, u


class ALIF(LIF):
    """:class:`LIF` with adaptive-threshold neurons (:class:`ssjax.neurons.alif.ALIFParams`)."""

    default_neuron: Neuron = ALIFParams()


class LI(nnx.Module):
    """Leaky-integrator readout: LIF's membrane and synapse without spike or reset,
    ``V' = a V + c I`` (:func:`ssjax.readout.li_readout`); ``__call__(s_in, state)`` returns
    ``(state, u)`` with ``u`` the potential ``[T, *B, n_out]`` (V)."""

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        neuron: LIFParams | None = None,
        w0: float = 0.05,
        rngs: nnx.Rngs,
        dtype=jnp.float32,
    ):
        self.neuron = LIFParams() if neuron is None else neuron
        self.n_in, self.n_out = n_in, n_out
        self.w = nnx.Param(_normal(rngs, (n_in, n_out), w0, dtype))

    def init_state(self, batch_shape=(), dtype=jnp.float32) -> LIFState:
        return lif_init(self.neuron, tuple(batch_shape) + (self.n_out,), dtype)

    def __call__(self, s_in: Array, state: LIFState | None = None):
        w = self.w[...]
        if state is None:
            state = self.init_state(s_in.shape[1:-1], w.dtype)
        return li_readout(self.neuron, s_in, w, state)


class SpikingNetwork(nnx.Module):
    """The layers of a :class:`ssjax.network.Network` as :class:`LIF` modules (weights drawn as
    ssjax draws them, before the clip, from ``rngs``; or given: :meth:`from_network`)."""

    def __init__(self, net: Network, *, rngs: nnx.Rngs, dtype=jnp.float32):
        rec = net.recurrent or (False,) * (net.n_layers - 1)
        flags = tuple(rec) + (False,)
        self.sizes, self.w0, self.w_min, self.w_max = net.sizes, net.w0, net.w_min, net.w_max
        self.layers = nnx.List(
            [
                LIF(
                    a,
                    b,
                    neuron=net.neuron,
                    recurrent=f,
                    recurrent_delay=net.recurrent_delay,
                    w0=net.w0,
                    rngs=rngs,
                    dtype=dtype,
                )
                for a, b, f in zip(net.sizes[:-1], net.sizes[1:], flags, strict=True)
            ]
        )
        self._recurrent = tuple(net.recurrent)

    @classmethod
    def from_network(cls, net: Network, weights: Weights) -> SpikingNetwork:
        """The module with ssjax's ``weights`` (``net.weight_shapes()``, feed-forward first)."""
        model = cls(net, rngs=nnx.Rngs(0), dtype=weights[0].dtype)
        model.load_weights(weights)
        return model

    @property
    def network(self) -> Network:
        """The static :class:`ssjax.network.Network` this module simulates."""
        layer = self.layers[0]
        return Network(
            self.sizes,
            layer.neuron,
            self.w0,
            self.w_min,
            self.w_max,
            recurrent=self._recurrent,
            recurrent_delay=layer.recurrent_delay,
        )

    def weights(self) -> Weights:
        """ssjax's weight tuple: every layer's ``W``, then the recurrent ``R`` in layer order."""
        ff = tuple(layer.w[...] for layer in self.layers)
        return ff + tuple(layer.r[...] for layer in self.layers if layer.r is not None)

    def load_weights(self, weights: Weights) -> None:
        """Set the parameters from ssjax's weight tuple (shapes checked)."""
        shapes = self.network.weight_shapes()
        if len(weights) != len(shapes) or any(
            tuple(w.shape) != s for w, s in zip(weights, shapes, strict=False)
        ):
            got = [tuple(w.shape) for w in weights]
            raise ValueError(f"weights must have the shapes {list(shapes)}, got {got}")
        n = len(self.layers)
        for layer, w in zip(self.layers, weights[:n], strict=True):
            layer.w[...] = w
        rec = iter(weights[n:])
        for layer in self.layers:
            if layer.r is not None:
                layer.r[...] = next(rec)

    def __call__(
        self, inputs: Array, state: NetState | None = None, *, beta=None
    ) -> tuple[NetState, Record]:
        """:func:`ssjax.network.simulate` of the module's weights: ``(NetState, Record)``."""
        n = len(self.layers)
        states: list[LayerState | None] = [None] * n
        if state is not None:
            rec = iter(state.recurrent)
            states = [
                LayerState(st, d, next(rec) if layer.r is not None else None)
                for layer, st, d in zip(self.layers, state.layers, state.delay, strict=True)
            ]
        s = inputs
        out, spikes, us = [], [], []
        for layer, st in zip(self.layers, states, strict=True):
            st, s, u = layer(s, st, beta=beta)
            out.append(st)
            spikes.append(s)
            us.append(u)
        net_state = NetState(
            tuple(st.neuron for st in out),
            tuple(st.delay for st in out),
            tuple(st.recurrent for st in out if st.recurrent is not None),
        )
        return net_state, Record(tuple(spikes), tuple(us))
