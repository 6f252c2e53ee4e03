"""Surrogate-gradient backpropagation through time of the van Rossum loss.

``jax.grad`` of ``L = 1/2 sum_i integral (alpha * (S^_i - S_i))^2`` through the scanned network
of :mod:`ssjax.network`, with the spike's custom-VJP surrogate (:mod:`ssjax.spike`). Whether the
reset (and refractory clamp) carry gradient is ``net.neuron.reset_grad``; see
:func:`with_reset_grad`. With ``reset_grad=False`` the gradient of an output weight is exactly
minus the SuperSpike output-layer update (``dU/dw`` is then the PSP trace).

The error filter's state can be carried in from an earlier block: it enters as a constant
(spikes of earlier blocks are not differentiated), which is how a block-wise online BPTT
truncates the past.

Reference: Zenke & Ganguli (2018); Neftci, Mostafa & Zenke (2019), IEEE Signal Process. Mag.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ssjax.filters import DoubleExpState
from ssjax.losses import TAU_DECAY, TAU_RISE, filtered_error, van_rossum_loss
from ssjax.network import NetState, Network, Record, Weights, simulate

Array = jax.Array


class BPTTAux(NamedTuple):
    """Side results of a BPTT evaluation: final network and error-filter states, the record,
    the filtered error ``e`` ``[T, *B, N_out]`` and the per-example loss ``[*B]``."""

    state: NetState
    err_state: DoubleExpState
    record: Record
    error: Array
    loss: Array


def with_reset_grad(net: Network, reset_grad: bool) -> Network:
    """A copy of ``net`` whose neurons do (True) or do not (False) differentiate the reset."""
    return dataclasses.replace(net, neuron=dataclasses.replace(net.neuron, reset_grad=reset_grad))


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
) -> tuple[Array, BPTTAux]:
    """Batch-mean van Rossum loss of one block and its side results.

    Args:
      weights: per-layer ``[N_l, N_{l+1}]`` weights (V), the differentiated argument.
      inputs: ``[T, *B, N_in]`` input spikes; targets: ``[T, *B, N_out]`` target spikes.
      state, err_state: network and error-filter states carried in (rest / zeros if None).

    Returns:
      ``(mean over *B of L, BPTTAux)``; ``L`` per example is ``1/2 sum_{t,i} e^2 dt`` (1/s).
    """
    if targets.shape[:-1] != inputs.shape[:-1] or targets.shape[-1] != net.sizes[-1]:
        raise ValueError(
            f"targets must be [T, *B, {net.sizes[-1]}] matching inputs {tuple(inputs.shape)}, "
            f"got {tuple(targets.shape)}"
        )
    state, rec = simulate(net, weights, inputs, state)
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
