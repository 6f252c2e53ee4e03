"""SuperSpike's output error signals for classifying labelled trials into ``C`` classes.

SuperSpike (SUPERSPIKE.md section 2) learns from the unfiltered output error ``delta``
``[T, B, C]`` (one output neuron per class), which the rule filters with ``alpha`` into
``e = alpha * delta`` and multiplies with ``sigma'(U)`` and the eligibility traces. Two ways to
turn a label ``y`` into that error, each a generalisation of what the paper does:

(a) **Target train per class**: the correct class's output neuron has a target spike train
    ``S^`` (spikes at the given steps), the others have none; ``delta = S^ - S``: the van Rossum
    error of SuperSpike's regression tasks (:func:`class_targets`, :func:`class_target_error`).

(b) **Window of opportunity**, the spiking XOR's error (SUPERSPIKE.md section 3) for ``C``
    classes: in the window ``[start, stop)`` each spike of a wrong output is an immediate
    error ``-1``; if the correct output has not fired in the window by its last step, an error
    ``+1`` at ``stop - 1``; extra spikes of the correct output cost nothing; no error outside the
    window (:func:`class_window_error`). With ``C = 2`` and one window per trial this is the
    error :func:`ssjax.losses.window_error` computes on the XOR task's code (tested on the XOR
    stream cut into trials).

Intended use with the rule as it is: pass ``class_targets(...)`` as a block's targets with
``rule.error: spikes`` (the rule forms ``S^ - S`` itself), or ``class_window_code(...)``, the
window annotation of :func:`ssjax.losses.window_error` (``+1``/``-1`` in the window for the
correct/wrong outputs, ``+2``/``-2`` at its last step), with ``rule.error: window``;
:func:`class_target_error` and :func:`class_window_error` are the errors the rule then forms,
in closed form (no scan), for a trainer that builds ``delta`` itself.

Shapes: ``spikes`` ``[T, B, C]`` (time-major), ``labels`` ``[B]`` int in ``[0, C)``; ``start``,
``stop`` steps (ints, or ``[B]`` arrays for per-example windows). Units: steps (``dt`` each).

Reference: Zenke & Ganguli (2018), Neural Computation 30(6), section "Spiking XOR" and eq. (1).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp

from ssjax._types import Array

__all__ = [
    "class_target_error",
    "class_targets",
    "class_window_code",
    "class_window_error",
]


def _onehot(labels: Array, n_classes: int, dtype) -> Array:
    return (jnp.arange(n_classes) == jnp.asarray(labels)[..., None]).astype(dtype)


def class_targets(
    labels: Array, n_classes: int, n_steps: int, spike_steps: Sequence[int] | Array, dtype=None
) -> Array:
    """Target trains ``S^`` ``[T, B, C]``: spikes at ``spike_steps`` for class ``y``, none else.

    ``S^[t, b, c] = [c == y_b] * #{k : spike_steps[k] == t}`` (steps outside ``[0, T)``
    ignored). ``dtype``: float32 if None.
    """
    dtype = jnp.float32 if dtype is None else dtype
    steps = jnp.asarray(spike_steps, jnp.int32).reshape(-1)
    train = jnp.sum(jnp.arange(n_steps)[:, None] == steps[None, :], axis=1).astype(dtype)
    return train[:, None, None] * _onehot(labels, n_classes, dtype)[None]


def class_target_error(spikes: Array, labels: Array, spike_steps: Sequence[int] | Array) -> Array:
    """``delta = S^ - S`` ``[T, B, C]`` with ``S^ = class_targets(labels, C, T, spike_steps)``."""
    s = jnp.asarray(spikes)
    target = class_targets(labels, s.shape[-1], s.shape[0], spike_steps, s.dtype)
    return target - s


def _window(n_steps: int, start, stop) -> tuple[Array, Array]:
    """``(inside, last)`` ``[T, B]`` or ``[T, 1]`` masks of the window ``[start, stop)``."""
    t = jnp.arange(n_steps)[:, None]
    start = jnp.reshape(jnp.asarray(start), (1, -1))
    stop = jnp.reshape(jnp.asarray(stop), (1, -1))
    return (t >= start) & (t < stop), t == stop - 1


def class_window_code(
    labels: Array, n_classes: int, n_steps: int, start, stop, dtype=jnp.int8
) -> Array:
    """The window annotation ``[T, B, C]`` of :func:`ssjax.losses.window_error` for one window
    ``[start, stop)`` per trial: ``+1`` for the correct output and ``-1`` for the others inside
    it, ``+2``/``-2`` at its last step ``stop - 1``, 0 outside (``stop > start`` required)."""
    inside, last = _window(n_steps, start, stop)
    sign = 2 * _onehot(labels, n_classes, jnp.int32) - 1  # [B, C]: +1 correct, -1 wrong
    mag = inside.astype(jnp.int32) + (inside & last).astype(jnp.int32)  # [T, B]: 0, 1, 2
    return (mag[..., None] * sign[None]).astype(dtype)


def class_window_error(spikes: Array, labels: Array, start, stop) -> Array:
    """Window-of-opportunity error ``delta`` ``[T, B, C]`` for ``C`` classes (before ``alpha``).

    With ``W = [start, stop)`` and ``y`` the label::

        delta[t, b, c] = -s[t, b, c]                       if t in W and c != y
        delta[t, b, y] = 1 if t == stop - 1 and sum_{t' in W} s[t', b, y] == 0
        delta = 0                                          otherwise

    ``spikes`` ``[T, B, C]`` counts per step; ``start``, ``stop`` steps (scalars or ``[B]``).
    Float result in the spikes' dtype (float32 for integer spikes).
    """
    s = jnp.asarray(spikes)
    dtype = s.dtype if jnp.issubdtype(s.dtype, jnp.floating) else jnp.float32
    s = s.astype(dtype)
    inside, last = _window(s.shape[0], start, stop)
    correct = _onehot(labels, s.shape[-1], dtype)  # [B, C]
    wrong = -s * (1 - correct) * inside[..., None]
    fired = jnp.sum(s * inside[..., None], axis=0) > 0  # [B, C]
    missed = correct * (1 - fired.astype(dtype))
    return (wrong + (inside & last)[..., None] * missed[None]).astype(dtype)
