"""Training on labelled trials: minibatches, a classification readout, any optax optimiser.

The online trainer (:mod:`ssjax.train`) replays one looped pattern; this module trains on a data
set of labelled trials (:class:`ssjax.data.TrialSet`): each step takes a minibatch
``x [T, B, N_in]`` (made dense on the device, :func:`ssjax.data.dense_batch`) with labels
``y [B]``, computes weight updates with one of two rules, and applies them with an optax
transformation::

    spec = TrialSpec(Network((700, 128, 20)), rule="bptt", readout=ClassifierLoss("max"))
    tx = optax.adam(1e-3)                      # or ssjax.optim.from_name("adam", learning_rate=...)
    state = init_trial_state(spec, tx, jax.random.PRNGKey(seed))
    state, metrics = train_epoch(spec, tx, state, trials.with_batch(B), epoch_key(key, epoch))
    evaluate_trials(spec, state.weights, test.with_batch(B))   # mean loss and accuracy

**BPTT** (``rule="bptt"``): the gradient of the minibatch's readout loss
(:class:`ssjax.classification.ClassifierLoss`: max/last/mean cross-entropy of an LI readout,
spike-count cross-entropy or MSE, first-spike time) by autodiff through the surrogate spike
function (:mod:`ssjax.spike`), ``g = d/dW mean_b l_b``, masked trials excluded.

**SuperSpike** (``rule="superspike"``): the three-factor rule of :mod:`ssjax.rules.superspike`
run on each trial as one block from the rule's trial state, the updates averaged over the
minibatch. Its output error comes from the labels (:mod:`ssjax.class_errors`):
``error: window`` (the window of opportunity ``[window_start, window_stop)`` for ``C`` classes:
the correct output must fire in it, the others must not) or ``error: van_rossum`` (a target
train at ``target_times`` for the correct output, none for the others). The readout then scores
the output spikes (a spike readout: ``count_ce``, ``count_mse``, ``first_spike``).

Membrane readouts (``max``, ``last``, ``mean``): the last weight matrix ``W[L-1]`` feeds an LI
layer (:func:`ssjax.readout.li_readout`: LIF's membrane without threshold, no axonal delay)
from the spikes of the layer below; the network's spiking output layer is simulated but
unused. Spike readouts score the output layer's spikes.

State: the network starts every trial at rest (``carry_state=False``, the default) or carries
each batch slot's state into the next batch (``carry_state=True``; BPTT does not
differentiate through the carried state, i.e. truncated BPTT at batch boundaries; a padded
slot of an epoch's last batch advances on silent input).

After each update the weights are clipped to ``[w_min, w_max]`` of the network, as the online
trainer does. Everything is a pure function of its arguments; an epoch is one ``lax.scan`` over
its batches, the trials' events stay on the device, and only one batch is ever dense.

Reference: Zenke & Ganguli (2018), Neural Computation 30(6) (SuperSpike); Zenke & Vogels
(2021), Neural Computation 33(4) and Cramer et al. (2022), IEEE TNNLS (trial training of SNNs
on SHD with surrogate gradients and LI readouts).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import optax

from ssjax._types import Array, PRNGKey, PyTree, Weights
from ssjax.class_errors import class_targets, class_window_code
from ssjax.classification import ClassifierLoss
from ssjax.data.batches import dense_batch, epoch_indices
from ssjax.data.trials import TrialSet
from ssjax.network import NetState, Network, init_state, init_weights, simulate
from ssjax.neuron import LIFParams
from ssjax.optim import clip_weights
from ssjax.readout import li_init, li_readout
from ssjax.rules.base import Block
from ssjax.rules.superspike import SuperSpikeConfig, superspike

__all__ = [
    "RULES",
    "TrialMetrics",
    "TrialSpec",
    "TrialState",
    "evaluate_trials",
    "forward",
    "init_trial_state",
    "train_epoch",
    "train_step",
    "trial_loss",
]

RULES = ("bptt", "superspike")


@dataclasses.dataclass(frozen=True)
class TrialSpec:
    """Static description of trial training (hashable; a jit static argument).

    net: the network ``(N_in, hidden..., C)``, one output per class.
    rule: ``bptt`` or ``superspike``.
    readout: the classification readout and loss (:class:`ssjax.classification.ClassifierLoss`).
    superspike: the SuperSpike rule's settings (feedback, route, filters; its ``error`` picks
      the per-class error: ``window`` or ``van_rossum`` target trains).
    window_start, window_stop: the window of opportunity (s from trial onset); ``None`` stop:
      the trial's end.
    target_times: the correct output's target spike times (s), for ``error: van_rossum``.
    error_tail: silence (s) appended to each trial for SuperSpike: the filtered error of a miss
      at the window's end and the decaying eligibility traces meet there (in the paper's XOR
      the stream's next gap plays that part); 50 ms = 5 ``tau_decay`` by default.
    carry_state: carry each batch slot's network (and rule) state into the next batch.
    """

    net: Network
    rule: str = "bptt"
    readout: ClassifierLoss = dataclasses.field(default_factory=ClassifierLoss)
    superspike: SuperSpikeConfig = dataclasses.field(
        default_factory=lambda: SuperSpikeConfig(error="window")
    )
    window_start: float = 0.0
    window_stop: float | None = None
    target_times: tuple[float, ...] = (0.01,)
    error_tail: float = 0.05
    carry_state: bool = False

    def __post_init__(self):
        if self.rule not in RULES:
            raise ValueError(f"TrialSpec.rule must be one of {RULES}, got {self.rule!r}")
        if self.rule == "superspike" and self.readout.outputs != "spikes":
            raise ValueError(
                f"SuperSpike trains the output spikes: readout {self.readout.name!r} scores an "
                "LI membrane; use count_ce, count_mse or first_spike"
            )
        if self.readout.outputs == "membrane" and not isinstance(self.net.neuron, LIFParams):
            raise ValueError(
                f"the LI readout {self.readout.name!r} takes LIF's membrane parameters; the "
                f"network's neuron is {type(self.net.neuron).__name__}"
            )
        if self.error_tail < 0:
            raise ValueError(f"error_tail must be >= 0 s, got {self.error_tail}")
        if self.window_start < 0 or (
            self.window_stop is not None and self.window_stop <= self.window_start
        ):
            raise ValueError(
                f"window [{self.window_start}, {self.window_stop}) s must have 0 <= start < stop"
            )

    @property
    def n_classes(self) -> int:
        return self.net.sizes[-1]

    def window_steps(self, n_steps: int) -> tuple[int, int]:
        """The window ``[start, stop)`` in steps of a trial of ``n_steps`` (stop clipped to it)."""
        dt = self.net.neuron.dt
        stop = n_steps if self.window_stop is None else round(self.window_stop / dt)
        start = round(self.window_start / dt)
        if not 0 <= start < min(stop, n_steps):
            raise ValueError(
                f"the window [{self.window_start}, {self.window_stop}) s is empty in a trial of "
                f"{n_steps} steps of {dt} s"
            )
        return start, min(stop, n_steps)

    def targets(self, labels: Array, n_steps: int, dtype) -> Array:
        """SuperSpike's per-class targets ``[T, B, C]``: window codes or target trains."""
        c = self.n_classes
        if self.superspike.error == "window":
            start, stop = self.window_steps(n_steps)
            return class_window_code(labels, c, n_steps, start, stop, dtype)
        steps = [round(t / self.net.neuron.dt) for t in self.target_times]
        return class_targets(labels, c, n_steps, steps, dtype)


