"""Gradient versus local rule: how well SuperSpike's updates align with BPTT's, layer by layer.

All rules see the same network state, weights and block (one sample, ``inputs`` ``[K, N_in]``,
``targets`` ``[K, N_out]``) and return updates shaped like the weights, in the optax descent
sign (``w <- w - r g``). Rules (:data:`RULES`):

- ``superspike:<feedback>``: :func:`ssjax.rules.superspike.superspike_grads` with the hidden
  feedback ``symmetric``, ``random``, ``uniform`` or ``none``, multiplied by ``t_b = K dt``;
- ``bptt``: :func:`ssjax.rules.bptt.bptt_grad` with the reset not differentiated
  (``reset_grad=False``, SuperSpike's own assumption);
- ``bptt:reset``: the same with the reset differentiated (``reset_grad=True``).

SuperSpike's block update is ``-g = grad_W L / t_b`` for the output layer (``superspike.py``,
"Output layer = gradient"), so scaled by ``t_b`` it equals the BPTT output gradient exactly when
the block starts with zero rule traces (the default ``rule_state``), no Hebbian delay and no
regulariser. Hidden layers differ: SuperSpike's error skips the output neurons' ``sigma'`` and PSP
filtering, and random/uniform feedback replaces ``W^T`` (feedback alignment).

Per layer ``l``, for updates ``a_l`` and ``b_l`` (:func:`alignment`):

    cosine         = <a_l, b_l> / (|a_l| |b_l|)      0 if either norm is 0
    norm_ratio     = |a_l| / |b_l|                   inf if only |b_l| = 0; 1 if both are 0
    sign_agreement = #{sign a = sign b} / #{a != 0 and b != 0}      0 if no entry is compared

so a zero update (``superspike:none``'s hidden layer) has cosine 0 and sign agreement 0 against
anything: it carries no direction. Nothing is ever NaN.

The library half of ``ssjax compare``: the table and the plot are
:func:`ssjax.plots.format_table` and :func:`ssjax.plots.plot_alignment`; the command (timing
task, weight draws) is in :mod:`ssjax.experiment.cli`.

Reference: Zenke & Ganguli (2018), Neural Computation 30(6); Lillicrap et al. (2016), Nat.
Commun. 7:13276 (alignment of feedback-alignment updates with backprop).
"""

from __future__ import annotations

import functools
import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ssjax.network import Network
from ssjax.rules.bptt import bptt_grad, with_reset_grad
from ssjax.rules.feedback import FEEDBACKS, init_feedback
from ssjax.rules.superspike import SuperSpikeConfig, init_rule_state, superspike_grads

Array = jax.Array

RULES = tuple(f"superspike:{fb}" for fb in FEEDBACKS) + ("bptt", "bptt:reset")


class Alignment(NamedTuple):
    """Per-layer comparison of two updates; each field is ``[n_layers]``."""

    cosine: Array
    norm_ratio: Array
    sign_agreement: Array


def check_rule(rule: str) -> None:
    """Raise ValueError naming ``rule`` and listing :data:`RULES` if it is not one of them."""
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; choose from {', '.join(RULES)}")


def _layer_alignment(a: Array, b: Array) -> tuple[Array, Array, Array]:
    # dividing by the largest entry first keeps float32 norms of tiny gradients from underflowing
    ma, mb = jnp.max(jnp.abs(a)), jnp.max(jnp.abs(b))
    a_n = a / jnp.where(ma > 0, ma, 1.0)
    b_n = b / jnp.where(mb > 0, mb, 1.0)
    na, nb = jnp.sqrt(jnp.sum(a_n * a_n)), jnp.sqrt(jnp.sum(b_n * b_n))
    both = (ma > 0) & (mb > 0)
    cos = jnp.where(both, jnp.sum(a_n * b_n) / jnp.where(both, na * nb, 1.0), 0.0)
    norm_a, norm_b = ma * na, mb * nb
    ratio = jnp.where(
        mb > 0, norm_a / jnp.where(mb > 0, norm_b, 1.0), jnp.where(ma > 0, jnp.inf, 1.0)
    )
    compared = (a != 0) & (b != 0)
    n = jnp.sum(compared)
    agree = jnp.sum(compared & (jnp.sign(a) == jnp.sign(b)))
    sign = jnp.where(n > 0, agree / jnp.maximum(n, 1), 0.0)
    return jnp.clip(cos, -1.0, 1.0), ratio, sign.astype(cos.dtype)


