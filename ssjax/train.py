"""Continuous online training: one jitted block update, runs of many blocks as one ``lax.scan``.

The network is driven by a frozen pattern (inputs ``[P, N_in]``, targets ``[P, N_out]``)
replayed in a loop without reset (SUPERSPIKE.md 1, 2.1). Every block of ``K`` steps
(``t_b = K dt``, 0.5 s in the paper, independent of the pattern period ``P``) the rule produces
an update from what the block saw, the learning-rate rule turns it into a weight change, and the
weights are clipped. Network state, traces, filters and the optimiser state are carried across
blocks in a :class:`TrainState`, so a run can be cut into segments (for logs or checkpoints)
without changing its result.

The trainer runs any learning rule of the contract in :mod:`ssjax.rules.base` (SuperSpike with
any feedback, :mod:`ssjax.rules.superspike`; BPTT of each block, :mod:`ssjax.rules.bptt`): it
calls ``rule.update`` and never looks inside the rule's state. The metrics normalise with the
rule's own loss filter. Float hyper-parameters travel as :class:`Hyper` values
(:meth:`TrainSpec.hyper`), so a program compiled for :meth:`TrainSpec.structure` serves every
value.

Metrics are produced per block and split by pattern period (a block may straddle periods), so
that :func:`ssjax.metrics.per_period` can reassemble exact per-period van Rossum distances and
firing rates.

Reference: Zenke & Ganguli (2018), Methods; reference code fzenke/pub2018superspike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ssjax._types import Array, PRNGKey, PyTree, Weights
from ssjax.losses import moving_average_cost, window_outcome

# re-exported: per-period metrics moved to ssjax.metrics (older imports from ssjax.train work)
from ssjax.metrics import PeriodMetrics, per_period  # noqa: F401
from ssjax.network import Network, init_weights
from ssjax.optim import Optimizer, clip_weights, decay, make_optimizer
from ssjax.params import check_fields, multiple_of, param
from ssjax.pattern import Pattern, _window, as_pattern  # noqa: F401  (_window: older imports)
from ssjax.rules.base import Block, LearningRule
from ssjax.rules.bptt import BPTTConfig, bptt
from ssjax.rules.superspike import SuperSpikeConfig, superspike

RuleConfig = SuperSpikeConfig | BPTTConfig
# TrainSpec's default: RMaxProp without the paper's burn-in and drops (Optimizer() has them)
_PLAIN_RATE = Optimizer(burn_in=0.0, drops=())

_RULE_TYPES: dict[str, tuple[type, Callable[..., LearningRule]]] = {
    "superspike": (SuperSpikeConfig, superspike),
    "bptt": (BPTTConfig, bptt),
}
RULES = tuple(_RULE_TYPES)
# rule name -> its config dataclass (the config's rule section is their union)
RULE_CONFIGS: dict[str, type] = {name: cls for name, (cls, _) in _RULE_TYPES.items()}


def rule_name(cfg: RuleConfig) -> str:
    """The registry name of a rule config (``superspike`` or ``bptt``)."""
    for name, (cls, _) in _RULE_TYPES.items():
        if isinstance(cfg, cls):
            return name
    raise TypeError(f"not a learning-rule config: {type(cfg).__name__}")


def build_rule(net: Network, cfg: RuleConfig, hyper=None, *, shared_inputs=False) -> LearningRule:
    """The :class:`ssjax.rules.base.LearningRule` that ``cfg`` describes (by its type)."""
    return _RULE_TYPES[rule_name(cfg)][1](net, cfg, hyper=hyper, shared_inputs=shared_inputs)


class OptHyper(NamedTuple):
    """Traced hyper-parameters of the learning-rate rule: ``r0``, the per-block decay ``gamma``
    of the gradient statistic, ``eps`` and the drop factors (in the order of ``drops``)."""

    r0: Array | float
    gamma: Array | float
    eps: Array | float
    factors: tuple


class Hyper(NamedTuple):
    """Every traced hyper-parameter of a run: the optimiser's and the rule's. The rule's include
    the surrogate's steepness ``beta`` (:class:`ssjax.rules.superspike.SuperSpikeHyper`,
    :class:`ssjax.rules.bptt.BPTTHyper`), which both rules need, SuperSpike in ``sigma'`` and
    BPTT in the spike's VJP."""

    opt: OptHyper
    rule: PyTree


