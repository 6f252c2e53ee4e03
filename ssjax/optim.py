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

What optax has is optax's: the fixed rate is ``optax.scale_by_learning_rate``, the weight clip
``optax.projections.projection_box`` (both bit-identical to ssjax's former code, tested).
RMaxProp, burn-in and the reference code's drops are ssjax's own (optax has no max-decayed
statistic, and its ``piecewise_constant_schedule`` rejects traced factors). :func:`rmsprop` stays
ssjax's: ``optax.rmsprop(decay=gamma, eps_in_sqrt=False)`` is the same rule but scales by
``1 / (sqrt(v) + eps)`` then by ``-lr``, which differs from ``-lr g / (sqrt(v) + eps)`` in the
last bits (tests/test_optim.py measures it).

By name (:func:`from_name`, :func:`schedule_from_name`, :func:`chain_from_names`): any of optax's
optimisers, transformations and schedules listed in :data:`TRANSFORMS` and :data:`SCHEDULES`,
with optax's keyword arguments checked against the factory's signature, plus ``rmaxprop`` and
``drop_schedule``; for a configuration that names its optimiser (e.g. a trial trainer's adam).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ssjax.params import Check, check_fields, choice, ge, gt, param

__all__ = [
    "Optimizer",
    "BurnInState",
    "OPTAX_OPTIMIZERS",
    "OPTAX_SCHEDULES",
    "OPTAX_TRANSFORMS",
    "OPTIMIZERS",
    "SCHEDULES",
    "TRANSFORMS",
    "RMSState",
    "burn_in",
    "chain_from_names",
    "clip_weights",
    "decay",
    "drop_schedule",
    "fixed_rate",
    "from_name",
    "make_optimizer",
    "rmaxprop",
    "rmsprop",
    "schedule_from_name",
]

OPTIMIZERS = ("rmaxprop", "rmsprop", "fixed")


class RMSState(NamedTuple):
    """State of `rmaxprop` / `rmsprop`: int32 update count and the per-weight statistic ``v``."""

    # (the ignores: a field named count shadows tuple.count, as in optax's own states)
    count: jax.Array  # type: ignore[assignment]  # int32 scalar: updates seen so far
    v: Any  # pytree like params: running (max-)mean of g**2


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

    ``optax.scale_by_learning_rate`` of a schedule (a constant rate as
    ``optax.constant_schedule``), so that the state always holds the update count (the
    structure does not depend on whether the rate drops); bit-identical to ssjax's former
    ``-lr * g`` (tested). learning_rate is a float (it may be traced) or an optax schedule of
    the block count k. The paper reports that this works only in a narrow range of r0.
    Reference: Zenke & Ganguli (2018), per-parameter learning rates; fzenke/pub2018superspike.
    """
    schedule = learning_rate if callable(learning_rate) else optax.constant_schedule(learning_rate)
    return optax.scale_by_learning_rate(schedule)


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
    """Clip every leaf of a params pytree to [w_min, w_max] (volts; [-0.1, 0.1] V in the paper).

    ``optax.projections.projection_box`` (``jnp.clip`` per leaf) with the bounds given per leaf.
    """
    return optax.projections.projection_box(
        params, jax.tree.map(lambda _: w_min, params), jax.tree.map(lambda _: w_max, params)
    )


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


# ------------------------------------------------------------------------------------ by name

OPTAX_OPTIMIZERS = (
    "adabelief", "adadelta", "adafactor", "adagrad", "adam", "adamax", "adamaxw", "adamw",
    "adan", "amsgrad", "fromage", "lamb", "lars", "lion", "noisy_sgd", "novograd",
    "optimistic_adam", "optimistic_gradient_descent", "polyak_sgd", "radam", "rmsprop",
    "rprop", "sgd", "sign_sgd", "signum", "sm3", "yogi",
)  # fmt: skip
OPTAX_TRANSFORMS = (
    "adaptive_grad_clip", "add_decayed_weights", "add_noise", "centralize", "clip",
    "clip_by_block_rms", "clip_by_global_norm", "ema", "identity", "keep_params_nonnegative",
    "normalize_by_update_norm", "scale", "scale_by_adam", "scale_by_adamax", "scale_by_amsgrad",
    "scale_by_belief", "scale_by_learning_rate", "scale_by_lion", "scale_by_novograd",
    "scale_by_radam", "scale_by_rms", "scale_by_rss", "scale_by_sign", "scale_by_stddev",
    "scale_by_trust_ratio", "scale_by_yogi", "trace", "zero_nans",
)  # fmt: skip
OPTAX_SCHEDULES = (
    "constant_schedule", "cosine_decay_schedule", "cosine_onecycle_schedule",
    "exponential_decay", "linear_onecycle_schedule", "linear_schedule",
    "piecewise_constant_schedule", "piecewise_interpolate_schedule", "polynomial_schedule",
    "warmup_constant_schedule", "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
)  # fmt: skip

#: name -> factory of a gradient transformation: optax's optimisers and transformations (the
#: installed optax's, same name and keywords) and ssjax's RMaxProp, which optax lacks.
TRANSFORMS: dict[str, Any] = {
    **{n: getattr(optax, n) for n in OPTAX_OPTIMIZERS + OPTAX_TRANSFORMS if hasattr(optax, n)},
    "rmaxprop": rmaxprop,
}
#: name -> factory of a learning-rate schedule of the update count: optax's, and ssjax's drops.
SCHEDULES: dict[str, Any] = {
    **{n: getattr(optax, n) for n in OPTAX_SCHEDULES if hasattr(optax, n)},
    "drop_schedule": drop_schedule,
}


def _call(kind: str, registry: dict, name: str, kwargs: dict):
    """``registry[name](**kwargs)``, with the unknown name or keyword named in a ValueError."""
    if not isinstance(name, str) or name not in registry:
        raise ValueError(f"unknown {kind} {name!r}; choose one of {', '.join(sorted(registry))}")
    factory = registry[name]
    params = inspect.signature(factory).parameters
    named = [p for p in params.values() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        bad = [k for k in kwargs if k not in {p.name for p in named}]
        if bad:
            accepted = ", ".join(p.name for p in named) or "none"
            raise ValueError(
                f"{kind} {name!r}: unknown keyword argument {bad[0]!r} (it accepts: {accepted})"
            )
    missing = [p.name for p in named if p.default is p.empty and p.name not in kwargs]
    if missing:
        raise ValueError(f"{kind} {name!r}: missing keyword argument {missing[0]!r}")
    return factory(**kwargs)


def schedule_from_name(name: str, **kwargs) -> optax.Schedule:
    """The learning-rate schedule ``name`` of :data:`SCHEDULES` with its keyword arguments.

    E.g. ``schedule_from_name("cosine_decay_schedule", init_value=1e-3, decay_steps=1000)``
    (optax's keywords, checked against the factory's signature: an unknown name, an unknown
    keyword or a missing one is a ValueError naming it). Schedules take the update count.
    """
    return _call("schedule", SCHEDULES, name, kwargs)


def from_name(name: str, **kwargs) -> optax.GradientTransformation:
    """The gradient transformation ``name`` of :data:`TRANSFORMS` with its keyword arguments.

    Any optax optimiser or transformation listed there by its optax name and keywords
    (``from_name("adam", learning_rate=1e-3, b1=0.9)``, ``from_name("sgd",
    learning_rate=0.1, momentum=0.9)``, ``from_name("clip_by_global_norm", max_norm=1.0)``),
    or ``"rmaxprop"`` (:func:`rmaxprop`: ``learning_rate``, ``tau_rms``, ``t_b`` in seconds,
    ``eps``, ``gamma``). A keyword value that is a mapping with a ``"schedule"`` entry is
    built by :func:`schedule_from_name` (``learning_rate={"schedule": "exponential_decay",
    "init_value": 1e-3, "transition_steps": 100, "decay_rate": 0.5}``). The keywords are
    checked against the factory's signature: an unknown name, an unknown keyword or a missing
    one is a ValueError naming it. ``"rmsprop"`` is optax's (eps inside the root by default;
    ``eps_in_sqrt=False, decay=gamma`` is the paper's rule up to rounding, :func:`rmsprop`).
    Float hyper-parameters may be traced (optax's transformations take arrays).
    """
    kwargs = {
        k: schedule_from_name(**_schedule_spec(v)) if _is_schedule_spec(v) else v
        for k, v in kwargs.items()
    }
    return _call("optimizer", TRANSFORMS, name, kwargs)


def _is_schedule_spec(v) -> bool:
    return isinstance(v, Mapping) and "schedule" in v


def _schedule_spec(v: Mapping) -> dict:
    spec = dict(v)
    return {"name": spec.pop("schedule"), **spec}


def chain_from_names(specs: Sequence) -> optax.GradientTransformation:
    """``optax.chain`` of :func:`from_name` transformations, in order.

    Each spec is a name or a mapping ``{"name": ..., **kwargs}``, e.g. ``[{"name":
    "clip_by_global_norm", "max_norm": 1.0}, {"name": "adamw", "learning_rate": 1e-3}]``.
    """
    parts = []
    for i, spec in enumerate(specs):
        if isinstance(spec, str):
            parts.append(from_name(spec))
        elif isinstance(spec, Mapping) and "name" in spec:
            kw = {k: v for k, v in spec.items() if k != "name"}
            parts.append(from_name(spec["name"], **kw))
        else:
            raise ValueError(f"chain entry {i}: a name or a mapping with 'name', got {spec!r}")
    return optax.chain(*parts)
