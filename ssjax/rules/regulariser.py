"""SuperSpike's heterosynaptic regulariser, with ``rho`` in the reference code's units.

The regularised rule (Zenke & Ganguli 2018, eq. 13; SUPERSPIKE.md 2.4) accumulates, per block,

    m_ij = sum_t [ e_i[t] lambda_ij[t] - rho w_ij z_i[t]^a ]              (plain)
    m_ij = sum_t [ e_i[t] lambda_ij[t] - rho w_ij z_i[t]^a e_i[t]^2 ]     (error-dependent)

with ``z_i`` the postsynaptic activity trace (``z += 1`` per spike, decay ``tau_het``; the same
in both implementations). ``rho`` is subtracted from ``e lambda``, so its meaning depends on
how ``e`` and ``lambda`` are normalised, and RMaxProp's per-parameter scaling cancels a
constant factor of ``m`` only when ``rho = 0``.

Conversion. The paper's values (``rho = 1``, ``a = 4``) are those of the reference code
(fzenke/pub2018superspike, ``RFSuperSpikeConnection``), whose factors differ from ours by
constant gains. Each gain is the ratio of the two impulse responses' sums over time steps
(their DC gains), with ``a_x = exp(-dt/tau_x)`` and ``S = sum_{k>=0} alpha(k dt) =
(1/(1 - a_d) - 1/(1 - a_r)) / (tau_d - tau_r)`` (about ``1/dt``) the sum of our sampled
unit-integral kernel (:mod:`ssjax.filters`):

- error ``e``: the code low-passes the +-1 spike difference twice with unit-gain Euler traces
  (``y += (x - y) dt/tau``; DC gain 1), ours samples ``alpha`` (DC gain ``S``):
  ``g_e = 1 / S`` (about ``dt``);
- eligibility ``lambda``: the code's first stage sums (``el <- a_r el + x``; DC gain
  ``1/(1 - a_r)``, about ``tau_rise/dt``), its second is a unit-gain Euler trace:
  ``g_lambda = 1 / ((1 - a_r) S)`` (about ``tau_rise``);
- PSP trace ``z_j``: the code's is a unit jump decaying with ``tau_syn`` followed by a unit-gain
  Euler trace with ``tau_mem``, which is ours with the Euler integrator (``g_z = 1``); with the
  exact integrator ``g_z = (1 - a_m) / c`` (``a_m``, ``c``: ``LIFParams.membrane_coeffs``);
- ``sigma'``: the code's is ``beta (1 + |beta (U - theta)|)^-2`` (1/V). Our ``superspike``
  kind is that divided by ``beta`` (``g_sigma = beta``); ``superspike_code``, ``sigmoid`` and
  ``triangular`` carry ``beta`` already, and ``sigma_prime: one`` is the code's
  ``partial_enabled = false`` (which returns 1): ``g_sigma = 1``.

So ``(e lambda)_code = kappa (e lambda)_ours`` with ``kappa = g_sigma g_e g_lambda g_z``
(``5.05e-4`` at the paper's settings: ``dt`` 0.1 ms, 5 ms / 10 ms, ``beta = 1/mV``), and the
code's ``m`` is ``kappa`` times ours exactly when

    rho_ours = rho_code / kappa                       (plain)
    rho_ours = rho_code g_e^2 / kappa                  (error-dependent: e^2 carries g_e^2)

:func:`rho_scale` is that factor; the rule multiplies the configured (code-unit) ``rho`` by it.
The DC gains are exact; the kernels' shapes differ (Euler against exact sampling, one-step
lags), which a per-step replica in the code's discretisation measures at about 1%
(``tests/rules/test_regulariser.py``).

Reference: Zenke & Ganguli (2018), eq. 13 and Fig. 8; reference code ``RFSuperSpikeConnection``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import jax

from ssjax.filters import alpha_sum, decay_factor
from ssjax.neuron import LIFParams
from ssjax.neurons.base import Neuron
from ssjax.params import check_fields, choice, compare, ge, param

Array = jax.Array

# surrogate kinds whose sigma' already carries beta, as the reference code's does (1/V)
_CARRY_BETA = ("superspike_code", "sigmoid", "triangular")


@dataclasses.dataclass(frozen=True)
class Regularizer:
    """The heterosynaptic regulariser ``rho w z^a`` of SuperSpike (hashable; off at ``rho = 0``).

    ``rho`` is in the reference code's units (the paper's ``rho = 1``; :func:`rho_scale`
    converts it), ``a`` the exponent of the activity trace ``z``, which jumps by 1 per spike and
    decays with ``tau`` (s). ``error_dependent``: the reference code's variant that multiplies
    the term by ``e_i^2``. ``layers``: ``hidden`` or ``all``. ``rho`` and ``a`` are traced
    hyper-parameters (:class:`ssjax.rules.superspike.SuperSpikeHyper`).
    """

    SCOPE: ClassVar[str] = "regularizer"

    rho: float = param(0.0, ge(0), doc="strength, reference-code units (the paper's rho = 1)")
    a: float = param(4.0, ge(0), doc="exponent of the activity trace")
    tau: float = param(
        0.1, compare(">", "neuron.dt", " s", lo="> 0 and "), doc="activity trace time constant (s)"
    )
    error_dependent: bool = param(False, doc="multiply by e_i^2 (the reference code's variant)")
    layers: str = param("hidden", choice(("hidden", "all")), doc="regularised layers")

    def __post_init__(self):
        check_fields(self)


def code_gains(
    neuron: Neuron, tau_rise: float, tau_decay: float, sigma_prime: str = "surrogate"
) -> dict[str, float]:
    """The reference code's factors of the SuperSpike rule relative to ours (module docstring).

    Returns ``{"e": g_e, "lambda": g_lambda, "z": g_z, "sigma": g_sigma, "kappa": product}``:
    dimensionless ratios ``code / ours`` of the error (s), eligibility trace (s), PSP trace and
    surrogate derivative (1/V for ``superspike``); ``kappa`` is that of ``e lambda``.
    """
    if not isinstance(neuron, LIFParams):
        raise TypeError(
            "the regulariser's conversion from the reference code's units is derived for LIF "
            f"neurons (LIFParams), got {type(neuron).__name__}; use regularizer.rho = 0 with it"
        )
    dt = neuron.dt
    s = alpha_sum(tau_rise, tau_decay, dt)
    g_e = 1.0 / s
    g_lambda = 1.0 / ((1.0 - decay_factor(tau_rise, dt)) * s)
    a_m, _, c = neuron.membrane_coeffs()
    g_z = (1.0 - a_m) / c
    if sigma_prime == "one" or neuron.surrogate.kind in _CARRY_BETA:
        g_sigma = 1.0
    else:
        g_sigma = neuron.surrogate.beta
    kappa = g_sigma * g_e * g_lambda * g_z
    return {"e": g_e, "lambda": g_lambda, "z": g_z, "sigma": g_sigma, "kappa": kappa}


def rho_scale(
    neuron: Neuron,
    tau_rise: float,
    tau_decay: float,
    sigma_prime: str = "surrogate",
    error_dependent: bool = False,
) -> float:
    """Factor from the reference code's ``rho`` to ours: ``1/kappa``, or ``g_e^2/kappa`` for the
    error-dependent variant (module docstring). About 1980 and 1.98e-5 at the paper's settings.
    """
    g = code_gains(neuron, tau_rise, tau_decay, sigma_prime)
    scale = 1.0 / g["kappa"]
    if error_dependent:
        scale *= g["e"] ** 2
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"regulariser scale must be finite and > 0, got {scale}")
    return scale
