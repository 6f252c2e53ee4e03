"""Adaptive LIF (ALIF): LIF with a spike-triggered adaptive threshold (Bellec et al. 2018, LSNN).

    A[t] = theta + beta_a a[t],        a[t + 1] = rho_a a[t] + S[t],        rho_a = exp(-dt/tau_a)

The membrane, synaptic current, reset and refractoriness are LIF's (:mod:`ssjax.neuron`, the
same arithmetic in the same order); only the spike decision changes: ``S = H(U - A)``, with
``U`` the membrane potential after the integration and the refractory clamp. ``a`` is
dimensionless and jumps by **1** per spike, then decays with ``tau_a``; ``beta_a`` (V) is
therefore the threshold increase right after one spike, independent of ``dt`` and ``tau_a``.
Bellec et al. write ``tau_a db/dt = -b + sum_s delta(t - t_s)`` (a jump of ``1/tau_a``, so ``b``
is a rate estimate and their ``beta`` multiplies a rate); their ``beta`` corresponds to
``beta_a = beta / tau_a`` here (and their discrete ``(1 - rho)`` jump to
``beta_a = beta (1 - rho_a)``). We prefer the jump of 1 so that ``beta_a`` reads as a voltage
and ``beta_a = 0`` is LIF exactly.

One step (``dt``), after LIF's steps 1-2 (:func:`ssjax.neuron.lif_integrate`):

3. ``u = U - beta_a a`` (the membrane relative to the adapted threshold, shifted so that the
   threshold is ``theta``); ``S = H(u - theta)``; LIF's reset and refractory counter on ``U``;
4. ``I <- I exp(-dt/tau_syn)``, ``a <- rho_a a + S``.

``step`` returns ``u`` as the potential the spike was decided on: :meth:`spike` and
:meth:`surrogate_grad` (LIF's, at ``u - theta``) are then the contract's, and SuperSpike
evaluates ``sigma'(U - A)``. The PSP trace (``dU/dw`` with the reset and the threshold jumps
ignored) is LIF's: the adaptation does not change the membrane.

Gradients: ``reset_grad`` covers every spike-triggered change. With ``False`` (SuperSpike's
assumption) the reset, the refractory clamp and the jump of ``a`` are transparent to autodiff
(``a`` enters the spike decision as a constant); with ``True`` all are differentiated, so BPTT
also carries the threshold's dependence on earlier spikes, as in Bellec et al.'s BPTT.

Units: seconds and volts; ``a`` dimensionless. Reference: Bellec, Salaj, Subramoney, Legenstein
& Maass (2018), "Long short-term memory and learning-to-learn in networks of spiking neurons",
NeurIPS 31 (arXiv:1803.09574), eqs. (1)-(2) and Methods.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ssjax.neuron import LIFParams, LIFState, lif_integrate, lif_reset
from ssjax.params import compare, ge, param

Array = jax.Array


class ALIFState(NamedTuple):
    """State of a group of ALIF neurons, each leaf ``[..., N]``: LIF's ``u`` (V), ``i`` (V),
    ``ref`` (int32 steps), and the dimensionless adaptation ``a`` (the threshold is
    ``theta + beta_a a``)."""

    u: Array
    i: Array
    ref: Array
    a: Array


@dataclasses.dataclass(frozen=True)
class ALIFParams(LIFParams):
    """Parameters of a layer of ALIF neurons: every LIF parameter (one declaration, inherited)
    plus the adaptation's strength ``beta_a`` (V per spike) and time constant ``tau_a`` (s).

    Defaults: Bellec et al.'s ``tau_a`` of the order of the task's memory (here 200 ms) and a
    threshold increase of 1 mV per spike. The fast SuperSpike routes refuse it (they hold LIF's
    closed forms and compare types exactly); ``method='stepwise'`` and BPTT run it.
    """

    beta_a: float = param(1e-3, ge(0, " V"), doc="threshold increase per spike (V)")
    tau_a: float = param(
        0.2, compare(">", "neuron.dt", " s", lo="> 0 and "), doc="adaptation time constant (s)"
    )

    @property
    def adapt_decay(self) -> float:
        """``rho_a = exp(-dt / tau_a)``."""
        return math.exp(-self.dt / self.tau_a)

    def init(self, shape, dtype=jnp.float32) -> ALIFState:  # type: ignore[override]
        """Resting state, no adaptation (``a = 0``)."""
        return alif_init(self, shape, dtype)

    # the subclass shares LIF's parameters, not its state type (the contract's state is opaque)
    def step(  # type: ignore[override]
        self, state: ALIFState, x: Array, beta=None
    ) -> tuple[ALIFState, Array, Array]:
        """One step with synaptic input ``x`` (:func:`alif_step`); ``(state, spikes, u)``."""
        return alif_step(self, state, x, beta=beta)

    def structure(self) -> ALIFParams:
        """These parameters with the traced ``beta`` canonical."""
        return dataclasses.replace(self, surrogate=self.surrogate.structure())


def alif_init(params: ALIFParams, shape, dtype=jnp.float32) -> ALIFState:
    """Resting state: ``U = U_rest``, no current, not refractory, ``a = 0``."""
    return ALIFState(
        jnp.full(shape, params.u_rest, dtype),
        jnp.zeros(shape, dtype),
        jnp.zeros(shape, jnp.int32),
        jnp.zeros(shape, dtype),
    )


def alif_step(
    params: ALIFParams,
    state: ALIFState,
    x: Array,
    i_ext: Array | float = 0.0,
    *,
    beta: Array | float | None = None,
) -> tuple[ALIFState, Array, Array]:
    """Advance ALIF neurons by one step ``dt``; returns ``(state, spikes, u)``.

    Args:
      params: static neuron parameters.
      state: :class:`ALIFState`, leaves ``[..., N]``.
      x: ``[..., N]`` synaptic input arriving this step (V).
      i_ext: unfiltered external drive (V), as :func:`ssjax.neuron.lif_step`'s.
      beta: the surrogate's steepness (1/V) as a value; ``surrogate.beta`` if None.

    Returns:
      the new state; spikes ``[..., N]`` (0/1); ``u = U - beta_a a``, the potential the spike
      was decided on against ``theta`` (``S = H(u - theta) = H(U - A)``).
    """
    lif = LIFState(state.u, state.i, state.ref)
    i, u_mem, refractory = lif_integrate(params, lif, x, i_ext)
    a = state.a if params.reset_grad else jax.lax.stop_gradient(state.a)
    u = u_mem - params.beta_a * a
    s = params.spike(u, beta)
    new = lif_reset(params, lif, i, u_mem, s, refractory)
    # the jump is a spike-triggered change like the reset: transparent unless reset_grad
    a_new = params.adapt_decay * state.a + (s if params.reset_grad else jax.lax.stop_gradient(s))
    return ALIFState(new.u, new.i, new.ref, a_new), s, u
