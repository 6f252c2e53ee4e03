"""SuperSpike's static config, traced hyper-parameters and the state it carries across blocks.

Static (:class:`SuperSpikeConfig`, hashable, a jit static argument): the feedback strategy, the
eligibility and error filter ``alpha`` (``tau_rise``, ``tau_decay``, s), the Hebbian delay (s),
the choice of ``sigma'``, the regulariser's settings and the route (``method``).

Traced (:class:`SuperSpikeHyper`, derived on the host by :meth:`SuperSpikeConfig.hyper`): the
regulariser's strength ``rho`` (in this rule's units, ``regularizer.rho * rho_scale``) and exponent
``a``, and the surrogate's steepness ``beta`` (1/V, the network neuron's ``surrogate.beta``),
never compile-time constants, so configs that differ only in them share one program
(:meth:`SuperSpikeConfig.structure`, and ``Network.structure`` for ``beta``). ``rho_scale``
depends on ``beta`` (the reference code's ``sigma'`` carries it) and stays a host value.

Carried (:class:`SuperSpikeState`, one sample, no batch axis): the network state, the output
error filter ``[N_out]``, per layer the PSP trace ``[N_pre]``, the eligibility filter
``[N_pre, N_post]``, the Hebbian delay lines ``[d, N]`` and the regulariser's trace ``[N_post]``
(:class:`LayerTraces`, one per weight matrix: feed-forward, then recurrent), the window state and
the feedback matrices.

Reference: Zenke & Ganguli (2018), eqs. (9)-(13) and Methods; SUPERSPIKE.md 2.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, NamedTuple

import jax.numpy as jnp

from ssjax._types import Array, PyTree
from ssjax.filters import DoubleExpState, double_exp_init
from ssjax.losses import VanRossum, WindowState
from ssjax.network import NetState, Network, init_state
from ssjax.params import borrow, check_fields, choice, int_ge, multiple_of, param
from ssjax.rules.feedback import FEEDBACKS
from ssjax.rules.regulariser import Regularizer, rho_scale

METHODS = ("dense", "event", "stepwise")


@dataclasses.dataclass(frozen=True)
class SuperSpikeConfig:
    """Static settings of the SuperSpike rule (hashable).

    feedback: ``symmetric``, ``random``, ``uniform`` or ``none``.
    tau_rise, tau_decay: eligibility and error filter (s); 5 ms and 10 ms in the paper.
    hebbian_delay: delay of the Hebbian term (s, multiple of dt); the reference code's 0.8 ms.
    sigma_prime: ``surrogate`` (the neuron's surrogate derivative) or ``one`` (sigma' = 1).
    regularizer: the heterosynaptic regulariser ``rho w z^a``
      (:class:`ssjax.rules.regulariser.Regularizer`; off at ``rho = 0``), ``rho`` in the
      reference code's units, converted by :func:`ssjax.rules.regulariser.rho_scale`.
    method: ``dense`` (default), ``event`` (event-driven input currents and eligibility sums:
      faster, equal to float rounding) or ``stepwise``.
    max_spikes: steps carrying presynaptic spikes, per block and layer, that the ``event``
      route gathers (>= 1); a block with more uses the dense sum.
    error: ``van_rossum`` (targets are spike trains: ``delta = S^ - S``) or ``window`` (targets
      are window annotations and ``delta`` the window-of-opportunity error spikes of
      :func:`ssjax.losses.window_error`, for classification tasks).
    """

    SCOPE: ClassVar[str] = "rule"

    feedback: str = param("symmetric", choice(FEEDBACKS), doc="credit assignment to hidden layers")
    tau_rise: float = borrow(VanRossum, "tau_rise")
    tau_decay: float = borrow(VanRossum, "tau_decay")
    hebbian_delay: float = param(
        0.0, multiple_of("neuron.dt"), doc="delay of the Hebbian term (s); the code's is 8e-4"
    )
    sigma_prime: str = param(
        "surrogate", choice(("surrogate", "one")), doc="surrogate derivative, or sigma' = 1"
    )
    method: str = param("dense", choice(METHODS), doc="dense | event | stepwise")
    max_spikes: int = param(4096, int_ge(1), doc="presynaptic spike steps the event route lists")
    regularizer: Regularizer = dataclasses.field(default_factory=Regularizer)
    error: str = "van_rossum"

    def __post_init__(self):
        check_fields(self)
        if self.error not in ("van_rossum", "window"):
            raise ValueError(
                f"SuperSpikeConfig.error must be 'van_rossum' or 'window', got {self.error!r}"
            )

    @property
    def loss(self) -> VanRossum:
        """The error and eligibility filter ``alpha`` (one owner of its constants)."""
        return VanRossum(self.tau_rise, self.tau_decay)

    def hyper(self, net: Network) -> SuperSpikeHyper:
        """The traced hyper-parameters, derived on the host (``rho`` in this rule's units).

        Without the regulariser ``rho`` is 0 and its unit conversion (LIF's) is not needed, so
        any neuron of the contract can run the rule.
        """
        reg = self.regularizer
        rho = 0.0
        if reg.rho > 0:
            rho = reg.rho * rho_scale(
                net.neuron, self.tau_rise, self.tau_decay, self.sigma_prime, reg.error_dependent
            )
        return SuperSpikeHyper(rho=rho, a=reg.a, beta=net.neuron.surrogate.beta)

    def structure(self) -> SuperSpikeConfig:
        """This config with its traced fields canonical: equal for configs that differ only in
        them, so they share one compiled program (``regularizer.rho > 0`` stays: it decides whether
        the regulariser is computed at all)."""
        reg = self.regularizer
        return dataclasses.replace(
            self, regularizer=dataclasses.replace(reg, rho=float(reg.rho > 0), a=4.0)
        )

    def delay_steps(self, dt: float) -> int:
        """Hebbian delay in steps; ValueError if it is not a multiple of ``dt``."""
        d = self.hebbian_delay / dt
        if abs(d - round(d)) > 1e-6:
            raise ValueError(
                f"SuperSpikeConfig.hebbian_delay must be a multiple of dt = {dt} s, "
                f"got {self.hebbian_delay}"
            )
        return int(round(d))


class LayerTraces(NamedTuple):
    """Rule state of one layer, carried across blocks (never reset).

    psp: the neuron's presynaptic PSP trace (of the Hebbian-delayed spikes), ``[N_pre]`` leaves;
      ``(z_syn, z_mem)`` for LIF.
    elig: ``DoubleExpState`` ``[N_pre, N_post]``, the per-synapse eligibility filter.
    sig_buf, spk_buf: ``[d, N_post]`` and ``[d, N_pre]`` Hebbian-delay lines.
    het: ``[N_post]`` postsynaptic activity trace of the regulariser.
    """

    psp: PyTree
    elig: DoubleExpState
    sig_buf: Array
    spk_buf: Array
    het: Array


class SuperSpikeHyper(NamedTuple):
    """Traced hyper-parameters: ``rho`` the regulariser's strength in this rule's units
    (``regularizer.rho * rho_scale``), ``a`` its exponent, ``beta`` the surrogate's steepness
    (1/V) in ``sigma'`` and the simulation. Floats or scalar arrays."""

    rho: Array | float
    a: Array | float
    beta: Array | float


class SuperSpikeState(NamedTuple):
    """Everything SuperSpike carries across blocks besides weights and optimiser: the network
    state (an online rule simulates the network it trains), the output-error filter
    ``[N_out]``, per-layer traces (:class:`LayerTraces`), the open window of the
    window-of-opportunity error ``[N_out]``, and the fixed feedback matrices
    (:func:`ssjax.rules.feedback.init_feedback`; empty for symmetric and none)."""

    net: NetState
    err: DoubleExpState
    layers: tuple[LayerTraces, ...]
    win: WindowState
    feedback: tuple[Array, ...] = ()


def init_rule_state(
    net: Network, cfg: SuperSpikeConfig, dtype=jnp.float32, feedback: tuple = ()
) -> SuperSpikeState:
    """Resting network, zero filters and traces, for one sample (no batch axis); ``feedback``
    as :func:`ssjax.rules.feedback.init_feedback` draws it (needed for random/uniform)."""
    d = cfg.delay_steps(net.neuron.dt)
    layers = []
    for n_pre, n_post in net.weight_shapes():  # feed-forward, then recurrent
        layers.append(
            LayerTraces(
                psp=net.neuron.psp_init((n_pre,), dtype),
                elig=double_exp_init((n_pre, n_post), dtype),
                sig_buf=jnp.zeros((d, n_post), dtype),
                spk_buf=jnp.zeros((d, n_pre), dtype),
                het=jnp.zeros(n_post, dtype),
            )
        )
    n_out = net.sizes[-1]
    return SuperSpikeState(
        init_state(net, (), dtype),
        double_exp_init((n_out,), dtype),
        tuple(layers),
        WindowState(jnp.zeros(n_out, dtype)),
        tuple(feedback),
    )


class BlockAux(NamedTuple):
    """Side results of one block: the record of the simulation and the errors per layer."""

    record: object
    errors: tuple
