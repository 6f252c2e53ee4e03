"""Current-based leaky integrate-and-fire neurons in SI units (SUPERSPIKE.md section 1).

    tau_mem dU/dt = (U_rest - U) + I + I_ext,     tau_syn dI/dt = -I,     I += w on a spike

``I`` is a synaptic "current" expressed in volts (the steady-state depolarisation it would cause),
so weights are in volts. When ``U`` rises strictly above ``theta`` the neuron spikes, ``U`` is set
to ``U_reset`` and clamped to ``U_rest`` for ``tau_ref``.

One step ``t`` (``dt``), in the order of the reference Auryn code (``CubaIFGroup``):

1. ``I <- I + x[t]`` (spikes arriving during this step, ``x = s_pre @ W``);
2. membrane update from ``U`` with the current ``I`` (Euler, or the exact exponential solution for
   a current that decays with ``tau_syn`` during the step), or clamp at ``U_rest`` while
   refractory;
3. spike ``S = H(U - theta)`` (``H(0) = 0``), reset ``U <- U_reset``, refractory counter set;
4. ``I <- I exp(-dt / tau_syn)`` (exact synaptic decay in both integrators).

The state after step ``t`` stands for time ``(t + 1) dt``. With the exact integrator the
sub-threshold response to one input spike at step ``t0`` is ``w * epsilon((t - t0 + 1) dt)``,
exactly the closed form of :func:`ssjax.filters.epsilon_kernel`; forward Euler (the reference
code's choice, our default) differs by O(dt / tau_mem), which the tests bound.

Gradients: with ``reset_grad=False`` (SuperSpike's assumption, "ignore the reset"), the reset and
the refractory clamp are transparent to autodiff, so ``dU/dw`` is the free membrane response
(the PSP trace); with ``reset_grad=True`` both are differentiated as written.

:class:`LIFParams` implements the neuron contract of :mod:`ssjax.neurons.base` (``init``,
``step``, ``spike``, ``surrogate_grad``, ``psp_init``, ``psp_step``) through the functions here.

Reference: Zenke & Ganguli (2018), Neural Computation 30(6), Methods; Auryn ``CubaIFGroup``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from ssjax.params import check_fields, choice, compare, gt, multiple_of, param
from ssjax.spike import Surrogate

Array = jax.Array

INTEGRATORS = ("euler", "exact")
_TAU = compare(">", "neuron.dt", " s", lo="> 0 and ")


@dataclasses.dataclass(frozen=True)
class LIFParams:
    """Parameters of a layer of LIF neurons (SI: seconds, volts). Hashable, so jit-static.

    Defaults are the paper's: theta -50 mV, rest = reset -60 mV, tau_mem 10 ms, tau_syn 5 ms,
    tau_ref 5 ms, dt 0.1 ms, no delay (the reference code's 0.8 ms is ``delay=8e-4``).
    """

    SCOPE: ClassVar[str] = "neuron"

    theta: float = param(-50e-3, compare(">", "neuron.u_rest", " V"), doc="threshold (V)")
    u_rest: float = param(-60e-3, doc="resting potential (V)")
    u_reset: float = param(-60e-3, compare("<", "neuron.theta", " V"), doc="reset (V)")
    tau_mem: float = param(10e-3, _TAU, doc="membrane time constant (s)")
    tau_syn: float = param(5e-3, _TAU, doc="synaptic time constant (s)")
    tau_ref: float = param(5e-3, multiple_of("neuron.dt"), doc="refractory period (s)")
    dt: float = param(1e-4, gt(0, " s"), doc="time step (s)")
    delay: float = param(
        0.0, multiple_of("neuron.dt"), doc="axonal delay (s); the reference code's is 8e-4"
    )
    integrator: str = param("euler", choice(INTEGRATORS), doc="euler | exact")
    reset_grad: bool = param(False, doc="let the gradient flow through the reset")
    surrogate: Surrogate = dataclasses.field(default_factory=Surrogate)

    def __post_init__(self):
        check_fields(self)
        if self.smooth and self.tau_ref != 0:
            raise ValueError(
                "LIFParams.tau_ref must be 0 with a smooth (sigmoid) spike forward, whose "
                f"graded spikes have no refractory onset; got tau_ref={self.tau_ref}"
            )

    @property
    def smooth(self) -> bool:
        """True for the smooth stand-in (sigmoid forward, soft reset ``U + S (U_reset - U)``)."""
        return self.surrogate.forward != "heaviside"

    @property
    def ref_steps(self) -> int:
        """Refractory period in steps."""
        return int(round(self.tau_ref / self.dt))

    @property
    def delay_steps(self) -> int:
        """Axonal delay in steps."""
        return int(round(self.delay / self.dt))

    @property
    def syn_decay(self) -> float:
        """``exp(-dt / tau_syn)``."""
        return math.exp(-self.dt / self.tau_syn)

    def membrane_coeffs(self) -> tuple[float, float, float]:
        """Coefficients of the membrane step ``V' = a V + b I_ext + c I`` with ``V = U - U_rest``.

        Euler: ``a = 1 - dt/tau_m``, ``b = c = dt/tau_m``. Exact (current ``I e^{-s/tau_s}``
        during the step, constant ``I_ext``): ``a = e^{-dt/tau_m}``, ``b = 1 - a``,
        ``c = tau_s/(tau_m - tau_s) (e^{-dt/tau_m} - e^{-dt/tau_s})`` (``dt/tau_m a`` if equal).
        """
        k = self.dt / self.tau_mem
        if self.integrator == "euler":
            return 1.0 - k, k, k
        a_m, a_s = math.exp(-k), self.syn_decay
        if math.isclose(self.tau_mem, self.tau_syn, rel_tol=1e-9):
            c = k * a_m
        else:
            c = self.tau_syn / (self.tau_mem - self.tau_syn) * (a_m - a_s)
        return a_m, 1.0 - a_m, c

    # the neuron contract (ssjax.neurons.base.Neuron)

    def init(self, shape, dtype=jnp.float32) -> LIFState:
        """Resting state for neurons of ``shape`` (:func:`lif_init`)."""
        return lif_init(self, shape, dtype)

    def step(self, state: LIFState, x: Array, beta=None) -> tuple[LIFState, Array, Array]:
        """One step with synaptic input ``x`` (:func:`lif_step`); ``(state, spikes, u_pre)``."""
        return lif_step(self, state, x, beta=beta)

    def spike(self, u: Array, beta=None) -> Array:
        """Spikes decided on the membrane potential ``u``: ``H(u - theta)``, surrogate backward
        with steepness ``beta`` (``surrogate.beta`` if None)."""
        return self.surrogate(u - self.theta, beta)

    def surrogate_grad(self, u: Array, beta=None) -> Array:
        """``sigma'(u)``, the surrogate derivative at ``u - theta`` (``beta`` as for spike)."""
        return self.surrogate.grad(u - self.theta, beta)

    def structure(self) -> LIFParams:
        """These parameters with the traced ``beta`` canonical (:meth:`Surrogate.structure`)."""
        return dataclasses.replace(self, surrogate=self.surrogate.structure())

    def psp_init(self, shape, dtype=jnp.float32) -> tuple[Array, Array]:
        """Zero PSP trace ``(z_syn, z_mem)`` for presynaptic units of ``shape``."""
        return jnp.zeros(shape, dtype), jnp.zeros(shape, dtype)

    def psp_step(self, trace: tuple[Array, Array], s: Array):
        """One step of the PSP trace (:func:`psp_trace_step`); ``(trace, z_mem)``."""
        return psp_trace_step(self, trace, s)


class LIFState(NamedTuple):
    """State of a group of LIF neurons, each leaf ``[..., N]``.

    u: membrane potential (V); i: synaptic current (V); ref: remaining refractory steps (int32).
    """

    u: Array
    i: Array
    ref: Array


def lif_init(params: LIFParams, shape, dtype=jnp.float32) -> LIFState:
    """Resting state (``U = U_rest``, no current, not refractory) for neurons of ``shape``."""
    return LIFState(
        jnp.full(shape, params.u_rest, dtype),
        jnp.zeros(shape, dtype),
        jnp.zeros(shape, jnp.int32),
    )


def _transparent(value: Array, through: Array) -> Array:
    """``value`` in the forward pass, with the derivative of ``through`` (straight-through).

    Written so the forward value is bit-exact ``value``: ``through - sg(through)`` is exactly 0.
    """
    return jax.lax.stop_gradient(value) + (through - jax.lax.stop_gradient(through))


def lif_step(
    params: LIFParams,
    state: LIFState,
    x: Array,
    i_ext: Array | float = 0.0,
    *,
    beta: Array | float | None = None,
) -> tuple[LIFState, Array, Array]:
    """Advance LIF neurons by one step ``dt``; returns ``(state, spikes, u_pre)``.

    Args:
      params: static neuron parameters.
      state: ``LIFState`` with leaves ``[..., N]``.
      x: ``[..., N]`` synaptic input arriving this step (V), e.g. ``s_pre @ W``.
      i_ext: unfiltered external drive (V), added to the membrane equation; broadcastable.
      beta: the surrogate's steepness (1/V) as a value, e.g. traced; ``surrogate.beta`` if None.

    Returns:
      ``state``: the new state; ``spikes``: ``[..., N]`` 0/1 in the dtype of ``u``; ``u_pre``:
      the membrane potential the spike was decided on (after the refractory clamp, before the
      reset), which is where SuperSpike evaluates ``sigma'(U)``.
    """
    i, u_pre, refractory = lif_integrate(params, state, x, i_ext)
    s = params.spike(u_pre, beta)
    return lif_reset(params, state, i, u_pre, s, refractory), s, u_pre


def lif_integrate(
    params: LIFParams, state: LIFState, x: Array, i_ext: Array | float = 0.0
) -> tuple[Array, Array, Array | None]:
    """Steps 1-2 of :func:`lif_step`: ``(i, u_pre, refractory)`` before the spike decision.

    ``i`` is the current with this step's input added, ``u_pre`` the membrane potential after
    the integration and the refractory clamp, ``refractory`` the clamp's mask (None without a
    refractory period). Shared with models that change only the spike decision (ALIF).
    """
    a, b, c = params.membrane_coeffs()
    i = state.i + x
    v = state.u - params.u_rest
    u_free = params.u_rest + a * v + b * i_ext + c * i
    if params.ref_steps:
        refractory = state.ref > 0
        u_clamped = jnp.where(refractory, jnp.asarray(params.u_rest, u_free.dtype), u_free)
        u_pre = u_clamped if params.reset_grad else _transparent(u_clamped, u_free)
        return i, u_pre, refractory
    # no refractory period: no counter to test or update (a third of the step's work)
    return i, u_free, None


def lif_reset(
    params: LIFParams,
    state: LIFState,
    i: Array,
    u_pre: Array,
    s: Array,
    refractory: Array | None,
) -> LIFState:
    """Steps 3-4 of :func:`lif_step` after the spike ``s``: reset, refractory counter, current
    decay; the new :class:`LIFState`."""
    soft = u_pre + s * (params.u_reset - u_pre)
    if params.smooth:
        u_post = soft if params.reset_grad else _transparent(soft, u_pre)
    else:
        # the hard reset keeps the forward value bit-exact whatever the gradient choice
        u_post = jnp.where(s > 0, jnp.asarray(params.u_reset, u_pre.dtype), u_pre)
        u_post = _transparent(u_post, soft if params.reset_grad else u_pre)
    if refractory is not None:
        ref = jnp.where(refractory, state.ref - 1, state.ref)
        ref = jnp.where(s > 0, jnp.int32(params.ref_steps), ref)
    else:
        ref = state.ref
    return LIFState(u_post, i * params.syn_decay, ref)


def psp_trace_step(params: LIFParams, trace: tuple[Array, Array], s: Array):
    """One step of the presynaptic PSP trace ``epsilon * S`` with the neuron's own integrator.

    ``trace = (z_syn, z_mem)``: the synaptic and membrane parts of a unit-weight, reset-free
    neuron driven by spikes ``s`` (``[..., N_pre]``). ``z_mem`` is exactly ``dU/dw`` of a
    postsynaptic neuron whose reset is ignored. Returns ``(new_trace, z_mem)``.
    """
    a, _, c = params.membrane_coeffs()
    z_syn = trace[0] + s
    z_mem = a * trace[1] + c * z_syn
    return (z_syn * params.syn_decay, z_mem), z_mem
