"""SuperSpike's dense route: a block's eligibility sums as matrix products (the default).

Weights are fixed within a block, so by the adjoint of the filter

    sum_t e[t] (alpha * x)[t] = sum_t x[t] (alpha^R * e)[t],       m = z^T @ (sigma' (alpha^R * e))

is one matrix product over the block (``z`` ``[K, N_pre]``, the post-side signals ``[K, N_post]``,
:mod:`._adjoint`). What earlier blocks carry in enters through ``(D0, R0)`` as
``(D0 c_d - R0 c_r)/(tau_d - tau_r)`` with ``c[i] = sum_t e_i[t] a^(t+1)``, and the new ``(D, R)``
are two more products (three ``[K, N_post]`` post-side signals against the same trace). The
trace ``z`` is that of the block's spikes from a zero state plus the closed-form decay of the
carried trace (:func:`dense_products`), so under a seed ``vmap`` with shared inputs the input
layer's trace and product are computed once (and its input currents from one list of spike
steps, :func:`ssjax.rules.superspike.event.event_currents`). A layer with
``N_pre x 3 N_post <= 64`` accumulates the same sums inside its reverse scan instead
(:func:`scan_products`): a few neurons per seed make matrix products that cost more in layout
changes than in arithmetic.

:func:`block_blocked` runs a block this way, except for its first ``event_layers`` layers, which
take the event route (:mod:`.event`). Same arguments and results as
:func:`ssjax.rules.superspike.reference.block_stepwise`, to which it is equal to float rounding
(tested). The closed forms are LIF's (:data:`SUPPORTED_NEURONS`).

Reference: Zenke & Ganguli (2018), eqs. (9)-(12) and Methods; SUPERSPIKE.md 2.1.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from ssjax._types import Array, Weights
from ssjax.filters import DoubleExpState, decay_factor, double_exp_filter, exp_filter
from ssjax.network import Network, arriving_spikes, delay_line, simulate
from ssjax.neuron import LIFParams
from ssjax.rules.feedback import layer_errors
from ssjax.rules.superspike._adjoint import (
    PostArgs,
    post_signals,
    psp_filter_free,
    psp_free_response,
    spike_kernel,
    with_carried,
)
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
from ssjax.rules.superspike.event import (
    _PER_SPIKE,
    event_currents,
    event_layer_errors,
    event_sums,
)

_HIGHEST = jax.lax.Precision.HIGHEST

# the neuron models whose closed forms (PSP trace and its adjoint) this route implements
SUPPORTED_NEURONS: tuple[type, ...] = (LIFParams,)
# N_pre x 3 N_post up to which a layer's sums are accumulated in its reverse scan
# (scan_products) instead of matrix products (measured, CPU)
_TINY = 64
# 3 N_post up to which one seed's three post-side groups share one product (measured, CPU)
_NARROW = 192


def dense_products(params, spikes: Array, psp0: tuple, post: tuple, concat: bool = False):
    """``z^T @ p`` for each group ``p`` ``[K, P]`` of ``post``, for the PSP trace ``z`` of
    ``spikes`` ``[K, N_pre]`` started at ``psp0``.

    ``z`` is the trace of this block's spikes from a zero state plus the free decay of the
    carried state (:func:`psp_filter_free`), so the spike part depends on the spikes alone:
    when every seed sees the same inputs, a seed-vmapped block computes the input layer's
    trace once, and each product is one matrix product over all seeds
    (``[N_pre + 2, K] @ [K, seeds * P]``). ``concat``: one product with the groups side by side
    (faster for a few narrow groups of one seed, where reading ``z`` dominates).
    Returns ``(tuple of [N_pre, P], final psp state)``.
    """
    n_pre = spikes.shape[1]
    z, (syn, mem) = psp_filter_free(params, spikes)
    y0, m0 = psp0

    def carried(prod):
        return prod[:n_pre] + y0[:, None] * prod[n_pre][None] + m0[:, None] * prod[n_pre + 1][None]

    widths = [p.shape[-1] for p in post]
    if concat:
        prod = jnp.matmul(z.T, jnp.concatenate(post, axis=-1), precision=_HIGHEST)
        prods = jnp.split(prod, list(np.cumsum(widths)[:-1]), axis=-1)
    else:
        prods = [jnp.matmul(z.T, p, precision=_HIGHEST) for p in post]
    pre_post = tuple(carried(p) for p in prods)
    psp = (
        syn[:n_pre] + y0 * syn[n_pre],
        mem[:n_pre] + y0 * mem[n_pre] + m0 * mem[n_pre + 1],
    )
    return pre_post, psp


def scan_products(params, spikes: Array, psp0: tuple, post_args: PostArgs, sig_fn=None):
    """``z^T @ post`` as ``sum_t s[t] h[t]^T`` accumulated inside the reverse scan of
    :func:`post_signals` (``post_args``: its ``(tau_rise, tau_decay, dt, e, sig, pows)``).

    For layers so small that a matrix product costs more in layout changes than in arithmetic:
    per seed under a seed ``vmap`` (e.g. 4 hidden neurons -> 1 output), ``[N_pre, K] @ [K, P]``
    per seed is a batched product with transposes of ``[K, seeds, N]`` arrays, while the
    accumulation is ``N_pre x 3 N_post`` multiply-adds per step and writes no ``[K, ...]``
    array. ``spikes``: ``[K, N_pre]``. Returns ``((tuple of [N_pre, N_post], final psp state),
    the reverse filter's final state)``.
    """
    k = spikes.shape[0]
    e = post_args[3]
    free = psp_free_response(params, k, e.dtype)
    pre = (spikes.astype(e.dtype), spike_kernel(free))
    (summed, fin), sums, (a0, b0) = post_signals(*post_args, psp=params, sig_fn=sig_fn, pre=pre)
    _, _, c = params.membrane_coeffs()
    return with_carried(params, free, summed, fin, psp0, [c * b for b in b0], a0), sums


def _block_common(
    net, cfg, hyper, weights, inputs, targets, state, n_currents, shared_inputs, event_errors
):
    """Simulate the block (event-driven currents for the first ``n_currents`` layers) and compute
    everything the dense and event routes share; ``event_errors``: the top hidden layer's error
    from the output's spikes (:func:`ssjax.rules.superspike.event.event_layer_errors`)."""
    dt = net.neuron.dt
    # per spike (a sum of weight rows) for one seed; under a seed vmap one product of the shared
    # rows serves every seed's weights
    currents = (
        functools.partial(event_currents, cfg.max_spikes, per_spike=not shared_inputs),
    ) * n_currents
    # the simulation is not differentiated, so the scans may write their outputs over their
    # inputs; not under a seed vmap, where the carried [seeds, K, N] arrays are seed-major and
    # 64 seeds of 100-4-1 ran 1.1-1.2x slower (measured, CPU)
    overwrite = not shared_inputs
    net_state, rec = simulate(
        net, weights, inputs, state.net, currents, overwrite=overwrite, beta=hyper.beta
    )
    delta, win = output_error(cfg, targets, rec.spikes[-1], state.win)
    e_out, err = double_exp_filter(
        delta, cfg.tau_rise, cfg.tau_decay, dt, state=state.err, overwrite=overwrite
    )
    if event_errors and net.n_layers > 1 and cfg.feedback != "none":
        filt = (cfg.tau_rise, cfg.tau_decay, dt)
        errs = event_layer_errors(
            delta, state.err, e_out, weights, state.feedback, cfg.feedback, filt
        )
    else:
        errs = layer_errors(e_out, weights, state.feedback, cfg.feedback)
    arriving = arriving_spikes(net, state.net, inputs, rec)
    return net_state, err, win, rec, errs, arriving


def _layer_update(net, cfg, hyper, l, w, tr: LayerTraces, u, s_pre, s_post, e, *, event, shared):
    """``(m, new LayerTraces)`` of one layer over a block, dense or event-driven."""
    dt, k = net.neuron.dt, u.shape[0]
    a_r, a_d = decay_factor(cfg.tau_rise, dt), decay_factor(cfg.tau_decay, dt)
    span = 1.0 / (cfg.tau_decay - cfg.tau_rise)
    if tr.sig_buf.shape[0]:
        sig_d, sig_buf = delay_line(tr.sig_buf, sigma_prime(net, cfg, u, hyper.beta))
        sig_fn = None
    else:  # no Hebbian delay: sigma'(u) is evaluated inside the reverse scan
        sig_fn = functools.partial(sigma_prime, net, cfg, beta=hyper.beta)
        sig_d, sig_buf = u, tr.sig_buf
    spk_d, spk_buf = delay_line(tr.spk_buf, s_pre)
    # lag[t] = K-1-t: weights of step t in the eligibility state at the block's end
    lag = jnp.arange(k - 1, -1, -1, dtype=u.dtype)[:, None]
    pows = jnp.concatenate([jnp.exp(lag * math.log(a_d)), jnp.exp(lag * math.log(a_r))], axis=1)
    # post-side signals (e_rev sigma', sigma' a_d^lag, sigma' a_r^lag) ([K, N_post] each): m and the
    # end-of-block eligibility are their products with the presynaptic trace
    post_args = (cfg.tau_rise, cfg.tau_decay, dt, e, sig_d, pows)
    if event:
        (pre_post, psp), e_sums = event_sums(
            net.neuron,
            cfg.max_spikes,
            spk_d,
            tr.psp,
            post_args,
            sig_fn,
            segment=not shared and s_pre.shape[-1] >= _PER_SPIKE,
        )
    elif s_pre.shape[-1] * 3 * u.shape[-1] <= _TINY:
        (pre_post, psp), e_sums = scan_products(net.neuron, spk_d, tr.psp, post_args, sig_fn)
    else:
        post, e_sums, _ = post_signals(*post_args, sig_fn=sig_fn)
        # measured on CPU: narrow groups of one seed share a product; seed-batched ones do not
        concat = not shared and 3 * u.shape[-1] <= _NARROW
        pre_post, psp = dense_products(net.neuron, spk_d, tr.psp, post, concat)
    m_new, d_new, r_new = pre_post
    # contribution of the eligibility carried in: lambda gets (D0 a_d^(t+1) - R0 a_r^(t+1)) span
    # the reverse filter's final state is sum_t a^t e[t]: summed in time order by a scan, so the
    # result does not depend on how XLA vectorises a reduction for a given seed-batch size
    c_d, c_r = a_d * e_sums.decay, a_r * e_sums.rise
    m = m_new + span * (tr.elig.decay * c_d[None, :] - tr.elig.rise * c_r[None, :])
    elig = DoubleExpState(
        rise=tr.elig.rise * (a_r**k) + r_new, decay=tr.elig.decay * (a_d**k) + d_new
    )
    het = tr.het
    if regularised(cfg, l, net.n_layers):  # the trace is only read by the regulariser
        z_het, het = exp_filter(s_post, cfg.regularizer.tau, dt, state=tr.het)
        m = m - regulariser(cfg, hyper, w, z_het, e)
    return m, LayerTraces(psp, elig, sig_buf, spk_buf, het)


def block_blocked(
    net: Network,
    cfg: SuperSpikeConfig,
    weights: Weights,
    inputs: Array,
    targets: Array,
    state: SuperSpikeState,
    *,
    hyper: SuperSpikeHyper | None = None,
    event_layers: int = 0,
    shared_inputs: bool = False,
):
    """Exact blocked form: dense matrix products, except event-driven currents and sums for the
    first ``event_layers`` layers. ``shared_inputs``: the block runs under a seed ``vmap`` whose
    seeds share the inputs; the first layer's input currents are then event-driven in any case
    (one list of spike steps serves every seed) and the layouts that pay only for one seed are
    not used.

    Same arguments and results as :func:`block_stepwise`.
    """
    hyper = cfg.hyper(net) if hyper is None else hyper
    n_currents = max(event_layers, int(shared_inputs))
    # one seed, every layer event-driven, and outputs enough for a product to cost more than
    # sums of rows: the hidden error from the output's spikes too (under a seed vmap they are
    # per seed)
    event_errors = (
        event_layers == net.n_layers and not shared_inputs and net.sizes[-1] >= _PER_SPIKE
    )
    net_state, err, win, rec, errs, arriving = _block_common(
        net, cfg, hyper, weights, inputs, targets, state, n_currents, shared_inputs, event_errors
    )
    k, n_layers = inputs.shape[0], net.n_layers
    grads, layers = [], []
    for l, tr in enumerate(state.layers):
        m, tr = _layer_update(
            net,
            cfg,
            hyper,
            l,
            weights[l],
            tr,
            rec.u[l],
            arriving[l],
            rec.spikes[l],
            errs[l],
            event=l < event_layers,
            shared=shared_inputs,
        )
        grads.append(finish(m, k, trains(cfg, l, n_layers)))
        layers.append(tr)
    new = SuperSpikeState(net_state, err, tuple(layers), win, state.feedback)
    return tuple(grads), new, BlockAux(rec, errs)
