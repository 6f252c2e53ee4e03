"""SuperSpike's static config, traced hyper-parameters and the state it carries across blocks.

Static (:class:`SuperSpikeConfig`, hashable, a jit static argument): the feedback strategy, the
eligibility and error filter ``alpha`` (``tau_rise``, ``tau_decay``, s), the Hebbian delay (s),
the choice of ``sigma'``, the regulariser's settings and the route (``method``).

Traced (:class:`SuperSpikeHyper`, derived on the host by :meth:`SuperSpikeConfig.hyper`): the
regulariser's strength ``rho`` (in this rule's units, ``het_rho * rho_scale``) and exponent
``a``, and the surrogate's steepness ``beta`` (1/V, the network neuron's ``surrogate.beta``),
never compile-time constants, so configs that differ only in them share one program
(:meth:`SuperSpikeConfig.structure`, and ``Network.structure`` for ``beta``). ``rho_scale``
depends on ``beta`` (the reference code's ``sigma'`` carries it) and stays a host value.

Carried (:class:`SuperSpikeState`, one sample, no batch axis): the network state, the output
error filter ``[N_out]``, per layer the PSP trace ``[N_pre]``, the eligibility filter
``[N_pre, N_post]``, the Hebbian delay lines ``[d, N]`` and the regulariser's trace ``[N_post]``
(:class:`LayerTraces`), the window state and the feedback matrices.

Reference: Zenke & Ganguli (2018), eqs. (9)-(13) and Methods; SUPERSPIKE.md 2.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax.numpy as jnp

from ssjax._types import Array, PyTree
from ssjax.filters import DoubleExpState, double_exp_init
from ssjax.losses import VanRossum, WindowState
from ssjax.network import NetState, Network, init_state
from ssjax.rules.feedback import check_feedback
from ssjax.rules.regulariser import rho_scale

METHODS = ("dense", "event", "stepwise")


@dataclasses.dataclass(frozen=True)
class SuperSpikeConfig:
    """Static settings of the SuperSpike rule (hashable).

    feedback: ``symmetric``, ``random``, ``uniform`` or ``none``.
    tau_rise, tau_decay: eligibility and error filter (s); 5 ms and 10 ms in the paper.
    hebbian_delay: delay of the Hebbian term (s, multiple of dt); the reference code's 0.8 ms.
    sigma_prime: ``surrogate`` (the neuron's surrogate derivative) or ``one`` (sigma' = 1).
    het_rho, het_a, het_tau: heterosynaptic regulariser ``rho w z^a`` on ``het_layers``
      (``hidden`` or ``all``); ``z`` jumps by 1 per spike and decays with ``het_tau`` (s).
      ``het_rho`` is in the reference code's units (the paper's ``rho = 1``), converted to
      this rule's normalisation by :func:`ssjax.rules.regulariser.rho_scale`.
    het_error_dependent: the reference code's error-dependent variant, which multiplies the
      regulariser by ``e_i^2`` (see :func:`ssjax.rules.superspike._terms.regulariser`).
    method: ``dense`` (default), ``event`` (event-driven input currents and eligibility sums:
      faster, equal to float rounding) or ``stepwise``.
    max_spikes: steps carrying presynaptic spikes, per block and layer, that the ``event``
      route gathers (>= 1); a block with more uses the dense sum.
    error: ``van_rossum`` (targets are spike trains: ``delta = S^ - S``) or ``window`` (targets
      are window annotations and ``delta`` the window-of-opportunity error spikes of
      :func:`ssjax.losses.window_error`, for classification tasks).
    """

    feedback: str = "symmetric"
    tau_rise: float = 5e-3
    tau_decay: float = 10e-3
    hebbian_delay: float = 0.0
    sigma_prime: str = "surrogate"
    het_rho: float = 0.0
    het_a: float = 4.0
    het_tau: float = 0.1
    het_error_dependent: bool = False
    het_layers: str = "hidden"
    method: str = "dense"
    max_spikes: int = 4096
    error: str = "van_rossum"

    def __post_init__(self):
        check_feedback(self.feedback)
        if not 0 < self.tau_rise < self.tau_decay:
            raise ValueError(
                "SuperSpikeConfig.tau_rise and tau_decay need 0 < tau_rise < tau_decay, "
                f"got {self.tau_rise}, {self.tau_decay}"
            )
        if not self.hebbian_delay >= 0:
            raise ValueError(
                f"SuperSpikeConfig.hebbian_delay must be >= 0 s, got {self.hebbian_delay}"
            )
        if self.sigma_prime not in ("surrogate", "one"):
            raise ValueError(
                "SuperSpikeConfig.sigma_prime must be 'surrogate' or 'one', "
                f"got {self.sigma_prime!r}"
            )
        if not (self.het_rho >= 0 and math.isfinite(self.het_rho)):
            raise ValueError(f"SuperSpikeConfig.het_rho must be >= 0, got {self.het_rho}")
        if not self.het_a >= 0:
            raise ValueError(f"SuperSpikeConfig.het_a must be >= 0, got {self.het_a}")
        if not self.het_tau > 0:
            raise ValueError(f"SuperSpikeConfig.het_tau must be > 0 s, got {self.het_tau}")
        if self.het_layers not in ("hidden", "all"):
            raise ValueError(
                f"SuperSpikeConfig.het_layers must be 'hidden' or 'all', got {self.het_layers!r}"
            )
        if self.method not in METHODS:
            raise ValueError(
                f"SuperSpikeConfig.method must be one of {METHODS}, got {self.method!r}"
            )
        if self.error not in ("van_rossum", "window"):
            raise ValueError(
                f"SuperSpikeConfig.error must be 'van_rossum' or 'window', got {self.error!r}"
            )
        if not (isinstance(self.max_spikes, int) and self.max_spikes >= 1):
            raise ValueError(
                f"SuperSpikeConfig.max_spikes must be an int >= 1, got {self.max_spikes}"
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
        rho = 0.0
        if self.het_rho > 0:
            rho = self.het_rho * rho_scale(
                net.neuron,
                self.tau_rise,
                self.tau_decay,
                self.sigma_prime,
                self.het_error_dependent,
            )
        return SuperSpikeHyper(rho=rho, a=self.het_a, beta=net.neuron.surrogate.beta)

    def structure(self) -> SuperSpikeConfig:
        """This config with its traced fields canonical: equal for configs that differ only in
        them, so they share one compiled program (``het_rho > 0`` stays: it decides whether
        the regulariser is computed at all)."""
        return dataclasses.replace(self, het_rho=float(self.het_rho > 0), het_a=4.0)

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
    (``het_rho * rho_scale``), ``a`` its exponent, ``beta`` the surrogate's steepness (1/V) in
    ``sigma'`` and the simulation. Floats or scalar arrays."""

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
    for n_pre, n_post in zip(net.sizes[:-1], net.sizes[1:], strict=True):
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
