"""The learning-rule contract: a rule is a pair of pure functions, as optax's transformations.

A rule sees the network one block at a time (``K`` steps with fixed weights) and returns the
weight updates of that block in optax's descent sign (``w <- w - r g`` for a plain rate), its
new state and what the metrics need::

    rule = superspike(net, SuperSpikeConfig(feedback="random"))    # or bptt(net, BPTTConfig())
    state = rule.init(weights, key)                                # the rule's own state
    out = rule.update(weights, state, Block(inputs, targets))      # RuleOutput
    updates, opt_state = tx.update(out.updates, opt_state, weights)

The state belongs to the rule alone: whatever it must carry across blocks (the network's
membrane state, filters, eligibility traces, feedback matrices) lives there, with a structure
fixed by ``init``. Nothing outside the rule reads or edits its parts, except through the two
accessors every rule provides: :attr:`LearningRule.network_state` (to simulate from the
current state, e.g. for a raster) and :attr:`LearningRule.input_leaves` (which leaves depend on
the input stream alone, so that a seed ``vmap`` can share them, and a skipped block can still
advance them).

A rule also owns its loss settings (:attr:`LearningRule.loss`): the filter its error uses is the
one the metrics normalise with.

Float hyper-parameters (learning rates, regulariser strength, ...) are arguments of the rule's
factory and may be traced values, so that a ``vmap`` over them needs no recompilation.

Reference: optax ``GradientTransformation`` (init/update pairs of pure functions).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from ssjax._types import Array, PRNGKey, PyTree, Weights
from ssjax.losses import VanRossum
from ssjax.network import NetState, Record


class Block(NamedTuple):
    """What a rule sees of one block (one sample, time-major).

    inputs: ``[K, N_in]`` input spike counts; targets: ``[K, N_out]`` target spike counts, or
    window codes for the window error (:func:`ssjax.losses.window_error`).
    """

    inputs: Array
    targets: Array


class RuleOutput(NamedTuple):
    """Result of :attr:`LearningRule.update` for one block.

    updates: optax descent sign, shaped like the weights (``[N_l, N_{l+1}]`` per layer).
    state: the rule's new state (the structure ``init`` returned).
    record: spikes and membrane potentials of every layer, ``[K, N_l]`` each.
    error: ``[K, N_out]`` filtered output error ``alpha * (S^ - S)`` (1/s).
    """

    updates: Weights
    state: PyTree
    record: Record
    error: Array


class LearningRule(NamedTuple):
    """A learning rule: ``init(weights, key) -> state`` and ``update(weights, state, block)``.

    network_state: ``state -> NetState``, the network state the next block starts from.
    input_leaves: ``state -> pytree of bool`` over ``state``, True for the leaves that depend
      on the input stream alone (the same for every seed at a given position).
    loss: the van Rossum filter of the rule's error (its constants, for the metrics).
    """

    init: Callable[[Weights, PRNGKey], PyTree]
    update: Callable[[Weights, PyTree, Block], RuleOutput]
    network_state: Callable[[PyTree], NetState]
    input_leaves: Callable[[PyTree], PyTree]
    loss: VanRossum
