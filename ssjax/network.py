"""Layered networks of spiking neurons, with optional recurrence, simulated with ``lax.scan``.

A network of sizes ``(N_0, N_1, ..., N_L)`` has ``N_0`` input channels (spike trains given as
data) and ``L`` layers of one neuron model: any implementation of the neuron contract
(:class:`ssjax.neurons.base.Neuron`: ``init``, ``step``, ``spike``), LIF
(:class:`ssjax.neuron.LIFParams`) by default; nothing here depends on the model otherwise.
Weights are a tuple of arrays, layer ``l`` having ``W[l]`` of shape ``[N_l, N_{l+1}]`` (pre,
post) and units of volts, so that the input of layer ``l + 1`` at step ``t`` is
``x[t] = s_l[t - d] @ W[l]`` with ``d`` the neuron's axonal delay in steps.

Recurrence (``network.recurrent``, one flag per hidden layer): a hidden layer ``l`` marked
recurrent also receives its own spikes through ``R[l]`` (``[N_l, N_l]``, pre x post, V) after
``d_r = recurrent_delay / dt >= 1`` steps, ``x[t] = s_{l-1}[t - d] @ W[l-1] + s_l[t - d_r] @ R``.
The weights are then one flat tuple: the feed-forward matrices first, then the recurrent ones in
the order of their layers (:meth:`Network.weight_shapes`); without recurrence nothing changes.

Two equivalent routes:

- :func:`simulate` (default, fast): layer by layer. A feed-forward layer depends only on the
  layer below, so each layer's input currents for *all* steps are one matrix product
  ``[T * B, N_l] @ [N_l, N_{l+1}]``, followed by an elementwise scan of the neuron dynamics
  (a recurrent layer adds its own delayed spikes' current inside that scan).
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


def _dt(c) -> float:
    return c.neuron.dt


def _recurrent_delay_ok(v, c) -> bool:
    """``recurrent_delay``: read only with a recurrent layer; then >= dt and a multiple of it."""
    if not any(c.network.recurrent):
        return True
    q = v / _dt(c)
    return v > 0 and q >= 1 - 1e-6 and abs(q - round(q)) <= 1e-6


@dataclasses.dataclass(frozen=True)
class Network:
    """Static description of a layered spiking network (hashable; pass to jit as a static arg).

    Attributes:
      sizes: ``(N_in, N_hidden..., N_out)``.
      neuron: the neuron model shared by all layers (:class:`ssjax.neurons.base.Neuron`).
      w0: initial weight scale (V); ``std = w0 / sqrt(N_pre)`` (reference code: 0.05).
      w_min, w_max: weight bounds (V) used for clipping (paper: +-0.1 V).
      recurrent: one flag per hidden layer (or ``()``, none): a recurrent matrix ``R[l]``
        ``[N_l, N_l]`` (V), appended to the weights after the feed-forward ones.
      recurrent_delay: delay of the recurrent spikes (s), a multiple of ``dt``, >= one step (a
        spike cannot reach its own layer in the step it is emitted).
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
    recurrent: tuple[bool, ...] = param(
        (),
        Check(
            lambda v, c: len(v) in (0, len(c.network.sizes) - 2),
            lambda c: f"[] or one flag per hidden layer ({len(c.network.sizes) - 2})",
            ("network.sizes",),
        ),
        doc="per hidden layer: recurrent weights R [N_l, N_l]; [] for none",
    )
    recurrent_delay: float = param(
        1e-4,
        Check(
            _recurrent_delay_ok,
            lambda c: f"> 0 s and a multiple of neuron.dt = {_dt(c)} s",
            ("neuron.dt", "network.recurrent"),
        ),
        doc="delay of the recurrent spikes (s), >= one step (read with recurrence only)",
    )

    def __post_init__(self):
        if not isinstance(self.neuron, Neuron):
            raise TypeError(
                "Network.neuron must implement the neuron contract (ssjax.neurons.base.Neuron), "
                f"got {type(self.neuron).__name__}"
            )
        check_fields(self, neuron=self.neuron)

    def structure(self) -> Network:
        """This network with its neurons' traced parameters canonical (``neuron.structure()``):
        equal for networks that differ only in them, so they share one program."""
        return dataclasses.replace(self, neuron=self.neuron.structure())

    @property
    def n_layers(self) -> int:
        """Number of neuron layers (feed-forward weight matrices)."""
        return len(self.sizes) - 1

    @property
    def recurrent_layers(self) -> tuple[int, ...]:
        """Indices ``l`` (0 = first hidden layer) of the layers with recurrent weights."""
        return tuple(l for l, r in enumerate(self.recurrent) if r)

    @property
    def recurrent_steps(self) -> int:
        """Delay of the recurrent spikes in steps (>= 1)."""
        return int(round(self.recurrent_delay / self.neuron.dt))

    def weight_shapes(self) -> tuple[tuple[int, int], ...]:
        """``(N_pre, N_post)`` of every weight matrix: feed-forward, then recurrent."""
        ff = tuple(zip(self.sizes[:-1], self.sizes[1:], strict=True))
        return ff + tuple((self.sizes[l + 1], self.sizes[l + 1]) for l in self.recurrent_layers)

    def post_layers(self) -> tuple[int, ...]:
        """The layer each weight matrix of :meth:`weight_shapes` projects to."""
        return tuple(range(self.n_layers)) + self.recurrent_layers

    def recurrent_weights(self, weights: Weights) -> tuple:
        """Per layer, its recurrent matrix ``R`` of ``weights``, or None."""
        rec: list = [None] * self.n_layers
        for k, l in enumerate(self.recurrent_layers):
            rec[l] = weights[self.n_layers + k]
        return tuple(rec)


