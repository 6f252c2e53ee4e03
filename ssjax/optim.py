"""Per-parameter learning-rate rules for SuperSpike, as optax gradient transformations.

Reference: Zenke & Ganguli (2018), "SuperSpike: Supervised learning in multilayer spiking neural
networks", Neural Computation 30(6), section on per-parameter learning rates ("RMaxProp"); reference
code fzenke/pub2018superspike. See also SUPERSPIKE.md section 2.3.

Sign convention: every transformation takes gradients in the optax (descent) sense,
``g = -g_superspike``, where ``g_superspike`` is the ascent direction of the paper, and returns
updates to *add* to the parameters (``optax.apply_updates``). Hence the paper's
``w += r0 g / (sqrt(v) + eps)`` becomes ``update = -lr * g / (sqrt(v) + eps)``; ``v`` depends only
on ``g**2`` and is unaffected by the sign flip.

Shapes: params, gradients, updates and ``v`` are pytrees of arrays of any shape; every rule acts
elementwise. Units: ``t_b`` (block length between weight updates) and ``tau_rms`` are in seconds;
schedules are indexed by the block count (number of updates seen so far).

All states are NamedTuples with a fixed structure, shapes and dtypes, so they can be carried through
``jax.lax.scan``, vmapped over a leading seed axis and checkpointed.

Float hyper-parameters (``r0``, the decay ``gamma``, ``eps``, drop factors) may be traced values:
range checks apply to concrete Python numbers only (configs are validated on load), so that a
``vmap`` over them, or one compiled program for many values, works.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ssjax.params import Check, check_fields, choice, ge, gt, param

__all__ = [
    "Optimizer",
    "BurnInState",
    "FixedRateState",
    "OPTIMIZERS",
    "RMSState",
    "burn_in",
    "clip_weights",
    "decay",
    "drop_schedule",
    "fixed_rate",
    "make_optimizer",
    "rmaxprop",
    "rmsprop",
]

OPTIMIZERS = ("rmaxprop", "rmsprop", "fixed")


class RMSState(NamedTuple):
    """State of `rmaxprop` / `rmsprop`: int32 update count and the per-weight statistic ``v``."""

    # (the ignores: a field named count shadows tuple.count, as in optax's own states)
    count: jax.Array  # type: ignore[assignment]  # int32 scalar: updates seen so far
    v: Any  # pytree like params: running (max-)mean of g**2


class FixedRateState(NamedTuple):
    """State of `fixed_rate`: int32 update count."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax's states


