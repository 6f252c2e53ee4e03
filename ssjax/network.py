"""Feed-forward networks of spiking layers, simulated over time with ``lax.scan``.

A network of sizes ``(N_0, N_1, ..., N_L)`` has ``N_0`` input channels (spike trains given as
data) and ``L`` layers of one neuron model: any implementation of the neuron contract
(:class:`ssjax.neurons.base.Neuron`: ``init``, ``step``, ``spike``), LIF
(:class:`ssjax.neuron.LIFParams`) by default; nothing here depends on the model otherwise.
Weights are a tuple of arrays, layer ``l`` having ``W[l]`` of shape ``[N_l, N_{l+1}]`` (pre,
post) and units of volts, so that the input of layer ``l + 1`` at step ``t`` is
``x[t] = s_l[t - d] @ W[l]`` with ``d`` the neuron's axonal delay in steps.

Two equivalent routes:

- :func:`simulate` (default, fast): layer by layer. A feed-forward layer depends only on the
  layer below, so each layer's input currents for *all* steps are one matrix product
  ``[T * B, N_l] @ [N_l, N_{l+1}]``, followed by an elementwise scan of the neuron dynamics.
- :func:`simulate_stepwise` (reference): one scan over time that advances every layer each step.

Both accept any leading batch shape: inputs ``[T, *B, N_0]``, state leaves ``[*B, N_l]``.

Reference: Zenke & Ganguli (2018), Neural Computation 30(6); weight initialisation of the
reference code (fzenke/pub2018superspike): ``w ~ N(0, (w0 / sqrt(N_pre))^2)`` clipped.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from ssjax._scan import overwrite_scan
from ssjax.neuron import LIFParams
from ssjax.neurons.base import Beta, Neuron
from ssjax.params import Check, check_fields, compare, ge, param

Array = jax.Array
Weights = tuple  # tuple[Array, ...]; W[l] is [N_l, N_{l+1}] in volts

_HIGHEST = jax.lax.Precision.HIGHEST


@dataclasses.dataclass(frozen=True)
class Network:
    """Static description of a layered spiking network (hashable; pass to jit as a static arg).

    Attributes:
      sizes: ``(N_in, N_hidden..., N_out)``.
      neuron: the neuron model shared by all layers (:class:`ssjax.neurons.base.Neuron`).
      w0: initial weight scale (V); ``std = w0 / sqrt(N_pre)`` (reference code: 0.05).
      w_min, w_max: weight bounds (V) used for clipping (paper: +-0.1 V).
    """

    SCOPE: ClassVar[str] = "network"

    sizes: tuple[int, ...] = param(
        (100, 4, 1),
        Check(lambda v, c: len(v) >= 2 and min(v) >= 1, "a list of >= 2 positive integers"),
        doc="N_in, hidden..., N_out",
    )
    neuron: Neuron = dataclasses.field(default_factory=LIFParams)
    w0: float = param(0.05, ge(0, " V"), doc="initial weight scale (V): std = w0 / sqrt(N_pre)")
    w_min: float = param(-0.1, compare("<", "network.w_max", " V"), doc="weight clip (V)")
    w_max: float = param(0.1, doc="weight clip (V)")

    def __post_init__(self):
        check_fields(self)
        if not isinstance(self.neuron, Neuron):
            raise TypeError(
                "Network.neuron must implement the neuron contract (ssjax.neurons.base.Neuron), "
                f"got {type(self.neuron).__name__}"
            )

    def structure(self) -> Network:
        """This network with its neurons' traced parameters canonical (``neuron.structure()``):
        equal for networks that differ only in them, so they share one program."""
        return dataclasses.replace(self, neuron=self.neuron.structure())

    @property
    def n_layers(self) -> int:
        """Number of neuron layers (weight matrices)."""
        return len(self.sizes) - 1


class NetState(NamedTuple):
    """Carried network state: per layer the neurons' state and the presynaptic spikes in flight.

    ``delay[l]`` is ``[d, *B, N_l]``: the last ``d`` input spike vectors of layer ``l + 1`` not
    yet delivered (``d = 0`` gives an empty leading axis).
    """

    layers: tuple
    delay: tuple


class Record(NamedTuple):
    """What a simulation records, per layer ``l``: ``spikes[l]`` and ``u[l]``, ``[T, *B, N]``.

    ``u`` is the membrane potential the spike decision saw (before reset), where SuperSpike
    evaluates ``sigma'(U)``.
    """

    spikes: tuple
    u: tuple


def init_weights(net: Network, key: Array, dtype=jnp.float32) -> Weights:
    """Reference-code initialisation ``w ~ N(0, (w0/sqrt(N_pre))^2)``, clipped to the bounds."""
    keys = jax.random.split(key, net.n_layers)
    out = []
    for k, n_pre, n_post in zip(keys, net.sizes[:-1], net.sizes[1:], strict=True):
        w = jax.random.normal(k, (n_pre, n_post), dtype) * (net.w0 / math.sqrt(n_pre))
        out.append(jnp.clip(w, net.w_min, net.w_max))
    return tuple(out)


def init_state(net: Network, batch_shape=(), dtype=jnp.float32) -> NetState:
    """Resting network state for a batch of shape ``batch_shape``."""
    batch_shape = tuple(batch_shape)
    d = net.neuron.delay_steps
    layers = tuple(net.neuron.init(batch_shape + (n,), dtype) for n in net.sizes[1:])
    delay = tuple(jnp.zeros((d, *batch_shape, n), dtype) for n in net.sizes[:-1])
    return NetState(layers, delay)


def delay_line(buffer: Array, s: Array) -> tuple[Array, Array]:
    """Delay ``s`` (``[T, ...]``) by ``d = buffer.shape[0]`` steps; returns ``(delayed, buffer)``.

    ``buffer`` holds the ``d`` steps before ``s``; the new buffer holds the last ``d`` of ``s``.
    """
    d = buffer.shape[0]
    if d == 0:
        return s, buffer
    full = jnp.concatenate([buffer, s.astype(buffer.dtype)], axis=0)
    return full[: s.shape[0]], full[s.shape[0] :]


def layer_scan(
    params: Neuron, state, x: Array, *, overwrite: bool = False, beta: Beta = None
) -> tuple:
    """Run one layer over precomputed inputs ``x`` ``[T, *B, N]``; returns ``(state, s, u)``.

    ``overwrite``: the potentials overwrite ``x`` row by row (:func:`ssjax._scan.overwrite_scan`)
    and the spikes are recomputed from them afterwards, ``s = params.spike(u)`` exactly as the
    neuron's ``step`` decides them, so the results are bit-identical; faster on
    CPU, for code that is not differentiated (SuperSpike's blocked routes). ``beta``: the
    surrogate's steepness as a value (:mod:`ssjax.neurons.base`).
    """
    if overwrite:

        def step_u(st, xt):
            st, _, u = params.step(st, xt, beta)
            return st, u

        state, u = overwrite_scan(step_u, state, x)
        return state, params.spike(u, beta), u

    def step(st, xt):
        st, s, u = params.step(st, xt, beta)
        return st, (s, u)

    state, (s, u) = jax.lax.scan(step, state, x)
    return state, s, u


def input_currents(s_pre: Array, w: Array) -> Array:
    """Synaptic input ``s_pre @ W`` for all steps at once: ``[T, *B, N_pre] -> [T, *B, N_post]``."""
    return matmul(s_pre.astype(w.dtype), w)


def matmul(x: Array, w: Array) -> Array:
    """``x @ w`` (``[..., M] @ [M, N]``) at full float precision.

    With at most 8 contracted entries (``M``) it is written as ``M`` multiply-adds, summed in a
    fixed order (entries ``1 .. M-1``, then ``0``): a few hidden neurons of many vmapped seeds
    make a batched product that XLA:CPU transposes to seed-major and back, 10x slower than one
    elementwise pass (measured).
    """
    if x.shape[-1] <= 8:
        return sum(x[..., j : j + 1] * w[j] for j in range(1, x.shape[-1])) + x[..., :1] * w[0]
    return jnp.matmul(x, w, precision=_HIGHEST)


def simulate(
    net: Network,
    weights: Weights,
    inputs: Array,
    state: NetState | None = None,
    layer_currents=(),
    *,
    overwrite: bool = False,
    beta: Beta = None,
) -> tuple[NetState, Record]:
    """Simulate layer by layer (one matrix product per layer for all steps).

    Args:
      net: static network description.
      weights: tuple of ``[N_l, N_{l+1}]`` arrays (V).
      inputs: ``[T, *B, N_0]`` input spikes (0/1 per step, dt = ``net.neuron.dt``).
      state: carried ``NetState`` (resting state if None).
      layer_currents: ``(s, w) -> s @ w`` per layer, for the first ``len(layer_currents)``
        layers (the dense product for the others; SuperSpike passes event-driven ones).
      overwrite: each layer's potentials overwrite its input currents in place
        (:func:`layer_scan`); bit-identical, for code that is not differentiated.
      beta: the surrogate's steepness (1/V) as a value, e.g. traced; the neuron's if None.

    Returns:
      ``(final_state, Record)`` with per-layer spikes and membrane potentials ``[T, *B, N_l]``.
    """
    _check_inputs(net, weights, inputs)
    if state is None:
        state = init_state(net, inputs.shape[1:-1], weights[0].dtype)
    s = inputs
    layers, delays, spikes, us = [], [], [], []
    for l, (w, st, buf) in enumerate(zip(weights, state.layers, state.delay, strict=True)):
        s_in, buf = delay_line(buf, s)
        cur = (layer_currents[l] if l < len(layer_currents) else input_currents)(s_in, w)
        st, s, u = layer_scan(net.neuron, st, cur, overwrite=overwrite, beta=beta)
        layers.append(st)
        delays.append(buf)
        spikes.append(s)
        us.append(u)
    return NetState(tuple(layers), tuple(delays)), Record(tuple(spikes), tuple(us))


def network_step(
    net: Network, weights: Weights, state: NetState, s: Array, beta: Beta = None
) -> tuple[NetState, tuple, tuple, tuple]:
    """Advance every layer by one step given input spikes ``s`` ``[*B, N_0]`` (``beta`` as for
    :func:`simulate`).

    Returns ``(state, spikes, u, arriving)``, each a tuple over layers: the layer's spikes and
    membrane potentials ``[*B, N_l]``, and the (delayed) presynaptic spikes its synapses received
    this step ``[*B, N_{l-1}]``.
    """
    layers, delays, spikes, us, arriving = [], [], [], [], []
    for w, st, buf in zip(weights, state.layers, state.delay, strict=True):
        if buf.shape[0]:
            s_in, buf = buf[0], jnp.concatenate([buf[1:], s[None].astype(buf.dtype)])
        else:
            s_in = s
        st, s, u = net.neuron.step(st, input_currents(s_in, w), beta)
        layers.append(st)
        delays.append(buf)
        spikes.append(s)
        us.append(u)
        arriving.append(s_in)
    return NetState(tuple(layers), tuple(delays)), tuple(spikes), tuple(us), tuple(arriving)


def simulate_stepwise(
    net: Network,
    weights: Weights,
    inputs: Array,
    state: NetState | None = None,
    *,
    beta: Beta = None,
) -> tuple[NetState, Record]:
    """Reference route: one ``lax.scan`` over time advancing all layers each step.

    Same arguments and results as :func:`simulate`.
    """
    _check_inputs(net, weights, inputs)
    if state is None:
        state = init_state(net, inputs.shape[1:-1], weights[0].dtype)

    def step(carry, s):
        carry, spikes, us, _ = network_step(net, weights, carry, s, beta)
        return carry, Record(spikes, us)

    return jax.lax.scan(step, state, inputs)


def arriving_spikes(net: Network, state: NetState, inputs: Array, record: Record) -> tuple:
    """Presynaptic spikes as the synapses of each layer received them (after the delay).

    ``state`` is the network state *before* the block that produced ``record``; returns a tuple
    of ``[T, *B, N_{l-1}]`` per layer (the same values :func:`network_step` reports).
    """
    pre = (inputs,) + tuple(record.spikes[:-1])
    return tuple(delay_line(buf, s)[0] for buf, s in zip(state.delay, pre, strict=True))


def _check_inputs(net: Network, weights: Weights, inputs: Array) -> None:
    if len(weights) != net.n_layers:
        raise ValueError(f"expected {net.n_layers} weight matrices, got {len(weights)}")
    for l, (w, n_pre, n_post) in enumerate(
        zip(weights, net.sizes[:-1], net.sizes[1:], strict=True)
    ):
        if tuple(w.shape) != (n_pre, n_post):
            raise ValueError(f"weights[{l}] has shape {tuple(w.shape)}, expected {(n_pre, n_post)}")
    if inputs.ndim < 2 or inputs.shape[-1] != net.sizes[0]:
        raise ValueError(
            f"inputs must be [T, *B, {net.sizes[0]}] (time-major), got shape {tuple(inputs.shape)}"
        )
