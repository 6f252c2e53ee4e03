"""Surrogate-gradient backpropagation through time of the van Rossum loss.

``jax.grad`` of ``L = 1/2 sum_i integral (alpha * (S^_i - S_i))^2`` through the scanned network
of :mod:`ssjax.network`, with the spike's custom-VJP surrogate (:mod:`ssjax.spike`). It uses the
network's neurons only through the neuron contract (:class:`ssjax.neurons.base.Neuron`), so it
differentiates any neuron model. For LIF, whether the reset (and refractory clamp) carry
gradient is ``net.neuron.reset_grad``; see :func:`with_reset_grad`. With ``reset_grad=False``
the gradient of an output weight is exactly minus the SuperSpike output-layer update (``dU/dw``
is then the PSP trace).

The surrogate's steepness ``beta`` is a value (:class:`BPTTHyper`, traced by the trainer), so
runs that differ only in it share one program.

The error filter's state can be carried in from an earlier block: it enters as a constant
(spikes of earlier blocks are not differentiated), which is how a block-wise online BPTT
truncates the past.

As a learning rule (:func:`bptt`, the contract of :mod:`ssjax.rules.base`), each block is one
such truncated evaluation: the state carried across blocks is the network's and the error
filter's (:class:`BPTTState`), and the loss is the rule's own :class:`BPTTConfig` filter.

Reference: Zenke & Ganguli (2018); Neftci, Mostafa & Zenke (2019), IEEE Signal Process. Mag.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from ssjax._types import Array, PRNGKey, Weights
from ssjax.filters import DoubleExpState, double_exp_init
from ssjax.losses import TAU_DECAY, TAU_RISE, VanRossum, filtered_error, van_rossum_loss
from ssjax.network import NetState, Network, Record, init_state, simulate
from ssjax.neurons.base import Beta
from ssjax.params import borrow, check_fields
from ssjax.rules.base import Block, LearningRule, RuleOutput


@dataclasses.dataclass(frozen=True)
class BPTTConfig:
    """Static settings of BPTT as a learning rule (hashable).

    tau_rise, tau_decay: the van Rossum loss's filter (s); 5 ms and 10 ms in the paper.
    error: ``van_rossum`` only: the window error is not differentiable.
    """

    SCOPE: ClassVar[str] = "rule"

    tau_rise: float = borrow(VanRossum, "tau_rise")
    tau_decay: float = borrow(VanRossum, "tau_decay")
    error: str = "van_rossum"

    def __post_init__(self):
        check_fields(self)
        if self.error != "van_rossum":
            raise ValueError(
                "BPTT needs the van Rossum error (error='van_rossum'); the window error is not "
                f"differentiable, got {self.error!r}"
            )

    @property
    def loss(self) -> VanRossum:
        """The loss's filter (one owner of its constants)."""
        return VanRossum(self.tau_rise, self.tau_decay)

    def hyper(self, net: Network) -> BPTTHyper:
        """The traced hyper-parameters, derived on the host: the network's surrogate steepness."""
        return BPTTHyper(beta=net.neuron.surrogate.beta)

    def structure(self) -> BPTTConfig:
        """This config (it has no traced fields; ``beta`` lives in the network's neuron)."""
        return self


class BPTTHyper(NamedTuple):
    """Traced hyper-parameters of BPTT: ``beta``, the surrogate's steepness (1/V) in the spike's
    VJP (:mod:`ssjax.spike`). A float or a scalar array."""

    beta: Array | float


class BPTTState(NamedTuple):
    """What BPTT carries across blocks: the network state and the error filter ``[N_out]``."""

    net: NetState
    err: DoubleExpState


class BPTTAux(NamedTuple):
    """Side results of a BPTT evaluation: final network and error-filter states, the record,
    the filtered error ``e`` ``[T, *B, N_out]`` and the per-example loss ``[*B]``."""

    state: NetState
    err_state: DoubleExpState
    record: Record
    error: Array
    loss: Array


def with_reset_grad(net: Network, reset_grad: bool) -> Network:
    """A copy of ``net`` whose neurons do (True) or do not (False) differentiate the reset.

    For neuron models that have the choice: a dataclass with a ``reset_grad`` field (LIF).
    """
    neuron = net.neuron
    if not (dataclasses.is_dataclass(neuron) and hasattr(neuron, "reset_grad")):
        raise TypeError(f"{type(neuron).__name__} has no reset_grad setting")
    return dataclasses.replace(net, neuron=dataclasses.replace(neuron, reset_grad=reset_grad))


