"""SuperSpike's routes and its learning rule: the one place that picks a route.

Routes, all exact (they agree to float rounding, tested):

- ``stepwise`` (:func:`ssjax.rules.superspike.reference.block_stepwise`): the per-step
  definition, every synapse's filters advanced every step;
- ``dense`` (default, :func:`ssjax.rules.superspike.dense.block_blocked`): the block's sums as
  matrix products;
- ``event`` (``block_blocked(event_layers=n)``): the dense form, except for the first ``n``
  layers, whose sums and input currents are taken over spike-carrying steps only
  (:mod:`ssjax.rules.superspike.event`). ``method: event`` applies this to every layer, except
  under a seed ``vmap`` with shared inputs (``shared_inputs``): there the deeper layers'
  presynaptic spikes are per seed and the capacity switch would run every branch, so only the
  input layer (whose spikes all seeds share) is event-driven. For one seed, layers of at least
  ``event._PER_SPIKE`` neurons take their currents and sums at the spikes themselves, and the
  top hidden layer's error is computed from the output spikes before filtering
  (:func:`ssjax.rules.superspike.event.event_layer_errors`).

Output layer = gradient: for the output layer, with ``reset_grad=False``, the same surrogate,
no Hebbian delay, no regulariser, and a block that starts with zero traces (PSP, eligibility)
and a network state that is treated as given, ``-g = grad_W L / t_b`` exactly, where ``L`` is
the block's van Rossum loss of :func:`ssjax.rules.bptt.bptt_loss` and ``t_b = K dt``.

Recurrent connections (``network.recurrent``) run on the stepwise route only (its docstring
states the rule's approximation); the fast routes refuse them (:func:`check_neuron`).

Neurons: the stepwise route uses the neuron contract (:class:`ssjax.neurons.base.Neuron`) only;
the dense and event routes implement LIF's closed forms and declare the neuron types they
support (``SUPPORTED_NEURONS`` of :mod:`.dense` and :mod:`.event`). :func:`check_neuron`, called
by :func:`superspike_grads` and :func:`superspike`, refuses other types with an error that names
the type, the route and the stepwise alternative.

Sign: :func:`superspike_grads` returns ``-g`` (optax descent convention), shaped like the
weights ``[N_pre, N_post]``, to be fed to the transformations of :mod:`ssjax.optim`.
:func:`superspike` wraps it in the learning-rule contract of :mod:`ssjax.rules.base`.

Reference: Zenke & Ganguli (2018), eqs. (9)-(12) and Methods; reference code
fzenke/pub2018superspike (``SuperSpikeConnection``).
"""

from __future__ import annotations

import jax

from ssjax._types import Array, PRNGKey, Weights
from ssjax.network import NetState, Network
from ssjax.rules.base import Block, LearningRule, RuleOutput
from ssjax.rules.feedback import init_feedback
from ssjax.rules.superspike.config import (
    SuperSpikeConfig,
    SuperSpikeHyper,
    SuperSpikeState,
    init_rule_state,
)
from ssjax.rules.superspike.dense import SUPPORTED_NEURONS as DENSE_NEURONS
from ssjax.rules.superspike.dense import block_blocked
from ssjax.rules.superspike.event import SUPPORTED_NEURONS as EVENT_NEURONS
from ssjax.rules.superspike.reference import block_stepwise

# the neuron types each fast route supports; the event route runs the dense one for the layers
# it does not make event-driven, so it needs both
ROUTE_NEURONS: dict[str, tuple[type, ...]] = {
    "dense": DENSE_NEURONS,
    "event": tuple(t for t in EVENT_NEURONS if t in DENSE_NEURONS),
}