class TrialState(NamedTuple):
    """What trial training carries: weights, optimiser state, the rule's state (SuperSpike: the
    per-trial start state with its feedback matrices; BPTT: ``()``), the carried per-slot state
    (``()`` unless ``carry_state``), and the number of updates so far."""

    weights: Weights
    opt_state: optax.OptState
    rule: PyTree
    carry: PyTree
    step: Array


class TrialMetrics(NamedTuple):
    """Per minibatch: mean loss and accuracy over its valid trials, and their number."""

    loss: Array
    accuracy: Array
    n: Array


def _rule(spec: TrialSpec):
    return superspike(spec.net, spec.superspike)


def _membrane(spec: TrialSpec) -> bool:
    return spec.readout.outputs == "membrane"


def _carry0(spec: TrialSpec, batch: int, weights: Weights, rule_state, dtype) -> PyTree:
    """The resting per-slot state for ``batch`` slots."""
    if spec.rule == "superspike":
        return jax.tree.map(lambda a: jnp.broadcast_to(a, (batch, *a.shape)), rule_state)
    net = spec.net
    li = (
        li_init(cast(LIFParams, net.neuron), (batch, net.sizes[-1]), dtype)
        if _membrane(spec)
        else ()
    )
    return (init_state(net, (batch,), dtype), li)


