"""The SuperSpike three-factor rule (Zenke & Ganguli 2018): per-step reference and exact blocks.

For a synapse from presynaptic ``j`` to neuron ``i`` of any layer (SUPERSPIKE.md 2, 2.1):

    x_ij[t]   = sigma'(U_i[t - d]) z_j[t - d]                 Hebbian term, optional delay d
    lambda_ij = alpha * x_ij                                    eligibility trace
    m_ij      = sum_{t in block} e_i[t] lambda_ij[t]
              - rho w_ij sum_t z^het_i[t]^a (e_i[t]^2)          heterosynaptic regulariser
    g_ij      = m_ij / K                                        once per block of K steps

``z_j = epsilon * S_j`` is the presynaptic PSP trace, integrated exactly like the neuron
(:func:`ssjax.neuron.psp_trace_step`), so that it *is* ``dU_i/dw_ij`` when the reset is ignored;
``alpha`` is the unit-integral double exponential (``tau_rise`` 5 ms, ``tau_decay`` 10 ms) of
:mod:`ssjax.filters`, also used for the error ``e = alpha * (S^ - S)`` of the output layer;
hidden errors come from :mod:`ssjax.rules.feedback`. Traces and filters are never reset. The
reference code filters with Euler traces of other gains and its ``sigma'`` carries ``beta``, so
its ``e lambda`` is a constant ``kappa`` (about ``dt tau_rise beta = 5e-4``) times ours.
RMaxProp cancels that factor only without the regulariser: ``regularizer.rho`` is given in the
reference code's units and converted by :func:`ssjax.rules.regulariser.rho_scale`, which
derives ``kappa``.

Modules, one concept each:

- :mod:`.config`: :class:`SuperSpikeConfig` (static), :class:`SuperSpikeHyper` (traced),
  :class:`SuperSpikeState` and :class:`LayerTraces` (carried), :func:`init_rule_state`;
- :mod:`.reference`: :func:`block_stepwise`, the per-step definition;
- :mod:`.dense`: :func:`block_blocked`, the block's sums as matrix products;
- :mod:`.event`: the same sums over spike-carrying steps only;
- :mod:`._adjoint`: the closed forms the fast routes share (PSP trace, post-side signals,
  adjoints); :mod:`._terms`: the terms every route evaluates alike;
- :mod:`.routes`: :func:`superspike_grads`, the one place that picks a route, and the
  :func:`superspike` learning rule.

Shapes are time-major (``[K, N]`` per sample); SI units (s, V). Reference: Zenke & Ganguli
(2018), eqs. (9)-(13) and Methods; reference code fzenke/pub2018superspike.
"""

from ssjax.rules.superspike.config import (
    METHODS,
    BlockAux,
    LayerTraces,
    SuperSpikeConfig,
    SuperSpikeHyper,
    SuperSpikeState,
    init_rule_state,
)
from ssjax.rules.superspike.dense import block_blocked
from ssjax.rules.superspike.reference import block_stepwise
from ssjax.rules.superspike.routes import input_leaves, superspike, superspike_grads

__all__ = [
    "METHODS",
    "BlockAux",
    "LayerTraces",
    "SuperSpikeConfig",
    "SuperSpikeHyper",
    "SuperSpikeState",
    "block_blocked",
    "block_stepwise",
    "init_rule_state",
    "input_leaves",
    "superspike",
    "superspike_grads",
]