class BurnInState(NamedTuple):
    """State of `burn_in`: int32 update count and the wrapped transformation's state."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax's states
    inner: Any


def _lr_at(learning_rate: optax.ScalarOrSchedule, count: jax.Array) -> jax.Array:
    return jnp.asarray(learning_rate(count) if callable(learning_rate) else learning_rate)


def decay(tau_rms: float, t_b: float) -> float:
    """``gamma = exp(-t_b / tau_rms)`` per block, in Python float64 (host side), so that float32
    and float64 runs share the same value."""
    return math.exp(-t_b / tau_rms)


def _concrete(x) -> bool:
    return isinstance(x, numbers.Real)


def _normalised_update(
    g: jax.Array, v: jax.Array, lr: jax.Array, eps: float | jax.Array
) -> jax.Array:
    # v == 0 forces g == 0 for RMaxProp (v >= g**2), and for RMSprop it needs g**2 to underflow,
    # so returning 0 there changes nothing of substance but keeps eps = 0 free of 0/0 NaNs.
    denom = jnp.where(v > 0, jnp.sqrt(v) + eps, jnp.ones_like(v))
    out = jnp.where(v > 0, -lr.astype(g.dtype) * g / denom.astype(g.dtype), jnp.zeros_like(g))
    return out.astype(g.dtype)


def _scale_by_rms_stat(learning_rate, gamma: float | jax.Array, eps: float | jax.Array, accumulate):
    """Shared body of RMaxProp and RMSprop; they differ only in ``accumulate(gamma, v, g2)``."""

    def init_fn(params):
        return RMSState(count=jnp.zeros([], jnp.int32), v=jax.tree.map(jnp.zeros_like, params))

    def step_v(g, v):
        # Cast g**2 and gamma to v's dtype so v keeps the params' dtype whatever the grads' dtype.
        gm = jnp.asarray(gamma, v.dtype)
        return accumulate(gm, v, jnp.square(g).astype(v.dtype)).astype(v.dtype)

    def update_fn(updates, state, params=None):
        del params
        lr = _lr_at(learning_rate, state.count)
        v = jax.tree.map(step_v, updates, state.v)
        new_updates = jax.tree.map(lambda g, vn: _normalised_update(g, vn, lr, eps), updates, v)
        return new_updates, RMSState(count=optax.safe_increment(state.count), v=v)

    return optax.GradientTransformation(init_fn, update_fn)


def rmaxprop(
    learning_rate: optax.ScalarOrSchedule,
    tau_rms: float = 30.0,
    t_b: float = 0.5,
    eps: float | jax.Array = 1e-12,
    *,
    gamma=None,
) -> optax.GradientTransformation:
    """RMaxProp: per-weight rate normalised by a max-decaying estimate of g**2.

    Update (g in the optax descent sense, k = block count, gamma = exp(-t_b / tau_rms))::

        v <- max(gamma * v, g**2)        (v starts at 0)
        update = -lr(k) * g / (sqrt(v) + eps)

    The first update is therefore ``-lr * sign(g)`` (up to eps), and ``v`` never decays faster
    than ``gamma`` per block. Where v == 0 (all gradients so far zero) the update is 0.

    Args:
        learning_rate: r0, a float or an optax schedule of the block count.
        tau_rms: decay time constant of v, seconds (30 s in the reference code).
        t_b: block length between updates, seconds (0.5 s).
        eps: added to sqrt(v) in the denominator (1e-12 in the reference code).
        gamma: the decay per block, given directly (a traced value, say); replaces
          ``exp(-t_b / tau_rms)``.

    Shapes: pytrees of any shape, elementwise; ``v`` has the params' shapes and dtypes.
    Reference: Zenke & Ganguli (2018), per-parameter learning rates; fzenke/pub2018superspike.
    """
    gamma = decay(tau_rms, t_b) if gamma is None else gamma
    return _scale_by_rms_stat(learning_rate, gamma, eps, lambda gm, v, g2: jnp.maximum(gm * v, g2))


def rmsprop(
    learning_rate: optax.ScalarOrSchedule,
    tau_rms: float = 30.0,
    t_b: float = 0.5,
    eps: float | jax.Array = 1e-12,
    *,
    gamma=None,
) -> optax.GradientTransformation:
    """RMSprop in the paper's convention (the baseline RMaxProp is compared against).

    Update (g in the optax descent sense, gamma = exp(-t_b / tau_rms))::

        v <- gamma * v + (1 - gamma) * g**2        (v starts at 0)
        update = -lr(k) * g / (sqrt(v) + eps)

    Written out rather than wrapping ``optax.rmsprop``: optax parameterises the decay directly and
    places eps differently (inside the square root by default), so it would not match the paper's
    rule or the reference code. Where v == 0 the update is 0.

    Args: as `rmaxprop` (tau_rms, t_b in seconds). Shapes: pytrees of any shape, elementwise.
    Reference: Zenke & Ganguli (2018), per-parameter learning rates; fzenke/pub2018superspike.
    """
    gamma = decay(tau_rms, t_b) if gamma is None else gamma
    return _scale_by_rms_stat(learning_rate, gamma, eps, lambda gm, v, g2: gm * v + (1 - gm) * g2)


def fixed_rate(learning_rate: optax.ScalarOrSchedule) -> optax.GradientTransformation:
    """Fixed (global) learning rate: ``update = -lr(k) * g``, elementwise over a pytree.

    learning_rate is a float or an optax schedule of the block count k. The paper reports that this
    works only in a narrow range of r0. Reference: Zenke & Ganguli (2018), per-parameter learning
    rates; fzenke/pub2018superspike.
    """

    def init_fn(params):
        del params
        return FixedRateState(count=jnp.zeros([], jnp.int32))

    def update_fn(updates, state, params=None):
        del params
        lr = _lr_at(learning_rate, state.count)
        new_updates = jax.tree.map(lambda g: (-lr.astype(g.dtype) * g).astype(g.dtype), updates)
        return new_updates, FixedRateState(count=optax.safe_increment(state.count))

    return optax.GradientTransformation(init_fn, update_fn)


def burn_in(inner: optax.GradientTransformation, n_blocks: int) -> optax.GradientTransformation:
    """Zero the updates of ``inner`` for its first ``n_blocks`` calls; its state still evolves.

    update_k = inner_update_k if k >= n_blocks else 0   (k = 0, 1, ... counts calls)

    This is the reference code's burn-in (20 s = 40 blocks at t_b = 0.5 s without weight changes
    while v keeps accumulating). The inner state, including any schedule count, runs from the
    first call, so a drop at block N happens N blocks after the start, burn-in included.
    Shapes: pytrees of any shape. Reference: Zenke & Ganguli (2018); fzenke/pub2018superspike.
    """
    if n_blocks < 0:
        raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")

    def init_fn(params):
        return BurnInState(count=jnp.zeros([], jnp.int32), inner=inner.init(params))

    def update_fn(updates, state, params=None):
        new_updates, inner_state = inner.update(updates, state.inner, params)
        # jnp.where rather than a multiply: yields exact zeros even if the inner update is inf/NaN.
        active = state.count >= n_blocks
        new_updates = jax.tree.map(lambda u: jnp.where(active, u, jnp.zeros_like(u)), new_updates)
        return new_updates, BurnInState(count=optax.safe_increment(state.count), inner=inner_state)

    return optax.GradientTransformation(init_fn, update_fn)


def drop_schedule(r0, drops: Sequence[tuple[int, float]] = ((800, 0.1),)) -> optax.Schedule:
    """Piecewise-constant rate: r0, multiplied by ``factor`` from block ``block`` on, per drop.

    lr(k) = r0 * prod_{(block, factor) in drops, k >= block} factor

    The default drops r0 to r0/10 at block 800 (400 s at t_b = 0.5 s), as in the reference code.
    Several drops multiply (drops at the same block too). ``r0`` and the factors may be traced.
    The arithmetic is ``optax.piecewise_constant_schedule``'s, step for step (tested bit-equal);
    kept here because optax checks its factors with Python comparisons, which traced factors
    cannot pass. Reference: fzenke/pub2018superspike.
    """
    boundaries: dict = {}
    for block, factor in drops:
        if int(block) != block or block < 0:
            raise ValueError(f"drop block must be an integer >= 0, got {block}")
        if _concrete(factor) and factor < 0:
            raise ValueError(f"drop factor must be >= 0, got {factor}")
        factor = float(factor) if _concrete(factor) else factor
        boundaries[int(block)] = boundaries.get(int(block), 1.0) * factor

    def schedule(count):
        v = r0
        for threshold, scale in sorted(boundaries.items()):
            indicator = jnp.maximum(0.0, jnp.sign(threshold - count))
            v = v * indicator + (1 - indicator) * scale * v
        return v

    return schedule


@dataclasses.dataclass(frozen=True)
class Optimizer:
    """The learning-rate rule of a run (the ``optimizer`` section of a config; hashable).

    Times in seconds: ``burn_in`` without weight changes at the start (the gradient statistic
    accumulates), each ``(t, f)`` of ``drops`` multiplies the rate by ``f`` from time ``t``.
    ``r0``, ``tau_rms`` (through the decay ``gamma``), ``eps`` and the drop factors are traced
    hyper-parameters of a run (:class:`ssjax.train.Hyper`). Reference: SUPERSPIKE.md 2.3.
    """

    SCOPE: ClassVar[str] = "optimizer"

    name: str = param("rmaxprop", choice(OPTIMIZERS), doc="rmaxprop | rmsprop | fixed")
    r0: float = param(1e-3, gt(0), doc="base learning rate")
    tau_rms: float = param(30.0, gt(0, " s"), doc="time constant of the gradient statistic (s)")
    eps: float = param(1e-12, ge(0), doc="added to the root of the statistic")
    burn_in: float = param(20.0, ge(0, " s"), doc="seconds without weight changes (s)")
    drops: tuple[tuple[float, float], ...] = param(
        ((400.0, 0.1),),
        Check(
            lambda v, c: all(t >= 0 and f >= 0 for t, f in v),
            "a list of [time >= 0 s, factor >= 0] pairs",
        ),
        doc="(time s, rate factor) pairs",
    )

    def __post_init__(self):
        check_fields(self)


def clip_weights(params, w_min: float = -0.1, w_max: float = 0.1):
    """Clip every leaf of a params pytree to [w_min, w_max] (volts; [-0.1, 0.1] V in the paper)."""
    return jax.tree.map(lambda w: jnp.clip(w, min=w_min, max=w_max), params)


def make_optimizer(
    name: str,
    r0: float | jax.Array,
    *,
    tau_rms: float = 30.0,
    t_b: float = 0.5,
    eps: float | jax.Array = 1e-12,
    burn_in_blocks: int = 0,
    drops: Sequence[tuple[int, float]] = (),
    gamma=None,
) -> optax.GradientTransformation:
    """Build the configured learning-rate rule: ``burn_in(rule(drop_schedule(r0, drops)), n)``.

    name is one of "rmaxprop", "rmsprop", "fixed"; tau_rms and t_b in seconds; ``gamma``
    replaces ``exp(-t_b / tau_rms)`` when given. ``r0``, ``eps``, ``gamma`` and the drop factors
    may be traced (checked only when concrete). The result is always wrapped in `burn_in` (a
    no-op for burn_in_blocks = 0) so the state structure does not depend on the burn-in setting.
    Reference: Zenke & Ganguli (2018); fzenke/pub2018superspike.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"name must be one of {OPTIMIZERS}, got {name!r}")
    checks = (
        ("r0", r0, lambda v: v > 0, "> 0"),
        ("tau_rms", tau_rms, lambda v: v > 0, "> 0"),
        ("t_b", t_b, lambda v: v > 0, "> 0"),
        ("eps", eps, lambda v: v >= 0, ">= 0"),
        ("burn_in_blocks", burn_in_blocks, lambda v: v >= 0, ">= 0"),
    )
    for arg, value, ok, allowed in checks:
        if _concrete(value) and not ok(value):
            raise ValueError(f"{arg} must be {allowed}, got {value}")
    if int(burn_in_blocks) != burn_in_blocks:
        raise ValueError(f"burn_in_blocks must be an integer >= 0, got {burn_in_blocks}")
    lr = drop_schedule(r0, drops) if drops else r0
    if name == "rmaxprop":
        rule = rmaxprop(lr, tau_rms=tau_rms, t_b=t_b, eps=eps, gamma=gamma)
    elif name == "rmsprop":
        rule = rmsprop(lr, tau_rms=tau_rms, t_b=t_b, eps=eps, gamma=gamma)
    else:
        rule = fixed_rate(lr)
    return burn_in(rule, int(burn_in_blocks))