def init_trial_state(
    spec: TrialSpec,
    tx: optax.GradientTransformation,
    key: PRNGKey,
    dtype=jnp.float32,
    *,
    batch_size: int | None = None,
) -> TrialState:
    """Fresh state: weights (:func:`ssjax.network.init_weights`) and the rule's state (feedback
    matrices) from ``key``; ``batch_size`` is needed with ``carry_state``."""
    k_w, k_rule = jax.random.split(key)
    weights = init_weights(spec.net, k_w, dtype)
    rule_state = _rule(spec).init(weights, k_rule) if spec.rule == "superspike" else ()
    carry: PyTree = ()
    if spec.carry_state:
        if batch_size is None:
            raise ValueError("carry_state needs the batch_size of the slots to carry")
        carry = _carry0(spec, batch_size, weights, rule_state, dtype)
    return TrialState(weights, tx.init(weights), rule_state, carry, jnp.zeros((), jnp.int32))


def forward(spec: TrialSpec, weights: Weights, x: Array, carry: PyTree = ()):
    """The readout's outputs ``[T, B, C]`` (LI potentials in V, or output spikes), the
    simulation's record, and the state to carry on.

    ``x`` ``[T, B, N_in]``; ``carry``: ``(NetState, LI state)`` per slot, or ``()`` (rest).
    """
    net = spec.net
    net_state: NetState | None = carry[0] if carry else None
    final, rec = simulate(net, weights, x, net_state)
    if not _membrane(spec):
        return rec.spikes[-1], rec, ((final, ()) if carry else ())
    below = rec.spikes[-2] if net.n_layers > 1 else x
    li_state = carry[1] if carry else None
    li_final, u = li_readout(
        cast(LIFParams, net.neuron), below, weights[net.n_layers - 1], li_state
    )
    return u, rec, ((final, li_final) if carry else ())


def _masked_mean(v: Array, mask: Array) -> Array:
    m = mask.astype(v.dtype)
    return jnp.sum(v * m) / jnp.maximum(jnp.sum(m), 1)


def trial_loss(spec: TrialSpec, weights: Weights, x: Array, labels: Array, mask: Array, carry=()):
    """BPTT's objective: the readout's loss averaged over the valid trials; ``(loss, aux)``
    with ``aux = (accuracy, carry)``."""
    out, _, carry = forward(spec, weights, x, carry)
    dt = spec.net.neuron.dt
    loss = _masked_mean(spec.readout.losses(out, labels, dt), mask)
    correct = spec.readout.predict(out, dt) == labels
    return loss, (_masked_mean(correct, mask), carry)


def _superspike_updates(spec: TrialSpec, state: TrialState, x, labels, mask):
    """Each trial as one block of the rule, from the rule's trial state (or the slot's carried
    state); the updates averaged over the valid trials."""
    rule = _rule(spec)
    n_steps = x.shape[0]
    tgt = spec.targets(labels, n_steps, x.dtype)
    tail = round(spec.error_tail / spec.net.neuron.dt)
    if tail:  # silence after the trial, in which the error still meets the traces
        x = jnp.concatenate([x, jnp.zeros((tail, *x.shape[1:]), x.dtype)])
        tgt = jnp.concatenate([tgt, jnp.zeros((tail, *tgt.shape[1:]), tgt.dtype)])
    starts = state.carry if spec.carry_state else None

    def one(xb, yb, st):
        return rule.update(state.weights, st, Block(xb, yb))

    if starts is None:
        out = jax.vmap(one, in_axes=(1, 1, None))(x, tgt, state.rule)
    else:
        out = jax.vmap(one, in_axes=(1, 1, 0))(x, tgt, starts)
    m = mask.astype(x.dtype)
    n = jnp.maximum(jnp.sum(m), 1)
    grads = jax.tree.map(lambda u: jnp.tensordot(m, u, axes=1) / n, out.updates)
    spikes = jnp.moveaxis(out.record.spikes[-1], 0, 1)[:n_steps]  # [B, T, C] -> [T, B, C]
    dt = spec.net.neuron.dt
    loss = _masked_mean(spec.readout.losses(spikes, labels, dt), mask)
    acc = _masked_mean(spec.readout.predict(spikes, dt) == labels, mask)
    carry = out.state if spec.carry_state else ()
    return grads, loss, acc, carry


