"""Spike nonlinearity with surrogate gradients (SuperSpike, Zenke & Ganguli 2018).

All functions take ``v = U - theta``: the membrane voltage's distance to threshold, in volts, any
shape, applied elementwise. The steepness ``beta`` is in 1/V (paper: beta = 1/mV = 1000 /V).

Tie convention: the forward pass is the Heaviside step with H(0) = 0, so a neuron spikes only when
U is strictly above theta, as in the reference Auryn code (``mem > thr``). The surrogate derivative
is still evaluated at v = 0 (where it peaks), so a neuron sitting exactly on threshold gets the
largest gradient even though it did not spike.

:class:`Surrogate` is the static, hashable config; its ``beta`` is the default, and
``Surrogate.__call__`` / ``grad`` take ``beta`` as a value as well, so a program compiled for
``Surrogate.structure()`` serves every steepness (``ssjax.train.Hyper`` carries it).

``spike`` uses ``jax.custom_vjp``: reverse mode (grad, vjp) works under jit and vmap, and ``beta``
and ``v_floor`` may be traced arrays (their cotangents are zero), but forward mode (jvp, jacfwd)
raises a TypeError. ``smooth_spike`` is an ordinary differentiable sigmoid for finite-difference
checks and supports both modes.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import ClassVar

import jax
import jax.numpy as jnp

from ssjax.params import check_fields, choice, gt, param

KINDS = ("superspike", "superspike_code", "sigmoid", "triangular")
# the beta of Surrogate.structure(), a placeholder for the traced value (the paper's, 1/V)
CANONICAL_BETA = 1000.0
FORWARDS = ("heaviside", "sigmoid")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def _as_float(v):
    v = jnp.asarray(v)
    # Integer voltages would make the custom VJP's cotangent dtype (float0) unusable.
    return v if jnp.issubdtype(v.dtype, jnp.floating) else v.astype(jnp.result_type(float))


def surrogate_grad(v, beta=1000.0, kind="superspike", v_floor=-0.03):
    """Surrogate derivative sigma'(v) of the spike nonlinearity, elementwise, same dtype as v.

    With x = beta * v:
      "superspike"      (1 + |x|)^-2                        (paper scaling: peak 1, dimensionless)
      "superspike_code" beta (1 + |x|)^-2, 0 where v < v_floor   (reference C++ code; 1/V)
      "sigmoid"         beta s(x) (1 - s(x)), s the logistic  (1/V)
      "triangular"      beta max(0, 1 - |x|)                 (1/V)

    Args:
      v: U - theta in volts, any shape (elementwise).
      beta: steepness in 1/V; scalar or broadcastable to v's shape (may be traced).
      kind: one of KINDS (static).
      v_floor: "superspike_code" only: threshold-relative floor in volts below which the surrogate
        is exactly 0 (code: U < -80 mV with theta = -50 mV, i.e. v < -0.03 V).

    References: Zenke & Ganguli 2018, Neural Comput. 30(6), fast-sigmoid surrogate
    sigma'(U) = (1 + |beta (U - theta)|)^-2; Neftci, Mostafa & Zenke 2019, IEEE Signal Process.
    Mag. 36(6), for the sigmoid and triangular alternatives.
    """
    _check_kind(kind)
    v = _as_float(v)
    beta = jnp.asarray(beta, v.dtype)
    x = beta * v
    ax = jnp.abs(x)
    if kind == "superspike":
        return 1.0 / jnp.square(1.0 + ax)
    if kind == "superspike_code":
        g = beta / jnp.square(1.0 + ax)
        return jnp.where(v < jnp.asarray(v_floor, v.dtype), jnp.zeros_like(g), g)
    if kind == "sigmoid":
        # s(x)(1 - s(x)) = e^-|x| / (1 + e^-|x|)^2: symmetric, and e^-|x| never overflows, so no
        # inf/inf at |v| = 1e30.
        e = jnp.exp(-ax)
        return beta * e / jnp.square(1.0 + e)
    return beta * jnp.maximum(0.0, 1.0 - ax)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _spike(v, beta, v_floor, kind):
    return (v > 0).astype(v.dtype)


def _spike_fwd(v, beta, v_floor, kind):
    return _spike(v, beta, v_floor, kind), (v, beta, v_floor)


def _spike_bwd(kind, res, g):
    v, beta, v_floor = res
    # beta and v_floor are hyperparameters, not learned: their cotangents are zero, but they stay
    # ordinary arguments so they can be traced (jit arguments, vmapped sweeps).
    return (
        g * surrogate_grad(v, beta, kind, v_floor),
        jnp.zeros_like(beta),
        jnp.zeros_like(v_floor),
    )


_spike.defvjp(_spike_fwd, _spike_bwd)


def spike(v, beta=1000.0, kind="superspike", v_floor=-0.03):
    """Spike nonlinearity: S = H(v) forward, dS/dv := surrogate_grad(v, ...) backward.

    H is the Heaviside step with H(0) = 0 (a spike needs U strictly above theta, as in the Auryn
    reference code ``mem > thr``). The VJP is g * sigma'(v); beta and v_floor get zero cotangents.
    Reverse mode only (custom_vjp): jax.jvp / jacfwd raise TypeError.

    Args:
      v: U - theta in volts, any shape (elementwise).
      beta: steepness in 1/V, scalar or broadcastable to v's shape (Python float or traced array).
      kind: one of KINDS (static).
      v_floor: floor in volts for kind "superspike_code" (see surrogate_grad).

    Returns: 0/1 array of v's shape and dtype.

    Reference: Zenke & Ganguli 2018 (SuperSpike fast-sigmoid surrogate).
    """
    _check_kind(kind)
    v = _as_float(v)
    beta = jnp.asarray(beta, v.dtype)
    v_floor = jnp.asarray(v_floor, v.dtype)
    return _spike(v, beta, v_floor, kind)


def smooth_spike(v, beta=1000.0):
    """Smooth stand-in for spike: S = sigmoid(beta v), differentiated exactly (no custom VJP).

    Its derivative beta s(beta v)(1 - s(beta v)) equals surrogate_grad(kind="sigmoid"), so
    finite-difference checks of a network built on it validate the gradient plumbing. Supports
    forward and reverse mode. Use float64 for such checks: in float32 autodiff forms s (1 - s),
    which cancels in the upper tail (absolute error ~ beta * eps).

    Args:
      v: U - theta in volts, any shape (elementwise).
      beta: steepness in 1/V.

    Returns: values in (0, 1), v's shape and dtype.

    Reference: Neftci, Mostafa & Zenke 2019 (sigmoid surrogate).
    """
    v = _as_float(v)
    return jax.nn.sigmoid(jnp.asarray(beta, v.dtype) * v)


@dataclasses.dataclass(frozen=True)
class Surrogate:
    """Hashable spike-nonlinearity config (usable as a static jax.jit argument).

    kind: surrogate shape, one of KINDS. beta: steepness in 1/V (> 0, finite). v_floor: volts,
    "superspike_code" only. forward: "heaviside" (spike, surrogate backward) or "sigmoid"
    (smooth_spike, true derivative; for finite-difference tests).
    """

    SCOPE: ClassVar[str] = "surrogate"

    kind: str = param("superspike", choice(KINDS), doc="surrogate shape")
    beta: float = param(1000.0, gt(0, " 1/V"), doc="steepness (1/V)")
    v_floor: float = param(-0.03, doc="lower clamp of U - theta (V), superspike_code only")
    forward: str = param("heaviside", choice(FORWARDS), doc="heaviside (spike) or sigmoid")

    def __post_init__(self):
        # plain floats keep the instance hashable and comparable as a static jit argument
        check_fields(self)

    def __call__(self, v, beta=None):
        """Spike output for v = U - theta (volts, any shape): spike or smooth_spike.

        ``beta``: the steepness (1/V) as a value, e.g. traced; ``self.beta`` if None.
        """
        beta = self.beta if beta is None else beta
        if self.forward == "sigmoid":
            return smooth_spike(v, beta)
        return spike(v, beta, self.kind, self.v_floor)

    def grad(self, v, beta=None):
        """dS/dv used by the backward pass (1/V or dimensionless; v any shape, elementwise);
        ``beta`` as for :meth:`__call__`."""
        beta = self.beta if beta is None else beta
        if self.forward == "sigmoid":
            return surrogate_grad(v, beta, "sigmoid")
        return surrogate_grad(v, beta, self.kind, self.v_floor)

    def structure(self) -> Surrogate:
        """This surrogate with ``beta`` canonical: equal for surrogates that differ only in it,
        whose programs take ``beta`` as a traced value (:meth:`__call__`)."""
        return dataclasses.replace(self, beta=CANONICAL_BETA)
