"""Linear filters over time: exponential and double-exponential, causal and anti-causal.

All filters act on time-major arrays ``[T, ...]`` (any trailing shape) and are written as
``lax.scan`` steps so that their state can be carried across blocks of a continuous simulation.

Discretisation. A spike train is a per-step count array ``s[t]`` standing for Dirac masses at
``t * dt``. The exponential filter with time constant ``tau``

    y[t] = a * y[t-1] + g * x[t],        a = exp(-dt / tau)

samples the continuous kernel ``g * exp(-t / tau)`` *exactly* at the grid points (there is no
Euler error), so with ``g = 1 / tau`` it is the unit-integral kernel. The double exponential

    alpha(t) = (exp(-t / tau_d) - exp(-t / tau_r)) / (tau_d - tau_r)       (unit integral)

is realised as the difference of two such filters, which again samples ``alpha`` exactly:
``(y_d[t] - y_r[t]) / (tau_d - tau_r)``. ``alpha(0) = 0``, so a spike at step ``t`` first shows
at ``t + 1``. The anti-causal (reverse-time) version computes ``y[t] = sum_{k>=0} k(k dt) x[t+k]``,
the adjoint of the causal filter; it turns ``sum_t e[t] (alpha * h)[t]`` into
``sum_t h[t] (alpha^R * e)[t]`` (used by the blocked SuperSpike rule).

Reference: Zenke & Ganguli (2018), Neural Computation 30(6), eqs. for the van Rossum kernel and
the eligibility trace; SUPERSPIKE.md section 2.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ssjax._scan import overwrite_scan

Array = jax.Array


def decay_factor(tau: float, dt: float) -> float:
    """Per-step decay ``a = exp(-dt / tau)`` of an exponential filter (``tau``, ``dt`` in s)."""
    if not tau > 0 or not dt > 0:
        raise ValueError(f"decay_factor needs tau > 0 and dt > 0, got tau={tau}, dt={dt}")
    return math.exp(-dt / tau)


def _check_double(tau_rise: float, tau_decay: float) -> None:
    if not 0 < tau_rise < tau_decay:
        raise ValueError(
            f"double-exponential filter needs 0 < tau_rise < tau_decay, "
            f"got tau_rise={tau_rise}, tau_decay={tau_decay}"
        )


def exp_step(y: Array, x: Array, decay: float, gain: float = 1.0) -> Array:
    """One step of ``y <- decay * y + gain * x`` (elementwise, any shape)."""
    return decay * y + gain * x


def exp_filter(
    x: Array,
    tau: float,
    dt: float,
    *,
    gain: float = 1.0,
    state: Array | None = None,
    reverse: bool = False,
) -> tuple[Array, Array]:
    """Exponential filter along axis 0: ``y[t] = a y[t-1] + gain x[t]``, ``a = exp(-dt/tau)``.

    With ``reverse=True`` runs backwards in time: ``y[t] = a y[t+1] + gain x[t]``.

    Args:
      x: ``[T, ...]`` input (e.g. spike counts per step).
      tau, dt: time constant and step in seconds.
      gain: input gain; ``1 / tau`` gives the unit-integral kernel ``exp(-t/tau)/tau``.
      state: ``[...]`` filter value before the first (causal) or after the last (reverse) step.

    Returns:
      ``(y, final_state)`` with ``y`` shaped like ``x``.
    """
    a = decay_factor(tau, dt)
    y0 = jnp.zeros(x.shape[1:], x.dtype) if state is None else state

    def step(y, xt):
        y = exp_step(y, xt, a, gain)
        return y, y

    yT, ys = jax.lax.scan(step, y0, x, reverse=reverse)
    return ys, yT


class DoubleExpState(NamedTuple):
    """State of a double-exponential filter: the rise and decay exponential components."""

    rise: Array
    decay: Array


def double_exp_init(shape, dtype=jnp.float32) -> DoubleExpState:
    """Zero state of a double-exponential filter for signals of trailing shape ``shape``."""
    return DoubleExpState(jnp.zeros(shape, dtype), jnp.zeros(shape, dtype))


def double_exp_step(
    state: DoubleExpState, x: Array, tau_rise: float, tau_decay: float, dt: float
) -> tuple[DoubleExpState, Array]:
    """One step of the unit-integral double-exponential filter; returns ``(state, y)``.

    ``y[t] = (d[t] - r[t]) / (tau_d - tau_r)`` with ``d[t] = a_d d[t-1] + x[t]`` and
    ``r[t] = a_r r[t-1] + x[t]``; ``y`` samples ``alpha`` (module docstring) exactly.
    """
    _check_double(tau_rise, tau_decay)
    a_r, a_d = decay_factor(tau_rise, dt), decay_factor(tau_decay, dt)
    r = a_r * state.rise + x
    d = a_d * state.decay + x
    return DoubleExpState(r, d), (d - r) * (1.0 / (tau_decay - tau_rise))


def double_exp_filter(
    x: Array,
    tau_rise: float,
    tau_decay: float,
    dt: float,
    *,
    state: DoubleExpState | None = None,
    reverse: bool = False,
    overwrite: bool = False,
) -> tuple[Array, DoubleExpState]:
    """Filter ``[T, ...]`` along axis 0 with the unit-integral kernel ``alpha`` (see module doc).

    Causal: ``y[t] = sum_{k>=0} alpha(k dt) x[t-k]`` (+ the decaying carried ``state``).
    Reverse (anti-causal): ``y[t] = sum_{k>=0} alpha(k dt) x[t+k]``.

    Args:
      x: ``[T, ...]`` input; tau_rise < tau_decay and dt in seconds.
      state: carried filter state (zeros if None).
      overwrite: write ``y`` into ``x``'s buffer (:func:`ssjax._scan.overwrite_scan`), for code
        that is not differentiated; bit-identical.

    Returns:
      ``(y, final_state)``; ``y`` has the shape of ``x`` and units of ``x`` per second.
    """
    s0 = double_exp_init(x.shape[1:], x.dtype) if state is None else state

    def step(s, xt):
        return double_exp_step(s, xt, tau_rise, tau_decay, dt)

    scan = overwrite_scan if overwrite else jax.lax.scan
    sT, ys = scan(step, s0, x, reverse=reverse)
    return ys, sT


def double_exp_readout(state: DoubleExpState, tau_rise: float, tau_decay: float) -> Array:
    """The filter output ``(d - r) / (tau_d - tau_r)`` of a double-exponential state."""
    return (state.decay - state.rise) * (1.0 / (tau_decay - tau_rise))


def alpha_kernel(t: Array, tau_rise: float, tau_decay: float) -> Array:
    """Closed-form ``alpha(t) = (e^{-t/tau_d} - e^{-t/tau_r}) / (tau_d - tau_r)`` for ``t >= 0``.

    Unit integral, units 1/s; zero for ``t < 0`` (causal).
    """
    _check_double(tau_rise, tau_decay)
    t = jnp.asarray(t)
    k = (jnp.exp(-t / tau_decay) - jnp.exp(-t / tau_rise)) / (tau_decay - tau_rise)
    return jnp.where(t >= 0, k, 0.0)


def epsilon_kernel(t: Array, tau_syn: float, tau_mem: float) -> Array:
    """Closed-form PSP of a unit weight: ``tau_s/(tau_m - tau_s) (e^{-t/tau_m} - e^{-t/tau_s})``.

    This is the membrane response of ``tau_m dU/dt = -U + I`` to ``I(t) = e^{-t/tau_s}`` (a
    presynaptic spike through a weight of 1 V), i.e. ``tau_s * alpha(t; tau_s, tau_m)``. For the
    paper's 5 ms / 10 ms it peaks at ``t = tau_m ln 2 = 6.93 ms`` with value 1/4. Dimensionless
    (volts per volt of weight); zero for ``t < 0``.
    """
    return tau_syn * alpha_kernel(t, tau_syn, tau_mem)


def alpha_sum(tau_rise: float, tau_decay: float, dt: float) -> float:
    """Exact ``sum_{k>=0} alpha(k dt)`` of the discrete kernel (1/s, about ``1/dt``): the DC gain
    of :func:`double_exp_filter`. Geometric series ``(1/(1-a_d) - 1/(1-a_r)) / (tau_d - tau_r)``.
    """
    _check_double(tau_rise, tau_decay)
    a_r, a_d = decay_factor(tau_rise, dt), decay_factor(tau_decay, dt)
    return (1.0 / (1.0 - a_d) - 1.0 / (1.0 - a_r)) / (tau_decay - tau_rise)


def alpha_sq_sum(tau_rise: float, tau_decay: float, dt: float) -> float:
    """Exact ``sum_{k>=0} alpha(k dt)^2 * dt`` of the discrete kernel (units 1/s).

    The squared norm of one isolated spike's filtered trace, used to normalise the van Rossum
    distance to one unit per unmatched spike. Geometric series:
    ``[1/(1-a_d^2) - 2/(1-a_d a_r) + 1/(1-a_r^2)] dt / (tau_d - tau_r)^2``.
    """
    _check_double(tau_rise, tau_decay)
    a_r, a_d = decay_factor(tau_rise, dt), decay_factor(tau_decay, dt)
    s = 1 / (1 - a_d * a_d) - 2 / (1 - a_d * a_r) + 1 / (1 - a_r * a_r)
    return s * dt / (tau_decay - tau_rise) ** 2
