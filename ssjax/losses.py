"""Spike-train errors and distances: filtered error, van Rossum loss and distance, moving cost.

The SuperSpike loss for output ``i`` is the van Rossum distance (SUPERSPIKE.md section 2)

    L = 1/2 sum_i integral e_i(s)^2 ds,      e_i = alpha * (S^_i - S_i)

with ``alpha`` the unit-integral double-exponential kernel (rise 5 ms, decay 10 ms) of
:mod:`ssjax.filters`. On the grid, spike trains are per-step counts ``[T, *B, N]`` (Dirac masses
at ``t * dt``) and the integral is ``sum_t (.) dt``. :func:`van_rossum_distance` divides
``integral e^2`` by ``integral alpha^2`` (the discrete sum, exactly), so that one isolated
unmatched spike whose kernel lies fully inside the window costs exactly 1; two spikes closer
than the kernel width interact, and a spike near the window's end costs less (truncation).

Reference: van Rossum (2001), Neural Computation 13(4); Zenke & Ganguli (2018), eq. (1).
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from ssjax.filters import DoubleExpState, alpha_sq_sum, double_exp_filter
from ssjax.params import check_fields, compare, gt, param

Array = jax.Array

TAU_RISE = 5e-3
TAU_DECAY = 10e-3


@dataclasses.dataclass(frozen=True)
class VanRossum:
    """The van Rossum loss's filter: ``alpha`` with ``tau_rise`` < ``tau_decay`` (s).

    One owner for the constants: a learning rule's error filter, BPTT's loss and the reported
    distance (normalised by :meth:`norm`) all read them from here, so they cannot disagree.
    5 ms / 10 ms in the paper.
    """

    SCOPE: ClassVar[str] = "rule"

    tau_rise: float = param(
        TAU_RISE,
        gt(0, " s"),
        compare(">", "neuron.dt", " s", lo="> 0 and "),
        compare("<", "rule.tau_decay", " s"),
        doc="rise time of the error and eligibility filter (s)",
    )
    tau_decay: float = param(
        TAU_DECAY,
        gt(0, " s"),
        compare(">", "neuron.dt", " s", lo="> 0 and "),
        doc="decay time of the error and eligibility filter (s)",
    )

    def __post_init__(self):
        check_fields(self)

    def norm(self, dt: float) -> float:
        """``sum_t alpha(t dt)^2 dt`` (1/s): the cost of one isolated unmatched spike."""
        return alpha_sq_sum(self.tau_rise, self.tau_decay, dt)


def filtered_error(
    target: Array,
    spikes: Array,
    dt: float,
    *,
    tau_rise: float = TAU_RISE,
    tau_decay: float = TAU_DECAY,
    state: DoubleExpState | None = None,
) -> tuple[Array, DoubleExpState]:
    """Error signal ``e = alpha * (S^ - S)`` (units 1/s), and the filter state to carry on.

    Args:
      target, spikes: ``[T, *B, N]`` per-step spike counts.
      dt: step (s); tau_rise, tau_decay: kernel time constants (s).
      state: filter state carried from the previous block (zeros if None).

    Returns:
      ``(e, state)``, ``e`` of shape ``[T, *B, N]``.
    """
    delta = target.astype(spikes.dtype) - spikes
    return double_exp_filter(delta, tau_rise, tau_decay, dt, state=state)


def van_rossum_loss(e: Array, dt: float) -> Array:
    """``L = 1/2 sum_{t, i} e_i[t]^2 dt`` summed over time and neurons (per batch element).

    ``e``: ``[T, *B, N]`` filtered error; returns ``[*B]`` (units 1/s).
    """
    return 0.5 * jnp.sum(e * e, axis=(0, -1)) * dt


def van_rossum_distance(
    target: Array,
    spikes: Array,
    dt: float,
    *,
    tau_rise: float = TAU_RISE,
    tau_decay: float = TAU_DECAY,
    state: DoubleExpState | None = None,
) -> Array:
    """Normalised van Rossum distance per neuron, ``[*B, N]``: about 1 per unmatched spike.

    ``D_i = sum_t e_i[t]^2 dt / sum_k alpha(k dt)^2 dt``, ``e = alpha * (S^ - S)``.
    Symmetric in its two spike trains; 0 for identical trains.
    """
    e, _ = filtered_error(target, spikes, dt, tau_rise=tau_rise, tau_decay=tau_decay, state=state)
    return error_distance(e, dt, tau_rise=tau_rise, tau_decay=tau_decay)


def error_distance(
    e: Array, dt: float, *, tau_rise: float = TAU_RISE, tau_decay: float = TAU_DECAY
) -> Array:
    """Normalised distance ``sum_t e[t]^2 dt / sum_k alpha_k^2 dt`` of a filtered error.

    ``e``: ``[T, ...]``; returns ``[...]`` (the time axis reduced).
    """
    norm = alpha_sq_sum(tau_rise, tau_decay, dt)
    return jnp.sum(e * e, axis=0) * (dt / norm)


def moving_average_cost(
    e: Array, dt: float, *, tau: float = 10.0, state: Array | None = None
) -> Array:
    """The reference code's online cost: an exponential moving average of ``mean_i e_i^2``.

    ``c[t] = a c[t-1] + (1 - a) mean_i e_i[t]^2``, ``a = exp(-dt / tau)`` (``tau`` = 10 s); the
    code stores this mean square without the root that the paper's text mentions. Evaluated per
    block as ``c[K] = a^K c[0] + (1 - a) y[K-1]`` with ``y[k] = a y[k-1] + m[k]`` started at 0 in
    the block (compensated summation): a per-step float32 recursion with ``1 - a = 1e-5`` would
    drift by ~1e-3 relative, and a scan (unlike a reduction) sums in the same order whatever the
    vmapped batch size.

    Args:
      e: ``[T, *B, N]`` filtered error (1/s).
      state: ``[*B]`` average before the block (zeros if None).

    Returns:
      ``[*B]`` average at the end of the block (units 1/s^2).
    """
    ms = jnp.mean(e * e, axis=-1)
    n = ms.shape[0]
    b = -math.expm1(-dt / tau)  # 1 - a, exact to float precision (a itself is not, in float32)

    def step(carry, x):
        # compensated y <- y + (x - b y): y grows to ~K x, so plain float32 adds lose ~1e-4
        y, comp = carry
        v = (x - b * y) - comp
        s = y + v
        return (s, (s - y) - v), None

    zero = jnp.zeros_like(ms[0])
    (y, _), _ = jax.lax.scan(step, (zero, zero), ms)
    c = b * y
    if state is not None:
        c = c + math.exp(-n * dt / tau) * state
    return c


class WindowState(NamedTuple):
    """Carried state of :func:`window_error`: ``fired`` ``[*B, N_out]``, 1.0 where the correct
    output has fired so far in the current window (0 elsewhere and outside windows)."""

    fired: jax.Array


def window_error(spikes, code, state: WindowState | None = None) -> tuple[jax.Array, WindowState]:
    """Window-of-opportunity error spikes ``delta`` (before the alpha filter), scanned over time.

    Args:
      spikes: ``[T, *B, N_out]`` output spike counts per step.
      code: window annotation (e.g. ``ssjax.tasks.xor.XORStream.code``), broadcastable to
        ``spikes`` (use ``code[:, None]`` against a batch ``[T, B, 2]``, or vmap over the
        batch): 0 outside windows, +1/-1 inside for the correct/wrong output, +2/-2 at a
        window's last step.
      state: carried from the previous block (None: no window open before step 0).

    Returns:
      ``(delta, state)``; ``delta`` ``[T, *B, N_out]`` float: ``-spikes`` where ``code < 0``,
      +1 where ``code == 2`` and the correct output has not fired in the window up to and
      including that step, 0 elsewhere. Pure ``lax.scan``: jit/vmap friendly, and blocks split
      anywhere give the same ``delta`` as one call when ``state`` is passed on.
    """
    spikes, code = jnp.asarray(spikes), jnp.asarray(code)
    dtype = spikes.dtype if jnp.issubdtype(spikes.dtype, jnp.floating) else jnp.float32
    shape = jnp.broadcast_shapes(spikes.shape, code.shape)
    s = jnp.broadcast_to(spikes, shape).astype(dtype)
    c = jnp.broadcast_to(code, shape)
    if state is None:
        fired0 = jnp.zeros(shape[1:], dtype)
    else:
        fired0 = jnp.broadcast_to(jnp.asarray(state.fired, dtype), shape[1:])

    def step(fired, sc):
        st, ct = sc
        hit = jnp.maximum(fired, (st > 0).astype(dtype))  # fired up to and including this step
        delta = jnp.where(ct < 0, -st, 0.0) + jnp.where((ct == 2) & (hit == 0), 1.0, 0.0)
        # Keep the flag only inside an open window: clearing it after the last step (code 2) lets
        # a next window start fresh even with no code-0 gap in between.
        return jnp.where(ct == 1, hit, 0.0).astype(dtype), delta.astype(dtype)

    fired, delta = jax.lax.scan(step, fired0, (s, c))
    return delta, WindowState(fired)


def window_outcome(spikes, code, fired=None) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Per-window classification outcome, scanned over time with a carried state.

    A window (``code != 0``, ending where ``|code| == 2``) is answered correctly when the correct
    output (``code > 0``) fired in it and no wrong output (``code < 0``) did.

    Args:
      spikes: ``[T, N_out]`` output spikes; code: ``[T, N_out]`` window annotation.
      fired: ``[N_out]`` which outputs fired so far in the window open at step 0 (zeros if None).

    Returns:
      ``(ended [T], correct [T], fired)``: 1.0 at the last step of each window, and 1.0 there if
      it was answered correctly; the carried state.
    """
    s = jnp.asarray(spikes)
    c = jnp.asarray(code)
    dtype = s.dtype if jnp.issubdtype(s.dtype, jnp.floating) else jnp.float32
    f0 = jnp.zeros(s.shape[1:], dtype) if fired is None else fired

    def step(f, sc):
        st, ct = sc
        f = jnp.where(ct != 0, jnp.maximum(f, (st > 0).astype(dtype)), 0.0)
        end = jnp.any(jnp.abs(ct) == 2)
        ok = jnp.all(jnp.where(ct > 0, f > 0, True) & jnp.where(ct < 0, f == 0, True))
        f_next = jnp.where(end, jnp.zeros_like(f), f)
        return f_next, (end.astype(dtype), (end & ok).astype(dtype))

    fired, (ended, correct) = jax.lax.scan(step, f0, (s.astype(dtype), c))
    return ended, correct, fired
