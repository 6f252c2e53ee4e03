"""The SuperSpike three-factor rule: per-step reference form and exact blocked forms.

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

Routes, all exact (they agree to float rounding, tested):

- :func:`block_stepwise`: the reference code's integration, one step at a time, carrying the
  per-synapse filter states ``(D, R)`` (``lambda = (D - R)/(tau_d - tau_r)``) and ``m``.
- dense (default, :func:`block_blocked`): weights are fixed within a block, so by the adjoint
  of the filter ``sum_t e[t] (alpha * x)[t] = sum_t x[t] (alpha^R * e)[t]``, and
  ``m = z^T @ (sigma' (alpha^R * e))`` is one matrix product over the block; what earlier blocks
  carry in enters through ``(D0, R0)`` as ``(D0 c_d - R0 c_r)/(tau_d - tau_r)`` with
  ``c[i] = sum_t e_i[t] a^(t+1)``, and the new ``(D, R)`` are two more products (three
  ``[K, N_post]`` post-side signals against the same trace). The trace ``z`` is that of the
  block's spikes from a zero state plus the closed-form decay of the carried trace, so under a seed
  ``vmap`` with shared inputs the input layer's trace and product are computed once (and its
  input currents from one list of spike steps). A layer with ``N_pre x 3 N_post <= 64``
  accumulates the same sums inside its reverse scan instead
  (:func:`ssjax.rules.blocked.scan_products`): a few neurons per seed make matrix products that
  cost more in layout changes than in arithmetic.
- event (``block_blocked(event_layers=n)``): the dense form, except for the first ``n``
  layers: the PSP trace is a filtered spike train, so ``z^T @ post = s^T @ (epsilon^T post)``:
  the post-side signals are filtered backwards with the adjoint of the PSP filter (in the same
  reverse scan that builds them) and summed over the steps that carry presynaptic spikes only,
  ``O(K N_post + steps-with-spikes x N_pre x N_post)`` instead of ``O(K N_pre N_post)``. The
  steps are gathered into a list whose capacity is picked per block (a ``lax.switch``); a block
  with more than ``max_spikes`` such steps falls back to the dense sum, so it is always exact.
  The layer's input currents ``s @ W`` are computed on the same steps only
  (:func:`ssjax.rules.blocked.event_currents`). The reverse scan writes only the listed steps'
  rows; for a presynaptic layer of at least ``_PER_SPIKE`` neurons, the listed rows that carry
  one spike are added to that neuron's sum instead of a product over mostly zeros
  (:func:`ssjax.rules.blocked.per_spike`). ``method: event`` applies this to every layer,
  except under a seed ``vmap`` with shared inputs (``shared_inputs``): there the deeper layers'
  presynaptic spikes
  are per seed and the switch would run every branch, so only the input layer (whose spikes
  all seeds share) is event-driven.

Output layer = gradient: for the output layer, with ``reset_grad=False``, the same surrogate,
no Hebbian delay, no regulariser, and a block that starts with zero traces (PSP, eligibility)
and a network state that is treated as given, ``-g = grad_W L / t_b`` exactly, where ``L`` is
the block's van Rossum loss of :func:`ssjax.rules.bptt.bptt_loss` and ``t_b = K dt``.

Sign: :func:`superspike_grads` returns ``-g`` (optax descent convention), to be fed to the
transformations of :mod:`ssjax.optim`. :func:`superspike` wraps it in the learning-rule contract
of :mod:`ssjax.rules.base`; the route (stepwise, dense, event) is chosen in one place,
:func:`superspike_grads`, from ``cfg.method`` and ``shared_inputs``.

Traced hyper-parameters: the regulariser's strength and exponent enter through
:class:`SuperSpikeHyper` (derived on the host by :meth:`SuperSpikeConfig.hyper`), never as
compile-time constants, so configs that differ only in them share one program
(:meth:`SuperSpikeConfig.structure`).

Reference: Zenke & Ganguli (2018), eqs. (9)-(12) and Methods; reference code
fzenke/pub2018superspike (``SuperSpikeConnection``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from ssjax._types import Array, PRNGKey, Weights
from ssjax.filters import (
    DoubleExpState,
    decay_factor,
    double_exp_filter,
    double_exp_init,
    double_exp_step,
    exp_filter,
)
from ssjax.losses import VanRossum, WindowState, window_error
from ssjax.network import (
    NetState,
    Network,
    Record,
    arriving_spikes,
    delay_line,
    init_state,
    network_step,
    simulate,
)
from ssjax.neuron import psp_trace_step
from ssjax.params import borrow, check_fields, choice, int_ge, multiple_of, param
from ssjax.rules.base import Block, LearningRule, RuleOutput
from ssjax.rules.blocked import (
    dense_products,
    event_currents,
    event_sums,
    post_signals,
    scan_products,
)
from ssjax.rules.feedback import FEEDBACKS, init_feedback, layer_errors
from ssjax.rules.regulariser import Regularizer, rho_scale

METHODS = ("dense", "event", "stepwise")
# N_pre x 3 N_post up to which a layer's sums are accumulated in its reverse scan
# (ssjax.rules.blocked.scan_products) instead of matrix products (measured, CPU)
_TINY = 64
# 3 N_post up to which one seed's three post-side groups share one product (measured, CPU)
_NARROW = 192
# N_pre from which the event route sums its listed steps per spike (ssjax.rules.blocked.per_spike)
# instead of a product: 6% faster at 200-256-200, no change at 100-256-100, and each capacity
# branch compiles a second path (measured, CPU)
_PER_SPIKE = 128


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
        """The traced hyper-parameters, derived on the host (``rho`` in this rule's units)."""
        scale = rho_scale(
            net.neuron,
            self.tau_rise,
            self.tau_decay,
            self.sigma_prime,
            self.regularizer.error_dependent,
        )
        return SuperSpikeHyper(rho=self.regularizer.rho * scale, a=self.regularizer.a)

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

    psp: ``(z_syn, z_mem)`` ``[N_pre]`` presynaptic PSP trace (of the Hebbian-delayed spikes).
    elig: ``DoubleExpState`` ``[N_pre, N_post]``, the per-synapse eligibility filter.
    sig_buf, spk_buf: ``[d, N_post]`` and ``[d, N_pre]`` Hebbian-delay lines.
    het: ``[N_post]`` postsynaptic activity trace of the regulariser.
    """

    psp: tuple
    elig: DoubleExpState
    sig_buf: Array
    spk_buf: Array
    het: Array


class SuperSpikeHyper(NamedTuple):
    """Traced hyper-parameters: ``rho`` the regulariser's strength in this rule's units
    (``regularizer.rho * rho_scale``), ``a`` its exponent. Floats or scalar arrays."""

    rho: Array | float
    a: Array | float


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
                psp=(jnp.zeros(n_pre, dtype), jnp.zeros(n_pre, dtype)),
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


def _sigma_prime(net: Network, cfg: SuperSpikeConfig, u: Array) -> Array:
    if cfg.sigma_prime == "one":
        return jnp.ones_like(u)
    return net.neuron.surrogate.grad(u - net.neuron.theta)


def _regularised(cfg: SuperSpikeConfig, layer: int, n_layers: int) -> bool:
    hidden = layer < n_layers - 1
    return cfg.regularizer.rho > 0 and (hidden or cfg.regularizer.layers == "all")


def _regulariser(cfg: SuperSpikeConfig, hyper: SuperSpikeHyper, w, z: Array, e: Array) -> Array:
    """``rho' w_ij sum_t z_i[t]^a (e_i[t]^2)``, subtracted from ``m`` (``[N_pre, N_post]``).

    ``z``, ``e``: ``[K, N_post]``. The error-dependent variant multiplies by ``e_i^2`` (reference
    code: ``(lambda - rho w z^a e) e``). ``rho' = hyper.rho = regularizer.rho * rho_scale``:
    ``regularizer.rho`` is in the reference code's units and
    :func:`ssjax.rules.regulariser.rho_scale` (host-side)
    converts it to this rule's normalisation of ``e lambda``.
    """
    za = z**hyper.a
    if cfg.regularizer.error_dependent:
        za = za * e * e
    return hyper.rho * w * time_sum(za)[None, :]


def time_sum(x: Array) -> Array:
    """``sum_t x[t]`` over axis 0, accumulated sequentially in time order (a scan).

    A reduction's summation order may change with the vmapped batch size; a scan's does not, so
    results stay bit-identical whatever number of seeds runs together.
    """
    return jax.lax.scan(lambda c, xt: (c + xt, None), jnp.zeros_like(x[0]), x)[0]


def _finish(m: Array, k: int, train: bool) -> Array:
    """Optax-sign gradient ``-m / K``; zeros for a frozen layer."""
    return -m / k if train else jnp.zeros_like(m)


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
    dt, n_layers = net.neuron.dt, net.n_layers
    hyper = cfg.hyper(net) if hyper is None else hyper
    feedback = state.feedback
    a_h = decay_factor(cfg.regularizer.tau, dt)

    def step(carry, xs):
        rs, ms = carry
        s_in, target = xs
        net_state, spikes, us, arriving = network_step(net, weights, rs.net, s_in)
        delta, win = _delta(cfg, target[None], spikes[-1][None], rs.win)
        err, e_out = double_exp_step(rs.err, delta[0], cfg.tau_rise, cfg.tau_decay, dt)
        errs = layer_errors(e_out, weights, feedback, cfg.feedback)
        layers, new_ms = [], []
        for l, (tr, m) in enumerate(zip(rs.layers, ms, strict=True)):
            sig = _sigma_prime(net, cfg, us[l])
            sig_d, sig_buf = delay_line(tr.sig_buf, sig[None])
            spk_d, spk_buf = delay_line(tr.spk_buf, arriving[l][None])
            psp, z = psp_trace_step(net.neuron, tr.psp, spk_d[0])
            elig, lam = double_exp_step(
                tr.elig, z[:, None] * sig_d[0][None, :], cfg.tau_rise, cfg.tau_decay, dt
            )
            m = m + lam * errs[l][None, :]
            het = tr.het
            if _regularised(cfg, l, n_layers):
                het = a_h * tr.het + spikes[l]
                m = m - _regulariser(cfg, hyper, weights[l], het[None], errs[l][None])
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
    grads = tuple(_finish(m, k, _trains(cfg, l, n_layers)) for l, m in enumerate(ms))
    return grads, state, BlockAux(Record(spikes, us), errs)


def _trains(cfg: SuperSpikeConfig, layer: int, n_layers: int) -> bool:
    return cfg.feedback != "none" or layer == n_layers - 1


def _delta(cfg: SuperSpikeConfig, targets: Array, out: Array, win: WindowState):
    """Unfiltered output error ``[K, N_out]`` and the carried window state."""
    if cfg.error == "window":
        return window_error(out, targets, win)
    return targets.astype(out.dtype) - out, win


def _block_common(net, cfg, weights, inputs, targets, state, n_currents, shared_inputs):
    """Simulate the block (event-driven currents for the first ``n_currents`` layers) and compute
    everything the dense and event routes share."""
    dt = net.neuron.dt
    currents = (functools.partial(event_currents, cfg.max_spikes),) * n_currents
    # the simulation is not differentiated, so the scans may write their outputs over their
    # inputs; not under a seed vmap, where the carried [seeds, K, N] arrays are seed-major and
    # 64 seeds of 100-4-1 ran 1.1-1.2x slower (measured, CPU)
    overwrite = not shared_inputs
    net_state, rec = simulate(net, weights, inputs, state.net, currents, overwrite=overwrite)
    delta, win = _delta(cfg, targets, rec.spikes[-1], state.win)
    e_out, err = double_exp_filter(
        delta, cfg.tau_rise, cfg.tau_decay, dt, state=state.err, overwrite=overwrite
    )
    errs = layer_errors(e_out, weights, state.feedback, cfg.feedback)
    arriving = arriving_spikes(net, state.net, inputs, rec)
    return net_state, err, win, rec, errs, arriving


def _layer_update(net, cfg, hyper, l, w, tr: LayerTraces, u, s_pre, s_post, e, *, event, shared):
    """``(m, new LayerTraces)`` of one layer over a block, dense or event-driven."""
    dt, k = net.neuron.dt, u.shape[0]
    a_r, a_d = decay_factor(cfg.tau_rise, dt), decay_factor(cfg.tau_decay, dt)
    span = 1.0 / (cfg.tau_decay - cfg.tau_rise)
    if tr.sig_buf.shape[0]:
        sig_d, sig_buf = delay_line(tr.sig_buf, _sigma_prime(net, cfg, u))
        sig_fn = None
    else:  # no Hebbian delay: sigma'(u) is evaluated inside the reverse scan
        sig_d, sig_buf, sig_fn = u, tr.sig_buf, functools.partial(_sigma_prime, net, cfg)
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
    if _regularised(cfg, l, net.n_layers):  # the trace is only read by the regulariser
        z_het, het = exp_filter(s_post, cfg.regularizer.tau, dt, state=tr.het)
        m = m - _regulariser(cfg, hyper, w, z_het, e)
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
    net_state, err, win, rec, errs, arriving = _block_common(
        net, cfg, weights, inputs, targets, state, n_currents, shared_inputs
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
        grads.append(_finish(m, k, _trains(cfg, l, n_layers)))
        layers.append(tr)
    new = SuperSpikeState(net_state, err, tuple(layers), win, state.feedback)
    return tuple(grads), new, BlockAux(rec, errs)


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
    every branch of their capacity switch.
    """
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
