"""Leaky-integrator (LI) readout: a layer of non-spiking neurons whose membrane is the output.

The readout neuron is LIF's membrane and synapse (SUPERSPIKE.md section 1) without threshold,
spike, reset or refractory period (SI units: seconds, volts; weights in volts)::

    tau_mem dU/dt = (U_rest - U) + I,     tau_syn dI/dt = -I,     I += w on an input spike

One step is :func:`ssjax.neuron.lif_integrate` (steps 1-2 of the reference code's order: add this
step's input ``x[t] = s[t] @ W`` to ``I``, update ``U`` with the neuron's integrator, Euler or
exact), then the synaptic decay ``I <- I exp(-dt / tau_syn)``: the very step of LIF, so a
readout equals the membrane of a LIF layer whose threshold is never reached, bit for bit
(tested), and :class:`ssjax.nn.LI` is this function inside a Flax module.

Closed form: one input spike of weight ``w`` at step ``t0`` gives, for ``t >= t0``,
``U[t] - U_rest = c w (a^(n+1) - q^(n+1)) / (a - q)`` with ``n = t - t0``, ``q = exp(-dt /
tau_syn)`` and ``(a, c)`` from :meth:`ssjax.neuron.LIFParams.membrane_coeffs`; with the exact
integrator this is ``w epsilon((n + 1) dt)``, the PSP kernel of :mod:`ssjax.filters`.

The readout's potentials ``[T, *B, C]`` feed the classification losses of
:mod:`ssjax.classification` (max over time, last step, mean over time). Of :class:`LIFParams`
the readout reads ``tau_mem``, ``tau_syn``, ``dt``, ``u_rest`` and ``integrator``; ``theta``,
``u_reset``, ``tau_ref``, ``delay`` and the surrogate play no part.

Reference: Zenke & Vogels (2021), Neural Computation 33(4) (LI readout with max-over-time
cross-entropy); Cramer et al. (2020), IEEE TNNLS (the SHD benchmark's readouts); Zenke &
Ganguli (2018), Methods (the LIF neuron).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ssjax._types import Array
from ssjax.network import input_currents
from ssjax.neuron import LIFParams, LIFState, lif_init, lif_integrate

__all__ = ["li_init", "li_readout", "li_scan", "li_step"]


def li_init(params: LIFParams, shape, dtype=jnp.float32) -> LIFState:
    """Resting readout (``U = U_rest``, ``I = 0``) for neurons of ``shape`` (e.g. ``(B, C)``).

    The state is a :class:`ssjax.neuron.LIFState` whose refractory counter stays 0.
    """
    return lif_init(params, shape, dtype)


def li_step(params: LIFParams, state: LIFState, x: Array) -> tuple[LIFState, Array]:
    """One step of the readout with synaptic input ``x`` ``[..., C]`` (V); ``(state, u)``.

    ``I <- I + x``, ``U <- U_rest + a (U - U_rest) + c I`` (:func:`ssjax.neuron.lif_integrate`,
    never refractory), then ``I <- q I``. ``u`` ``[..., C]`` is the new potential (V).
    """
    free = LIFState(state.u, state.i, jnp.zeros_like(state.ref))
    i, u, _ = lif_integrate(params, free, x)
    return LIFState(u, i * params.syn_decay, state.ref), u


def li_scan(
    params: LIFParams, currents: Array, state: LIFState | None = None
) -> tuple[LIFState, Array]:
    """The readout over ``T`` steps of synaptic input ``currents`` ``[T, *B, C]`` (V).

    Returns ``(state, u)``: the state after the last step and the potentials ``[T, *B, C]``
    (V). ``state``: carried from a previous call (resting if None), so that blocks split
    anywhere give one call's result.
    """
    if state is None:
        state = li_init(params, currents.shape[1:], currents.dtype)
    return jax.lax.scan(lambda st, xt: li_step(params, st, xt), state, currents)


def li_readout(
    params: LIFParams, spikes: Array, w: Array, state: LIFState | None = None
) -> tuple[LIFState, Array]:
    """The readout of presynaptic ``spikes`` ``[T, *B, N]`` through weights ``w`` ``[N, C]`` (V).

    ``x[t] = spikes[t] @ w`` (:func:`ssjax.network.input_currents`, no axonal delay), then
    :func:`li_scan`; returns ``(state, u)`` with ``u`` ``[T, *B, C]`` (V).
    """
    return li_scan(params, input_currents(spikes, w), state)