class NetState(NamedTuple):
    """Carried network state: per layer the neurons' state and the presynaptic spikes in flight.

    ``delay[l]`` is ``[d, *B, N_l]``: the last ``d`` input spike vectors of layer ``l + 1`` not
    yet delivered (``d = 0`` gives an empty leading axis). ``recurrent``: per recurrent layer
    (:attr:`Network.recurrent_layers`), its last ``d_r`` spike vectors ``[d_r, *B, N_l]``, oldest
    first; empty without recurrence.
    """

    layers: tuple
    delay: tuple
    recurrent: tuple = ()


class Record(NamedTuple):
    """What a simulation records, per layer ``l``: ``spikes[l]`` and ``u[l]``, ``[T, *B, N]``.

    ``u`` is the membrane potential the spike decision saw (before reset), where SuperSpike
    evaluates ``sigma'(U)``.
    """

    spikes: tuple
    u: tuple


def init_weights(net: Network, key: Array, dtype=jnp.float32) -> Weights:
    """Reference-code initialisation ``w ~ N(0, (w0/sqrt(N_pre))^2)``, clipped to the bounds;
    recurrent matrices the same with ``N_pre = N_l``."""
    keys = list(jax.random.split(key, net.n_layers))
    if net.recurrent_layers:  # other keys: the feed-forward draws stay those without recurrence
        keys += list(jax.random.split(jax.random.fold_in(key, 1), len(net.recurrent_layers)))
    out = []
    for k, (n_pre, n_post) in zip(keys, net.weight_shapes(), strict=True):
        w = jax.random.normal(k, (n_pre, n_post), dtype) * (net.w0 / math.sqrt(n_pre))
        out.append(jnp.clip(w, net.w_min, net.w_max))
    return tuple(out)


def init_state(net: Network, batch_shape=(), dtype=jnp.float32) -> NetState:
    """Resting network state for a batch of shape ``batch_shape``."""
    batch_shape = tuple(batch_shape)
    d = net.neuron.delay_steps
    layers = tuple(net.neuron.init(batch_shape + (n,), dtype) for n in net.sizes[1:])
    delay = tuple(jnp.zeros((d, *batch_shape, n), dtype) for n in net.sizes[:-1])
    d_r = net.recurrent_steps
    rec = tuple(
        jnp.zeros((d_r, *batch_shape, net.sizes[l + 1]), dtype) for l in net.recurrent_layers
    )
    return NetState(layers, delay, rec)


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
    rec_w, rec_bufs = net.recurrent_weights(weights), _recurrent_buffers(net, state)
    layers, delays, spikes, us, rec_out = [], [], [], [], []
    ff = weights[: net.n_layers]
    for l, (w, st, buf) in enumerate(zip(ff, state.layers, state.delay, strict=True)):
        s_in, buf = delay_line(buf, s)
        cur = (layer_currents[l] if l < len(layer_currents) else input_currents)(s_in, w)
        if rec_w[l] is None:
            st, s, u = layer_scan(net.neuron, st, cur, overwrite=overwrite, beta=beta)
        else:
            st, r_buf, s, u = recurrent_scan(net.neuron, st, rec_bufs[l], cur, rec_w[l], beta=beta)
            rec_out.append(r_buf)
        layers.append(st)
        delays.append(buf)
        spikes.append(s)
        us.append(u)
    state = NetState(tuple(layers), tuple(delays), tuple(rec_out))
    return state, Record(tuple(spikes), tuple(us))