@dataclasses.dataclass(frozen=True)
class TrainSpec:
    """Static description of an online training run (hashable; a jit static argument).

    net: the network. rule: the learning rule's config, :class:`SuperSpikeConfig` (its
    ``feedback`` also names the feedback matrices the rule draws) or :class:`BPTTConfig`.
    optimizer: the learning-rate rule with its burn-in and drops, :class:`ssjax.optim.Optimizer`
      (default: RMaxProp at the paper's rate, without its burn-in and drops).
    block: the time between weight updates, ``t_b`` (s; 0.5 s in the paper), a multiple of the
      neuron's ``dt``; :attr:`block_steps` is ``K = t_b / dt``.
    ema_tau: time constant (s) of the reference code's moving-average cost.
    record_output: also return each block's output spikes, bit-packed along time
      (``BlockMetrics.out_bits`` ``[ceil(K/8), N_out]`` uint8; unpack with :func:`unpack_output`).
    on_nonfinite: ``halt`` (the block's state is returned as computed and ``finite`` is False;
      the caller stops) or ``skip`` (a block whose new state is not finite leaves weights,
      optimiser and rule state unchanged; only the clock and data position advance).

    Traced fields (the optimiser's ``r0``, ``tau_rms``, ``eps``, drop factors, the rule's own and
    the neuron surrogate's ``beta``, see :meth:`hyper`) reach the compiled program as values, not
    constants: :meth:`structure` is the same for specs that differ only in them, so they share
    one program.
    """

    SCOPE: ClassVar[str] = "run"  # block is run.block of a config

    net: Network
    rule: RuleConfig = dataclasses.field(default_factory=SuperSpikeConfig)
    optimizer: Optimizer = dataclasses.field(default_factory=lambda: _PLAIN_RATE)
    block: float = param(
        0.5, multiple_of("neuron.dt", strict=True), doc="time between weight updates (s)"
    )
    ema_tau: float = 10.0
    record_output: bool = False
    on_nonfinite: str = "halt"

    def __post_init__(self):
        rule_name(self.rule)
        if self.on_nonfinite not in ("halt", "skip"):
            raise ValueError(
                f"TrainSpec.on_nonfinite must be 'halt' or 'skip', got {self.on_nonfinite!r}"
            )
        check_fields(self, neuron=self.net.neuron)
        self.make_optimizer()  # validates the optimiser settings now, before any tracing

    @property
    def t_b(self) -> float:
        """Block length in seconds."""
        return self.block

    @property
    def block_steps(self) -> int:
        """Steps per block, ``K = t_b / dt`` (5000 = 0.5 s at 0.1 ms)."""
        return int(round(self.block / self.net.neuron.dt))

    @property
    def classify(self) -> bool:
        """Whether the targets are window codes (the window-of-opportunity error)."""
        return self.rule.error == "window"

    def hyper(self, dtype=None) -> Hyper:
        """The traced hyper-parameters, derived on the host; arrays of ``dtype`` if given
        (the run's float type), else Python floats."""
        o = self.optimizer
        h = Hyper(
            OptHyper(o.r0, decay(o.tau_rms, self.t_b), o.eps, tuple(f for _, f in o.drops)),
            self.rule.hyper(self.net),
        )
        if dtype is None:
            return h
        return jax.tree.map(lambda v: jnp.asarray(v, dtype), h)

    def structure(self) -> TrainSpec:
        """This spec with its traced fields canonical (see the class docstring)."""
        o = dataclasses.replace(
            self.optimizer,
            r0=1e-3,
            tau_rms=30.0,
            eps=1e-12,
            drops=tuple((t, 1.0) for t, _ in self.optimizer.drops),
        )
        return dataclasses.replace(
            self, net=self.net.structure(), rule=self.rule.structure(), optimizer=o
        )

    def make_optimizer(self, hyper: OptHyper | None = None) -> optax.GradientTransformation:
        """The learning-rate rule with burn-in and drops converted from seconds to blocks;
        its float parameters from ``hyper`` (traced) if given, else from this spec."""
        h = self.hyper().opt if hyper is None else hyper
        o = self.optimizer
        blocks = [
            (int(round(t / self.t_b)), f) for (t, _), f in zip(o.drops, h.factors, strict=True)
        ]
        return make_optimizer(
            o.name,
            h.r0,
            tau_rms=o.tau_rms,
            t_b=self.t_b,
            eps=h.eps,
            burn_in_blocks=int(round(o.burn_in / self.t_b)),
            drops=blocks,
            gamma=h.gamma,
        )

    def make_rule(self, hyper=None, *, shared_inputs: bool = False) -> LearningRule:
        """The learning rule, with the rule's traced hyper-parameters ``hyper`` if given."""
        return build_rule(self.net, self.rule, hyper, shared_inputs=shared_inputs)


