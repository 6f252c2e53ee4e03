"""SuperSpike's per-step reference form: every synapse's filters advanced every step.

For a synapse from presynaptic ``j`` to neuron ``i`` of any layer (SUPERSPIKE.md 2, 2.1):

    x_ij[t]   = sigma'(U_i[t - d]) z_j[t - d]                 Hebbian term, optional delay d
    lambda_ij = alpha * x_ij                                    eligibility trace
    m_ij      = sum_{t in block} e_i[t] lambda_ij[t]
              - rho w_ij sum_t z^het_i[t]^a (e_i[t]^2)          heterosynaptic regulariser
    g_ij      = m_ij / K                                        once per block of K steps

``z_j`` is the presynaptic PSP trace of the neuron (its ``psp_step``), ``alpha`` the double
exponential filter of :mod:`ssjax.filters`, carried per synapse as ``(D, R)`` with
``lambda = (D - R)/(tau_d - tau_r)``. This is the reference code's integration, one ``lax.scan``
step per time step, with state ``[N_pre, N_post]`` per layer: the definition the fast routes
(:mod:`.dense`, :mod:`.event`) are tested against. Inputs ``[K, N_in]`` and targets
``[K, N_out]`` are one sample, time-major; weights in V, time in s.

The route uses the network's neurons through the neuron contract only
(:class:`ssjax.neurons.base.Neuron`: ``step``, ``surrogate_grad``, ``psp_init``, ``psp_step``),
so it runs any neuron model, where the fast routes need LIF's closed forms.

Recurrent connections (``network.recurrent``): a recurrent synapse ``R_ij`` of hidden layer
``l`` is one more synapse of that layer, its presynaptic spikes the layer's own (after the
recurrent delay ``d_r``): ``x_ij = sigma'(U_i) z_j`` with ``z_j`` the PSP trace of neuron ``j``'s
arriving spikes, and the error ``e_i`` of layer ``l``. This **ignores the recurrent Jacobian**
(how a weight change alters later spikes of the same layer, and through them ``U_i``), as the
feed-forward rule ignores the reset: the eligibility is the one-step, reset-free ``dU_i/dR_ij``.
BPTT (:mod:`ssjax.rules.bptt`) differentiates the recurrence in full.

Reference: Zenke & Ganguli (2018), eqs. (9)-(12) and Methods; reference code
fzenke/pub2018superspike (``SuperSpikeConnection``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ssjax._types import Array, Weights
from ssjax.filters import decay_factor, double_exp_step
from ssjax.network import Network, Record, delay_line, network_step
from ssjax.rules.feedback import layer_errors
from ssjax.rules.superspike._terms import (
    finish,
    output_error,
    regularised,
    regulariser,
    sigma_prime,
    trains,
)
from ssjax.rules.superspike.config import (
    BlockAux,
    LayerTraces,
    SuperSpikeConfig,
    SuperSpikeHyper,
    SuperSpikeState,
)


def block_stepwise(
    net: Network,
    cfg: SuperSpikeConfig,
    weights: Weights,
    inputs: Array,
    targets: Array,
    state: SuperSpikeState,
    *,
    hyper: SuperSpikeHyper | None = None,
):
    """Reference form: every synapse's filters advanced every step (SUPERSPIKE.md 2.1).

    Args:
      net, cfg: static network and rule settings.
      weights: per-layer ``[N_pre, N_post]`` (V), fixed within the block.
      inputs: ``[K, N_in]``; targets: ``[K, N_out]`` (one sample, time-major).
      state: :class:`SuperSpikeState` carried in (its ``feedback`` is used).
      hyper: traced hyper-parameters; ``cfg.hyper(net)`` if None.

    Returns:
      ``(grads, state, BlockAux)``; ``grads`` in the optax sign, shaped like ``weights``.
    """
    dt, n_layers, post = net.neuron.dt, net.n_layers, net.post_layers()
    hyper = cfg.hyper(net) if hyper is None else hyper
    feedback = state.feedback
    a_h = decay_factor(cfg.regularizer.tau, dt)

    def step(carry, xs):
        rs, ms = carry
        s_in, target = xs
        net_state, spikes, us, arriving = network_step(net, weights, rs.net, s_in, hyper.beta)
        delta, win = output_error(cfg, target[None], spikes[-1][None], rs.win)
        err, e_out = double_exp_step(rs.err, delta[0], cfg.tau_rise, cfg.tau_decay, dt)
        errs = layer_errors(e_out, weights[:n_layers], feedback, cfg.feedback)
        layers, new_ms = [], []
        for k, (tr, m) in enumerate(zip(rs.layers, ms, strict=True)):
            l = post[k]  # weights[k] projects to layer l (a recurrent matrix: k >= n_layers)
            sig = sigma_prime(net, cfg, us[l], hyper.beta)
            sig_d, sig_buf = delay_line(tr.sig_buf, sig[None])
            spk_d, spk_buf = delay_line(tr.spk_buf, arriving[k][None])
            psp, z = net.neuron.psp_step(tr.psp, spk_d[0])
            elig, lam = double_exp_step(
                tr.elig, z[:, None] * sig_d[0][None, :], cfg.tau_rise, cfg.tau_decay, dt
            )
            m = m + lam * errs[l][None, :]
            het = tr.het
            if regularised(cfg, l, n_layers):
                het = a_h * tr.het + spikes[l]
                m = m - regulariser(cfg, hyper, weights[k], het[None], errs[l][None])
            layers.append(LayerTraces(psp, elig, sig_buf, spk_buf, het))
            new_ms.append(m)
        out = (spikes, us, errs)
        new = SuperSpikeState(net_state, err, tuple(layers), win)  # feedback: a constant
        return (new, tuple(new_ms)), out

    m0 = tuple(jnp.zeros_like(w) for w in weights)
    carry = (state._replace(feedback=()), m0)  # the feedback matrices are closed over, not carried
    (state, ms), (spikes, us, errs) = jax.lax.scan(step, carry, (inputs, targets))
    state = state._replace(feedback=feedback)
    k = inputs.shape[0]
    grads = tuple(finish(m, k, trains(cfg, l, n_layers)) for l, m in zip(post, ms, strict=True))
    return grads, state, BlockAux(Record(spikes, us), errs)