def recurrent_scan(
    params: Neuron, state, buf: Array, x: Array, r: Array, *, beta: Beta = None
) -> tuple:
    """Run a recurrent layer over its feed-forward inputs ``x`` ``[T, *B, N]``.

    Each step adds the current of the layer's own spikes ``d_r`` steps ago,
    ``x[t] + s[t - d_r] @ R``; ``buf`` ``[d_r, *B, N]`` holds the last ``d_r`` spikes (oldest
    first). Returns ``(state, buf, s, u)``.
    """

    def step(carry, xt):
        st, b = carry
        st, s, u = params.step(st, xt + input_currents(b[0], r), beta)
        return (st, jnp.concatenate([b[1:], s[None].astype(b.dtype)])), (s, u)

    (state, buf), (s, u) = jax.lax.scan(step, (state, buf), x)
    return state, buf, s, u


def _recurrent_buffers(net: Network, state: NetState) -> tuple:
    """Per layer, its recurrent delay line of ``state``, or None."""
    bufs: list = [None] * net.n_layers
    for k, l in enumerate(net.recurrent_layers):
        bufs[l] = state.recurrent[k]
    return tuple(bufs)


def network_step(
    net: Network, weights: Weights, state: NetState, s: Array, beta: Beta = None
) -> tuple[NetState, tuple, tuple, tuple]:
    """Advance every layer by one step given input spikes ``s`` ``[*B, N_0]`` (``beta`` as for
    :func:`simulate`).

    Returns ``(state, spikes, u, arriving)``: per layer the spikes and membrane potentials
    ``[*B, N_l]``; per weight matrix (feed-forward, then recurrent: :meth:`Network.weight_shapes`)
    the (delayed) presynaptic spikes its synapses received this step ``[*B, N_pre]``.
    """
    rec_w, rec_bufs = net.recurrent_weights(weights), _recurrent_buffers(net, state)
    layers, delays, spikes, us, arriving, rec_arriving, rec_out = [], [], [], [], [], [], []
    ff = weights[: net.n_layers]
    for l, (w, st, buf) in enumerate(zip(ff, state.layers, state.delay, strict=True)):
        if buf.shape[0]:
            s_in, buf = buf[0], jnp.concatenate([buf[1:], s[None].astype(buf.dtype)])
        else:
            s_in = s
        x = input_currents(s_in, w)
        if rec_w[l] is not None:
            r_buf = rec_bufs[l]
            x = x + input_currents(r_buf[0], rec_w[l])
            rec_arriving.append(r_buf[0])
        st, s, u = net.neuron.step(st, x, beta)
        if rec_w[l] is not None:
            rec_out.append(jnp.concatenate([r_buf[1:], s[None].astype(r_buf.dtype)]))
        layers.append(st)
        delays.append(buf)
        spikes.append(s)
        us.append(u)
        arriving.append(s_in)
    state = NetState(tuple(layers), tuple(delays), tuple(rec_out))
    return state, tuple(spikes), tuple(us), tuple(arriving + rec_arriving)


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
    """Presynaptic spikes as the synapses of each weight matrix received them (after the delay).

    ``state`` is the network state *before* the block that produced ``record``; returns a tuple
    of ``[T, *B, N_pre]`` per weight matrix (the same values :func:`network_step` reports).
    """
    pre = (inputs,) + tuple(record.spikes[:-1])
    ff = tuple(delay_line(buf, s)[0] for buf, s in zip(state.delay, pre, strict=True))
    rec = tuple(
        delay_line(buf, record.spikes[l])[0]
        for buf, l in zip(state.recurrent, net.recurrent_layers, strict=True)
    )
    return ff + rec


def _check_inputs(net: Network, weights: Weights, inputs: Array) -> None:
    shapes = net.weight_shapes()
    if len(weights) != len(shapes):
        rec = f" ({net.n_layers} feed-forward, then recurrent)" if net.recurrent_layers else ""
        raise ValueError(f"expected {len(shapes)} weight matrices{rec}, got {len(weights)}")
    for l, (w, shape) in enumerate(zip(weights, shapes, strict=True)):
        if tuple(w.shape) != shape:
            raise ValueError(f"weights[{l}] has shape {tuple(w.shape)}, expected {shape}")
    if inputs.ndim < 2 or inputs.shape[-1] != net.sizes[0]:
        raise ValueError(
            f"inputs must be [T, *B, {net.sizes[0]}] (time-major), got shape {tuple(inputs.shape)}"
        )