class TrainState(NamedTuple):
    """Everything a run carries: weights, optimiser state, the rule's own state (for SuperSpike
    the network, error filter, traces and feedback matrices; see the rule), the position in the
    looped pattern (steps), the moving-average cost and the window outcome ``[N_out]``."""

    weights: Weights
    opt_state: optax.OptState
    rule: PyTree
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


def init_train_state(spec: TrainSpec, key: PRNGKey, dtype=jnp.float32) -> TrainState:
    """Fresh state of one run: weights and the rule's state (feedback matrices) from ``key``."""
    # three keys, as when the state also held a run key: the same seed draws the same weights
    # and feedback as before
    k_w, k_rule, _ = jax.random.split(key, 3)
    weights = init_weights(spec.net, k_w, dtype)
    return TrainState(
        weights=weights,
        opt_state=spec.make_optimizer().init(weights),
        rule=spec.make_rule().init(weights, k_rule),
        pos=jnp.zeros((), jnp.int32),
        ema=jnp.zeros((), dtype),
        outcome=jnp.zeros(spec.net.sizes[-1], dtype),
    )


def _n_segments(block_steps: int, period_steps: int) -> int:
    return block_steps // period_steps + 2


def block_step(
    spec: TrainSpec,
    pattern_in: Pattern | Array,
    pattern_tgt: Pattern | Array,
    state: TrainState,
    hyper: Hyper | None = None,
    *,
    shared_inputs: bool = False,
):
    """One block: gather the looped pattern, compute the rule's update, apply it.

    Args:
      pattern_in: ``[P, N_in]``; pattern_tgt: ``[P, N_out]`` (one period, replayed): patterns
        of :mod:`ssjax.pattern` (an :class:`~ssjax.pattern.EventPattern` is gathered block by
        block on the device) or dense arrays (served as :class:`~ssjax.pattern.DensePattern`).
      hyper: traced hyper-parameters (``spec.hyper()`` as constants if None).
      shared_inputs: the caller ``vmap``s seeds whose inputs (and
        ``rule.input_leaves``) are passed unbatched.

    Returns:
      ``(state, BlockMetrics)``.
    """
    net, k = spec.net, spec.block_steps
    hyper = spec.hyper() if hyper is None else hyper
    pattern_in, pattern_tgt = as_pattern(pattern_in), as_pattern(pattern_tgt)
    period = pattern_in.n_steps
    dt = net.neuron.dt
    # patterns may be stored compactly (events, uint8 spikes, int8 window codes): the block is
    # the same [K, N] values either way
    x = pattern_in.window(state.pos, k, state.ema.dtype)
    y = pattern_tgt.window(state.pos, k)
    rule = spec.make_rule(hyper.rule, shared_inputs=shared_inputs)
    out = rule.update(state.weights, state.rule, Block(x, y))
    rule_state, spikes, e_out = out.state, out.record.spikes, out.error
    opt = spec.make_optimizer(hyper.opt)
    updates, opt_state = opt.update(out.updates, state.opt_state, state.weights)
    weights = clip_weights(optax.apply_updates(state.weights, updates), net.w_min, net.w_max)

    finite = _all_finite((weights, opt_state, rule_state))
    if spec.on_nonfinite == "skip":
        advanced = rule_state
        weights, opt_state, rule_state = jax.tree.map(
            lambda new, old: jnp.where(finite, new, old),
            (weights, opt_state, rule_state),
            (state.weights, state.opt_state, state.rule),
        )
        # the leaves that hold the input stream alone advance like the clock
        rule_state = jax.tree.map(
            lambda keep, new, old: new if keep else old,
            rule.input_leaves(rule_state),
            advanced,
            rule_state,
        )

    # split the block's steps by pattern period
    n_seg = _n_segments(k, period)
    period0 = state.pos // period
    seg = (state.pos + jnp.arange(k)) // period - period0
    norm = rule.loss.norm(dt)
    sq = e_out * e_out  # the same product as the moving average's (one pass, shared)
    ema = moving_average_cost(e_out, dt, tau=spec.ema_tau, state=state.ema)
    if spec.classify:
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
        out_bits=(jnp.packbits(spikes[-1] > 0, axis=0) if spec.record_output else jnp.zeros((0,))),
        ended_seg=seg_sum(ended),
        correct_seg=seg_sum(correct),
    )
    new = TrainState(
        weights=weights,
        opt_state=opt_state,
        rule=rule_state,
        pos=state.pos + k,
        ema=ema,
        outcome=outcome,
    )
    return new, metrics