@jax.jit
def alignment(a: tuple, b: tuple) -> Alignment:
    """Cosine, norm ratio ``|a|/|b|`` and sign agreement of two updates, per layer.

    ``a``, ``b``: tuples of arrays with matching shapes (e.g. per-layer ``[N_pre, N_post]``).
    Conventions for zero norms are in the module docstring; the result is never NaN.
    """
    if len(a) != len(b):
        raise ValueError(f"a and b must have the same number of layers, got {len(a)}, {len(b)}")
    for l, (x, y) in enumerate(zip(a, b, strict=True)):
        if x.shape != y.shape:  # broadcasting would silently compare the wrong entries
            raise ValueError(f"layer {l}: shapes {tuple(x.shape)} and {tuple(y.shape)} differ")
    per = [_layer_alignment(x, y) for x, y in zip(a, b, strict=True)]
    return Alignment(*(jnp.stack(col) for col in zip(*per, strict=True)))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _superspike_bptt_units(net, cfg, weights, inputs, targets, state):
    grads, _, _ = superspike_grads(net, cfg, weights, inputs, targets, state)
    t_b = inputs.shape[0] * net.neuron.dt
    return tuple(g * t_b for g in grads)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _bptt(net, tau_rise, tau_decay, weights, inputs, targets, state, err_state):
    grads, _ = bptt_grad(
        net, weights, inputs, targets, state, err_state, tau_rise=tau_rise, tau_decay=tau_decay
    )
    return grads


def rule_grads(
    rule: str, net: Network, weights, inputs, targets, *, key, rule_state=None, cfg_kwargs=None
) -> tuple:
    """Update of one block by ``rule`` (one of :data:`RULES`), in BPTT units and optax sign.

    Args:
      net: static network; weights: per-layer ``[N_pre, N_post]`` (V).
      inputs: ``[K, N_in]``; targets: ``[K, N_out]`` (one sample, time-major).
      key: draws the ``random`` feedback matrices (:func:`init_feedback`).
      rule_state: :class:`~ssjax.rules.superspike.SuperSpikeState` carried in (its feedback
        matrices are replaced by those drawn from ``key``); defaults to
        :func:`init_rule_state` (zero traces, resting network). Its ``.net`` and ``.err`` are
        BPTT's network and error-filter states.
      cfg_kwargs: further :class:`SuperSpikeConfig` fields; its ``tau_rise``/``tau_decay`` are
        also BPTT's error filter, so both rules minimise the same loss.

    Returns:
      tuple like ``weights``: ``grad_W L`` for BPTT, ``t_b x`` the SuperSpike update otherwise.
    """
    check_rule(rule)
    if inputs.ndim != 2 or targets.ndim != 2:
        raise ValueError(
            "inputs and targets must be one sample [K, N], got shapes "
            f"{tuple(inputs.shape)} and {tuple(targets.shape)}"
        )
    kind, _, variant = rule.partition(":")
    cfg_kwargs = dict(cfg_kwargs or {})
    if kind == "superspike":
        cfg = SuperSpikeConfig(feedback=variant, **cfg_kwargs)
    else:
        cfg = SuperSpikeConfig(**cfg_kwargs)
    if rule_state is None:
        rule_state = init_rule_state(net, cfg, weights[0].dtype)
    weights = tuple(weights)
    if kind == "superspike":
        feedback = init_feedback(key, net, variant, weights[0].dtype)
        state = rule_state._replace(feedback=feedback)
        return _superspike_bptt_units(net, cfg, weights, inputs, targets, state)
    bnet = with_reset_grad(net, variant == "reset")
    grads = _bptt(
        bnet, cfg.tau_rise, cfg.tau_decay, weights, inputs, targets, rule_state.net, rule_state.err
    )
    return tuple(grads)


def compare_rules(
    rules, net: Network, weights, inputs, targets, *, key, rule_state=None, cfg_kwargs=None
) -> dict[tuple[str, str], Alignment]:
    """:func:`alignment` of every pair ``(a, b)``, ``a`` listed before ``b`` in ``rules``.

    Every rule gets the same ``net``, ``weights``, block, ``key`` and ``rule_state`` (see
    :func:`rule_grads`); ``n`` distinct rules give ``n (n - 1) / 2`` pairs.
    """
    rules = tuple(rules)
    for r in rules:
        check_rule(r)
    if len(set(rules)) != len(rules) or len(rules) < 2:
        raise ValueError(f"rules must be at least two distinct names, got {rules}")
    grads = {
        r: rule_grads(
            r, net, weights, inputs, targets, key=key, rule_state=rule_state, cfg_kwargs=cfg_kwargs
        )
        for r in rules
    }
    return {(a, b): alignment(grads[a], grads[b]) for a, b in itertools.combinations(rules, 2)}