def check_neuron(net: Network, method: str) -> None:
    """Raise TypeError if route ``method`` does not support the network's neuron type or its
    recurrent connections (the fast routes' closed forms are those of a feed-forward network).

    By exact type: a subclass may change the dynamics the closed forms describe.
    """
    if method != "stepwise" and net.recurrent_layers:
        raise TypeError(
            f"SuperSpike's {method!r} route does not support recurrent connections "
            f"(network.recurrent = {list(net.recurrent)}): its closed forms are those of a "
            "feed-forward network; method='stepwise' supports them"
        )
    supported = ROUTE_NEURONS.get(method)
    if supported is None or type(net.neuron) in supported:
        return
    names = ", ".join(t.__name__ for t in supported)
    raise TypeError(
        f"SuperSpike's {method!r} route does not support the neuron type "
        f"{type(net.neuron).__name__}: its closed forms are those of {names}; "
        "method='stepwise' supports any neuron of the contract ssjax.neurons.base.Neuron"
    )


def superspike_grads(
    net: Network,
    cfg: SuperSpikeConfig,
    weights: Weights,
    inputs: Array,
    targets: Array,
    state: SuperSpikeState,
    *,
    hyper: SuperSpikeHyper | None = None,
    shared_inputs: bool = False,
):
    """SuperSpike updates of one block; ``(grads, state, aux)`` (optax sign).

    The one place that picks the route: ``cfg.method`` ``stepwise``, ``dense`` or ``event``;
    with ``shared_inputs`` (a seed ``vmap`` whose seeds share the inputs) the event route is
    applied to the input layer only, because per-seed event lists of deeper layers would run
    every branch of their capacity switch. The fast routes refuse a neuron type they do not
    support (:func:`check_neuron`); ``stepwise`` runs any neuron of the contract.
    """
    check_neuron(net, cfg.method)
    args = (net, cfg, weights, inputs, targets, state)
    if cfg.method == "stepwise":
        return block_stepwise(*args, hyper=hyper)
    event_layers = 0
    if cfg.method == "event":
        event_layers = 1 if shared_inputs else net.n_layers
    return block_blocked(*args, hyper=hyper, event_layers=event_layers, shared_inputs=shared_inputs)


def superspike(
    net: Network,
    cfg: SuperSpikeConfig,
    *,
    hyper: SuperSpikeHyper | None = None,
    shared_inputs: bool = False,
) -> LearningRule:
    """SuperSpike as a :class:`ssjax.rules.base.LearningRule` (state :class:`SuperSpikeState`).

    ``init(weights, key)`` draws the feedback matrices from ``key``; ``update`` is
    :func:`superspike_grads`. ``hyper``: traced hyper-parameters (``cfg.hyper(net)`` if None).
    ``shared_inputs``: set by whoever ``vmap``s seeds over shared inputs (see
    :func:`superspike_grads`).
    """
    check_neuron(net, cfg.method)  # at construction, before anything is traced
    hyper = cfg.hyper(net) if hyper is None else hyper

    def init(weights: Weights, key: PRNGKey) -> SuperSpikeState:
        dtype = weights[0].dtype
        return init_rule_state(net, cfg, dtype, init_feedback(key, net, cfg.feedback, dtype))

    def update(weights: Weights, state: SuperSpikeState, block: Block) -> RuleOutput:
        grads, new, aux = superspike_grads(
            net,
            cfg,
            weights,
            block.inputs,
            block.targets,
            state,
            hyper=hyper,
            shared_inputs=shared_inputs,
        )
        return RuleOutput(grads, new, aux.record, aux.errors[-1])

    return LearningRule(init, update, _network_state, input_leaves, cfg.loss)


def _network_state(state: SuperSpikeState) -> NetState:
    return state.net


def input_leaves(state: SuperSpikeState):
    """A pytree of bools over ``state``: True for the input layer's axonal delay line
    (:class:`ssjax.network.NetState`) and Hebbian delay line (:class:`LayerTraces`), which hold
    the input stream alone."""
    flags = jax.tree.map(lambda _: False, state)
    net = flags.net._replace(delay=(True,) + tuple(flags.net.delay[1:]))
    layers = (flags.layers[0]._replace(spk_buf=True),) + tuple(flags.layers[1:])
    return flags._replace(net=net, layers=layers)