def train_step(
    spec: TrialSpec,
    tx: optax.GradientTransformation,
    state: TrialState,
    x: Array,
    labels: Array,
    mask: Array | None = None,
) -> tuple[TrialState, TrialMetrics]:
    """One minibatch ``x [T, B, N_in]``, ``labels [B]`` (``mask [B]``: the valid trials): the
    rule's updates through ``tx``, weights clipped to the network's bounds."""
    mask = jnp.ones(labels.shape, bool) if mask is None else mask
    if spec.rule == "bptt":
        grad_fn = jax.value_and_grad(trial_loss, argnums=1, has_aux=True)
        (loss, (acc, carry)), grads = grad_fn(spec, state.weights, x, labels, mask, state.carry)
        carry = jax.lax.stop_gradient(carry)
    else:
        grads, loss, acc, carry = _superspike_updates(spec, state, x, labels, mask)
    updates, opt_state = tx.update(grads, state.opt_state, state.weights)
    net = spec.net
    weights = clip_weights(optax.apply_updates(state.weights, updates), net.w_min, net.w_max)
    metrics = TrialMetrics(loss, acc, jnp.sum(mask.astype(jnp.int32)))
    return TrialState(weights, opt_state, state.rule, carry, state.step + 1), metrics


@functools.partial(jax.jit, static_argnames=("spec", "tx", "shuffle", "drop_last", "spikes"))
def train_epoch(
    spec: TrialSpec,
    tx: optax.GradientTransformation,
    state: TrialState,
    trials: TrialSet,
    key: PRNGKey | None,
    *,
    shuffle: bool = True,
    drop_last: bool = False,
    spikes: str = "count",
) -> tuple[TrialState, TrialMetrics]:
    """One epoch over ``trials`` (:meth:`~ssjax.data.TrialSet.with_batch` fixes ``B``), in the
    order drawn from ``key`` (:func:`ssjax.data.epoch_key`), as one ``lax.scan`` over batches;
    returns the state and per-batch :class:`TrialMetrics` ``[n_batches]``."""
    _check_trials(spec, trials)
    assert trials.batch_size is not None
    idx, mask = epoch_indices(
        key, trials.n_trials, trials.batch_size, drop_last=drop_last, shuffle=shuffle
    )
    dtype = state.weights[0].dtype

    def body(st, batch):
        x, labels = dense_batch(trials, *batch, dtype=dtype, spikes=spikes)
        return train_step(spec, tx, st, x, labels, batch[1])

    return jax.lax.scan(body, state, (idx, mask))


@functools.partial(jax.jit, static_argnames=("spec", "spikes"))
def evaluate_trials(
    spec: TrialSpec, weights: Weights, trials: TrialSet, *, spikes: str = "count"
) -> dict[str, Any]:
    """Loss and accuracy of ``weights`` on every trial of ``trials`` (in order, from rest, no
    learning): ``{"loss", "accuracy"}`` averaged over trials, ``"predictions"`` ``[n_trials]``."""
    _check_trials(spec, trials)
    assert trials.batch_size is not None
    idx, mask = epoch_indices(None, trials.n_trials, trials.batch_size, shuffle=False)
    dt = spec.net.neuron.dt

    def body(_, batch):
        x, labels = dense_batch(trials, *batch, dtype=weights[0].dtype, spikes=spikes)
        out, _, _ = forward(spec, weights, x)
        losses = spec.readout.losses(out, labels, dt)
        pred = spec.readout.predict(out, dt)
        return None, (losses, pred)

    _, (losses, pred) = jax.lax.scan(body, None, (idx, mask))
    valid = mask.reshape(-1)
    losses, pred = losses.reshape(-1), pred.reshape(-1)
    labels = jnp.asarray(trials.labels)
    n = trials.n_trials
    return {
        "loss": _masked_mean(losses, valid),
        "accuracy": jnp.mean((pred[:n] == labels).astype(losses.dtype)),
        "predictions": pred[:n],
    }


def _check_trials(spec: TrialSpec, trials: TrialSet) -> None:
    net = spec.net
    if trials.batch_size is None:
        raise ValueError("the trials need a batch size: pass trials.with_batch(batch_size)")
    if trials.n_units != net.sizes[0]:
        raise ValueError(
            f"the trials have {trials.n_units} input units, the network {net.sizes[0]} inputs"
        )
    if trials.n_classes is not None and trials.n_classes > net.sizes[-1]:
        raise ValueError(
            f"the trials have {trials.n_classes} classes, the network {net.sizes[-1]} outputs"
        )
    if abs(trials.dt - net.neuron.dt) > 1e-12 * max(trials.dt, net.neuron.dt):
        raise ValueError(f"the trials' dt {trials.dt} s differs from neuron.dt {net.neuron.dt} s")