def _all_finite(tree) -> Array:
    """True when every floating-point leaf of ``tree`` is finite (a scalar bool)."""
    leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def shared_leaves(spec: TrainSpec, state: TrainState):
    """A pytree of bools over ``state``: True for the leaves that are the same for every seed at
    a given position: the position itself and the rule's ``input_leaves``.

    Passed unbatched to a seed ``vmap`` (with ``shared_inputs``), the block's inputs and
    everything that depends on them alone (the delayed input spikes, the input currents' spike
    side, the input layer's PSP trace and its event list) are computed once for all seeds.
    """
    flags = jax.tree.map(lambda _: False, state)
    return flags._replace(pos=True, rule=spec.make_rule().input_leaves(state.rule))


def run_blocks(
    spec: TrainSpec,
    pattern_in,
    pattern_tgt,
    state: TrainState,
    n_blocks: int,
    hyper: Hyper | None = None,
    *,
    shared_inputs: bool = False,
):
    """``n_blocks`` consecutive blocks as one ``lax.scan``; ``(state, stacked BlockMetrics)``.

    Jit it with ``spec`` and ``n_blocks`` static, and ``vmap`` it over seeds. To share one
    program among specs that differ only in traced hyper-parameters, pass
    ``spec.structure()`` and ``hyper=spec.hyper(dtype)``.
    """

    def body(st, _):
        return block_step(spec, pattern_in, pattern_tgt, st, hyper, shared_inputs=shared_inputs)

    return jax.lax.scan(body, state, None, length=n_blocks)


run_blocks_jit = jax.jit(run_blocks, static_argnums=(0, 4), static_argnames=("shared_inputs",))


def unpack_output(out_bits, block_steps: int) -> np.ndarray:
    """Output spikes ``[..., K, N_out]`` (0/1 uint8) from ``BlockMetrics.out_bits``."""
    bits = np.asarray(out_bits)
    return np.unpackbits(bits, axis=-2, count=block_steps)
