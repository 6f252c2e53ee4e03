"""The terms of the SuperSpike rule that every route evaluates the same way.

    sigma'(U)                surrogate derivative at the membrane potential (or 1)
    delta = S^ - S           unfiltered output error (or the window-of-opportunity error)
    rho' w_ij sum_t z_i^a    the regulariser, subtracted from m (times e_i^2 if error-dependent)
    g = -m / K               the optax-sign update of a block of K steps (zero if frozen)

Shapes are time-major: ``u``, ``e``, ``z`` ``[K, N_post]``; ``m`` and ``w`` ``[N_pre, N_post]``.
Units: ``u`` in V; ``sigma'`` dimensionless or 1/V by the surrogate's kind; ``e`` in 1/s.

Reference: Zenke & Ganguli (2018), eqs. (9)-(13); SUPERSPIKE.md 2.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ssjax._types import Array
from ssjax.losses import WindowState, window_error
from ssjax.network import Network
from ssjax.neurons.base import Beta
from ssjax.rules.superspike.config import SuperSpikeConfig, SuperSpikeHyper


def sigma_prime(net: Network, cfg: SuperSpikeConfig, u: Array, beta: Beta = None) -> Array:
    """``sigma'(U)`` of the rule (the neuron's surrogate derivative with steepness ``beta``,
    traced or None for the neuron's own; or 1), ``u``'s shape."""
    if cfg.sigma_prime == "one":
        return jnp.ones_like(u)
    return net.neuron.surrogate_grad(u, beta)


def regularised(cfg: SuperSpikeConfig, layer: int, n_layers: int) -> bool:
    """Whether layer ``layer`` carries the regulariser (a static choice of the config)."""
    hidden = layer < n_layers - 1
    return cfg.regularizer.rho > 0 and (hidden or cfg.regularizer.layers == "all")


def regulariser(cfg: SuperSpikeConfig, hyper: SuperSpikeHyper, w, z: Array, e: Array) -> Array:
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


def finish(m: Array, k: int, train: bool) -> Array:
    """Optax-sign gradient ``-m / K``; zeros for a frozen layer."""
    return -m / k if train else jnp.zeros_like(m)


def trains(cfg: SuperSpikeConfig, layer: int, n_layers: int) -> bool:
    """Whether layer ``layer`` learns: hidden layers are frozen without feedback."""
    return cfg.feedback != "none" or layer == n_layers - 1


def output_error(cfg: SuperSpikeConfig, targets: Array, out: Array, win: WindowState):
    """Unfiltered output error ``[K, N_out]`` and the carried window state."""
    if cfg.error == "window":
        return window_error(out, targets, win)
    return targets.astype(out.dtype) - out, win