def bptt_loss(
    weights: Weights,
    net: Network,
    inputs: Array,
    targets: Array,
    state: NetState | None = None,
    err_state: DoubleExpState | None = None,
    *,
    tau_rise: float = TAU_RISE,
    tau_decay: float = TAU_DECAY,
    beta: Beta = None,
) -> tuple[Array, BPTTAux]:
    """Batch-mean van Rossum loss of one block and its side results.

    Args:
      weights: per-layer ``[N_l, N_{l+1}]`` weights (V), the differentiated argument.
      inputs: ``[T, *B, N_in]`` input spikes; targets: ``[T, *B, N_out]`` target spikes.
      state, err_state: network and error-filter states carried in (rest / zeros if None).
      beta: the surrogate's steepness (1/V) as a value, e.g. traced; the neuron's if None.

    Returns:
      ``(mean over *B of L, BPTTAux)``; ``L`` per example is ``1/2 sum_{t,i} e^2 dt`` (1/s).
    """
    if targets.shape[:-1] != inputs.shape[:-1] or targets.shape[-1] != net.sizes[-1]:
        raise ValueError(
            f"targets must be [T, *B, {net.sizes[-1]}] matching inputs {tuple(inputs.shape)}, "
            f"got {tuple(targets.shape)}"
        )
    state, rec = simulate(net, weights, inputs, state, beta=beta)
    if err_state is not None:
        err_state = jax.tree.map(jax.lax.stop_gradient, err_state)
    e, err_state = filtered_error(
        targets,
        rec.spikes[-1],
        net.neuron.dt,
        tau_rise=tau_rise,
        tau_decay=tau_decay,
        state=err_state,
    )
    loss = van_rossum_loss(e, net.neuron.dt)
    return jnp.mean(loss), BPTTAux(state, err_state, rec, e, loss)


def bptt_grad(
    net: Network,
    weights: Weights,
    inputs: Array,
    targets: Array,
    state: NetState | None = None,
    err_state: DoubleExpState | None = None,
    **kwargs,
) -> tuple[Weights, BPTTAux]:
    """Gradient of :func:`bptt_loss` w.r.t. ``weights`` (same structure), with its side results.

    The descent direction in the optax sense (``w <- w - r * grad``).
    """
    grad_fn = jax.grad(bptt_loss, has_aux=True)
    return grad_fn(weights, net, inputs, targets, state, err_state, **kwargs)


def bptt(
    net: Network,
    cfg: BPTTConfig,
    *,
    hyper: BPTTHyper | None = None,
    shared_inputs: bool = False,
) -> LearningRule:
    """Block-wise BPTT as a :class:`ssjax.rules.base.LearningRule` (state :class:`BPTTState`).

    ``update`` is :func:`bptt_grad` of the block with the carried state as a constant, on the
    loss of ``cfg.loss``. ``hyper``: traced hyper-parameters (``cfg.hyper(net)`` if None).
    ``shared_inputs`` is accepted for the common factory signature and changes nothing.
    """
    del shared_inputs
    hyper = cfg.hyper(net) if hyper is None else hyper
    loss = cfg.loss

    def init(weights: Weights, key: PRNGKey) -> BPTTState:
        del key
        dtype = weights[0].dtype
        return BPTTState(init_state(net, (), dtype), double_exp_init((net.sizes[-1],), dtype))

    def update(weights: Weights, state: BPTTState, block: Block) -> RuleOutput:
        grads, aux = bptt_grad(
            net,
            weights,
            block.inputs,
            block.targets,
            state.net,
            state.err,
            tau_rise=loss.tau_rise,
            tau_decay=loss.tau_decay,
            beta=hyper.beta,
        )
        return RuleOutput(grads, BPTTState(aux.state, aux.err_state), aux.record, aux.error)

    return LearningRule(init, update, _network_state, input_leaves, loss)


def _network_state(state: BPTTState) -> NetState:
    return state.net


def input_leaves(state: BPTTState):
    """True for the input layer's axonal delay line, which holds the input stream alone."""
    flags = jax.tree.map(lambda _: False, state)
    return flags._replace(net=flags.net._replace(delay=(True,) + tuple(flags.net.delay[1:])))
