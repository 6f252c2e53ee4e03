"""Continuous online training: one jitted block update, runs of many blocks as one ``lax.scan``.

The network is driven by a frozen pattern (inputs ``[P, N_in]``, targets ``[P, N_out]``)
replayed in a loop without reset (SUPERSPIKE.md 1, 2.1). Every block of ``K`` steps
(``t_b = K dt``, 0.5 s in the paper, independent of the pattern period ``P``) the rule produces
an update from what the block saw, the learning-rate rule turns it into a weight change, and the
weights are clipped. Network state, traces, filters and the optimiser state are carried across
blocks in a :class:`TrainState`, so a run can be cut into segments (for logs or checkpoints)
without changing its result.

The same trainer runs SuperSpike (any feedback; :mod:`ssjax.rules.superspike`) and BPTT of each
block (:mod:`ssjax.rules.bptt`, the block's loss with the carried state as a constant).

Metrics are produced per block and split by pattern period (a block may straddle periods), so
that :func:`per_period` can reassemble exact per-period van Rossum distances and firing rates.

Reference: Zenke & Ganguli (2018), Methods; reference code fzenke/pub2018superspike.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ssjax.filters import alpha_sq_sum
from ssjax.losses import moving_average_cost, window_outcome
from ssjax.network import Network, init_weights
from ssjax.optim import clip_weights, make_optimizer
from ssjax.rules.bptt import bptt_grad
from ssjax.rules.feedback import init_feedback
from ssjax.rules.superspike import RuleState, SuperSpikeConfig, init_rule_state, superspike_grads

Array = jax.Array

RULES = ("superspike", "bptt")


@dataclasses.dataclass(frozen=True)
class Trainer:
    """Static description of an online training run (hashable; a jit static argument).

    net: the network; rule: ``superspike`` or ``bptt``; superspike: rule settings (its
    ``feedback`` also names the feedback matrices drawn for the run).
    optimizer, r0, tau_rms, eps: learning-rate rule of :mod:`ssjax.optim`.
    burn_in: seconds without weight changes at the start (v accumulates); drops: ``((t, f),)``
    multiply the rate by ``f`` from time ``t`` (s). block_steps: ``K`` (5000 = 0.5 s at 0.1 ms).
    ema_tau: time constant (s) of the reference code's moving-average cost.
    record_output: also return each block's output spikes, bit-packed along time
      (``BlockMetrics.out_bits`` ``[ceil(K/8), N_out]`` uint8; unpack with :func:`unpack_output`).
    on_nonfinite: ``halt`` (the block's state is returned as computed and ``finite`` is False;
      the caller stops) or ``skip`` (a block whose new state is not finite leaves weights,
      optimiser and rule state unchanged; only the clock and data position advance).
    """

    net: Network
    rule: str = "superspike"
    superspike: SuperSpikeConfig = dataclasses.field(default_factory=SuperSpikeConfig)
    optimizer: str = "rmaxprop"
    r0: float = 1e-3
    tau_rms: float = 30.0
    eps: float = 1e-12
    burn_in: float = 0.0
    drops: tuple = ()
    block_steps: int = 5000
    ema_tau: float = 10.0
    record_output: bool = False
    on_nonfinite: str = "halt"

    def __post_init__(self):
        if self.rule not in RULES:
            raise ValueError(f"Trainer.rule must be one of {RULES}, got {self.rule!r}")
        if self.rule == "bptt" and self.superspike.error != "van_rossum":
            raise ValueError(
                "Trainer.rule 'bptt' needs the van Rossum error (superspike.error='van_rossum'); "
                f"the window error is not differentiable, got {self.superspike.error!r}"
            )
        if self.on_nonfinite not in ("halt", "skip"):
            raise ValueError(
                f"Trainer.on_nonfinite must be 'halt' or 'skip', got {self.on_nonfinite!r}"
            )
        if not (isinstance(self.block_steps, int) and self.block_steps >= 1):
            raise ValueError(f"Trainer.block_steps must be an int >= 1, got {self.block_steps}")
        object.__setattr__(self, "drops", tuple(tuple(d) for d in self.drops))
        self.make_optimizer()  # validates the optimiser settings now, before any tracing

    @property
    def t_b(self) -> float:
        """Block length in seconds."""
        return self.block_steps * self.net.neuron.dt

    def make_optimizer(self) -> optax.GradientTransformation:
        """The learning-rate rule with burn-in and drops converted from seconds to blocks."""
        blocks = [(int(round(t / self.t_b)), f) for t, f in self.drops]
        return make_optimizer(
            self.optimizer,
            self.r0,
            tau_rms=self.tau_rms,
            t_b=self.t_b,
            eps=self.eps,
            burn_in_blocks=int(round(self.burn_in / self.t_b)),
            drops=blocks,
        )


class TrainState(NamedTuple):
    """Everything a run carries: weights, optimiser, rule state (network, error filter, traces),
    feedback matrices, the run key, the block counter and the position in the looped pattern."""

    weights: tuple
    opt_state: optax.OptState
    rule: RuleState
    feedback: tuple
    key: Array
    block: Array
    pos: Array
    ema: Array
    outcome: Array


class BlockMetrics(NamedTuple):
    """Per block; ``*_seg`` arrays are split by pattern period: segment ``s`` belongs to period
    ``period0 + s``. ``sq_err_seg`` is the van Rossum distance accumulated per output."""

    period0: Array
    steps_seg: Array
    sq_err_seg: Array
    spikes_seg: tuple
    ema: Array
    weight_norm: Array
    update_norm: Array
    finite: Array
    out_bits: Array
    ended_seg: Array
    correct_seg: Array


def init_train_state(trainer: Trainer, key: Array, dtype=jnp.float32) -> TrainState:
    """Fresh state of one run: weights and feedback drawn from ``key`` (one seed)."""
    k_w, k_fb, k_run = jax.random.split(key, 3)
    net = trainer.net
    weights = init_weights(net, k_w, dtype)
    feedback = init_feedback(k_fb, net, trainer.superspike.feedback, dtype)
    return TrainState(
        weights=weights,
        opt_state=trainer.make_optimizer().init(weights),
        rule=init_rule_state(net, trainer.superspike, dtype),
        feedback=feedback,
        key=k_run,
        block=jnp.zeros((), jnp.int32),
        pos=jnp.zeros((), jnp.int32),
        ema=jnp.zeros((), dtype),
        outcome=jnp.zeros(net.sizes[-1], dtype),
    )


def _n_segments(block_steps: int, period_steps: int) -> int:
    return block_steps // period_steps + 2


def block_step(trainer: Trainer, pattern_in: Array, pattern_tgt: Array, state: TrainState):
    """One block: gather the looped pattern, compute the rule's update, apply it.

    Args:
      pattern_in: ``[P, N_in]``; pattern_tgt: ``[P, N_out]`` (one period, replayed).

    Returns:
      ``(state, BlockMetrics)``.
    """
    net, k = trainer.net, trainer.block_steps
    period = pattern_in.shape[0]
    dt = net.neuron.dt
    # patterns may be stored compactly (uint8 spikes, int8 window codes)
    x = _window(pattern_in, state.pos, k).astype(state.ema.dtype)
    y = _window(pattern_tgt, state.pos, k)
    if trainer.rule == "superspike":
        grads, rule, aux = superspike_grads(
            net, trainer.superspike, state.weights, state.feedback, x, y, state.rule
        )
        spikes, e_out = aux.record.spikes, aux.errors[-1]
    else:
        grads, aux = bptt_grad(net, state.weights, x, y, state.rule.net, state.rule.err)
        rule = state.rule._replace(net=aux.state, err=aux.err_state)
        spikes, e_out = aux.record.spikes, aux.error
    opt = trainer.make_optimizer()
    updates, opt_state = opt.update(grads, state.opt_state, state.weights)
    weights = clip_weights(optax.apply_updates(state.weights, updates), net.w_min, net.w_max)

    finite = _all_finite((weights, opt_state, rule))
    if trainer.on_nonfinite == "skip":
        advanced = rule
        weights, opt_state, rule = jax.tree.map(
            lambda new, old: jnp.where(finite, new, old),
            (weights, opt_state, rule),
            (state.weights, state.opt_state, state.rule),
        )
        # the input layer's delay lines hold the input stream, which advances like the clock
        rule = jax.tree.map(
            lambda keep, new, old: new if keep else old, input_stream_leaves(rule), advanced, rule
        )

    # split the block's steps by pattern period
    n_seg = _n_segments(k, period)
    period0 = state.pos // period
    seg = (state.pos + jnp.arange(k)) // period - period0
    norm = alpha_sq_sum(trainer.superspike.tau_rise, trainer.superspike.tau_decay, dt)
    sq = e_out * e_out  # the same product as the moving average's (one pass, shared)
    ema = moving_average_cost(e_out, dt, tau=trainer.ema_tau, state=state.ema)
    if trainer.superspike.error == "window":
        ended, correct, outcome = window_outcome(spikes[-1], y, state.outcome)
    else:
        ended = correct = jnp.zeros(k, sq.dtype)
        outcome = state.outcome
    # segment sums as products with a [n_seg, K] indicator: it depends on the position alone,
    # which all seeds share (a scatter-add would run per seed and per element)
    onehot = seg[None, :] == jnp.arange(n_seg)[:, None]
    ind = onehot.astype(sq.dtype)

    def seg_sum(x):
        return jnp.matmul(ind, x, precision=jax.lax.Precision.HIGHEST)

    metrics = BlockMetrics(
        period0=period0,
        steps_seg=jnp.sum(onehot, axis=1, dtype=jnp.int32),
        sq_err_seg=seg_sum(sq) * (dt / norm),
        spikes_seg=tuple(jnp.sum(seg_sum(s), -1) for s in spikes),
        ema=ema / norm,
        weight_norm=jnp.stack([jnp.linalg.norm(w) for w in weights]),
        update_norm=jnp.stack([jnp.linalg.norm(u) for u in updates]),
        finite=finite,
        out_bits=(
            jnp.packbits(spikes[-1] > 0, axis=0) if trainer.record_output else jnp.zeros((0,))
        ),
        ended_seg=seg_sum(ended),
        correct_seg=seg_sum(correct),
    )
    new = TrainState(
        weights=weights,
        opt_state=opt_state,
        rule=rule,
        feedback=state.feedback,
        key=state.key,
        block=state.block + 1,
        pos=state.pos + k,
        ema=ema,
        outcome=outcome,
    )
    return new, metrics


def _window(pattern: Array, pos: Array, k: int) -> Array:
    """Steps ``pos .. pos + k - 1`` of ``pattern`` ``[P, ...]`` replayed in a loop: ``[k, ...]``.

    One contiguous slice of the pattern tiled to ``P - 1 + k`` steps instead of a per-step
    gather (XLA fuses the tiling into the slice; nothing of size ``P + k`` is written).
    """
    period = pattern.shape[0]
    reps = -(-(period - 1 + k) // period)
    tiled = jnp.tile(pattern, (reps,) + (1,) * (pattern.ndim - 1)) if reps > 1 else pattern
    return jax.lax.dynamic_slice_in_dim(tiled, pos % period, k)


def input_stream_leaves(rule: RuleState):
    """A pytree of bools over ``rule``: True for the leaves that hold the input stream alone,
    the same for every seed at a given position: the input layer's axonal delay line
    (:class:`ssjax.network.NetState`) and Hebbian delay line
    (:class:`ssjax.rules.superspike.LayerTraces`)."""
    flags = jax.tree.map(lambda _: False, rule)
    net = flags.net._replace(delay=(True,) + tuple(flags.net.delay[1:]))
    layers = (flags.layers[0]._replace(spk_buf=True),) + tuple(flags.layers[1:])
    return flags._replace(net=net, layers=layers)


def _all_finite(tree) -> Array:
    """True when every floating-point leaf of ``tree`` is finite (a scalar bool)."""
    leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def run_blocks(trainer: Trainer, pattern_in, pattern_tgt, state: TrainState, n_blocks: int):
    """``n_blocks`` consecutive blocks as one ``lax.scan``; ``(state, stacked BlockMetrics)``.

    Jit it with ``trainer`` and ``n_blocks`` static, and ``vmap`` it over seeds.
    """

    def body(st, _):
        return block_step(trainer, pattern_in, pattern_tgt, st)

    return jax.lax.scan(body, state, None, length=n_blocks)


run_blocks_jit = jax.jit(run_blocks, static_argnums=(0, 4))


def unpack_output(out_bits, block_steps: int) -> np.ndarray:
    """Output spikes ``[..., K, N_out]`` (0/1 uint8) from ``BlockMetrics.out_bits``."""
    bits = np.asarray(out_bits)
    return np.unpackbits(bits, axis=-2, count=block_steps)


class PeriodMetrics(NamedTuple):
    """Per complete pattern period (numpy): ``van_rossum`` ``[n, N_out]``, ``rate_hz`` per layer
    ``[n]``, and the index of each period."""

    period: np.ndarray
    van_rossum: np.ndarray
    rate_hz: tuple


def per_period(metrics: BlockMetrics, sizes, period_steps: int, dt: float) -> PeriodMetrics:
    """Reassemble per-period numbers from the per-block segments (host side, numpy).

    ``metrics`` is stacked over blocks (leading axis; no seed axis). Only periods whose steps all
    lie in ``metrics`` are returned.
    """
    p0 = np.asarray(metrics.period0)
    n_blocks, n_seg = np.asarray(metrics.steps_seg).shape
    pid = (p0[:, None] + np.arange(n_seg)[None, :]).ravel()
    n_per = int(pid.max()) + 1
    steps = np.zeros(n_per, np.int64)
    np.add.at(steps, pid, np.asarray(metrics.steps_seg).ravel())
    sq = np.asarray(metrics.sq_err_seg, np.float64)
    vr = np.zeros((n_per, sq.shape[-1]))
    np.add.at(vr, pid, sq.reshape(-1, sq.shape[-1]))
    rates = []
    for sp in metrics.spikes_seg:
        acc = np.zeros(n_per)
        np.add.at(acc, pid, np.asarray(sp, np.float64).ravel())
        rates.append(acc)
    full = np.nonzero(steps == period_steps)[0]
    full = full[full >= p0.min()]
    return PeriodMetrics(
        period=full,
        van_rossum=vr[full],
        rate_hz=tuple(
            r[full] / (n * period_steps * dt) for n, r in zip(sizes[1:], rates, strict=True)
        ),
    )
