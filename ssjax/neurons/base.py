"""The neuron contract: what a network, BPTT and the per-step SuperSpike rule need of a neuron.

A neuron model is a hashable (jit-static) parameter object, e.g. a frozen dataclass, with

    state          = neuron.init(shape, dtype)             resting state, leaves [*shape]
    state, s, u    = neuron.step(state, x, beta)           one step of dt, input x [..., N] (V)
    s              = neuron.spike(u, beta)                 the spike decided on u (custom VJP)
    sigma'(u)      = neuron.surrogate_grad(u, beta)        ds/du as the surrogate defines it
    trace          = neuron.psp_init(shape, dtype)         presynaptic trace, zero
    trace, z       = neuron.psp_step(trace, s_pre)         z = dU/dw with the reset ignored
    neuron         = neuron.structure()                    the traced fields canonical

``step`` does the whole update: it adds the input current, integrates, decides the spike with
``spike(u)`` (so its VJP is the surrogate), and handles reset and refractoriness inside; it
returns the new state, the spikes ``s`` (0/1, ``u``'s dtype) and ``u``, the membrane-potential-
like quantity the spike was decided on, which is where SuperSpike evaluates ``sigma'``.
``psp_step`` is the response of a unit-weight synapse with the reset ignored: the Hebbian
factor of SuperSpike, and the quantity whose product with the output error is the gradient.
``dt`` (s) is the step and ``delay_steps`` the axonal delay of the spikes a layer sends.
``surrogate`` is the spike's :class:`ssjax.spike.Surrogate`.

``beta``, the surrogate's steepness (1/V), is a value, not part of the static parameters:
``None`` means ``surrogate.beta``, and a traced scalar lets one program serve every steepness.
``structure()`` returns the parameters with ``beta`` canonical (what a program is compiled for).

Implementations: :class:`ssjax.neuron.LIFParams`. :mod:`ssjax.network`, :mod:`ssjax.rules.bptt`
and ``method="stepwise"`` of :mod:`ssjax.rules.superspike` use only this contract, so they run
any neuron that implements it. The fast SuperSpike routes (``dense``, ``event``) rely on closed
forms of LIF's PSP trace and declare the types they support (``SUPPORTED_NEURONS``); they refuse
others.

Shapes are any leading batch shape and ``N`` neurons; SI units (s, V).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ssjax._types import Array, PyTree
from ssjax.spike import Surrogate

# the surrogate's steepness (1/V): a value (traced or not), or None for ``surrogate.beta``
Beta = Array | float | None


@runtime_checkable
class Neuron(Protocol):
    """A neuron model (module docstring). Hashable: it is part of a jit-static network."""

    @property
    def dt(self) -> float:
        """Integration step (s)."""
        ...

    @property
    def delay_steps(self) -> int:
        """Axonal delay of the spikes a layer of these neurons receives, in steps."""
        ...

    @property
    def surrogate(self) -> Surrogate:
        """The spike nonlinearity and its surrogate derivative."""
        ...

    def init(self, shape: tuple[int, ...], dtype: Any = ...) -> PyTree:
        """Resting state of neurons of ``shape``."""
        ...

    def step(self, state: PyTree, x: Array, beta: Beta = None) -> tuple[PyTree, Array, Array]:
        """One step given the synaptic input ``x`` arriving now; ``(state, spikes, u)``."""
        ...

    def spike(self, u: Array, beta: Beta = None) -> Array:
        """Spikes decided on ``u`` (forward 0/1, backward the surrogate derivative)."""
        ...

    def surrogate_grad(self, u: Array, beta: Beta = None) -> Array:
        """``sigma'(u)``: the derivative :meth:`spike` uses in its backward pass."""
        ...

    def structure(self) -> Neuron:
        """These parameters with the traced ones (``surrogate.beta``) canonical."""
        ...

    def psp_init(self, shape: tuple[int, ...], dtype: Any = ...) -> PyTree:
        """Zero presynaptic trace for ``shape`` presynaptic units."""
        ...

    def psp_step(self, trace: PyTree, s: Array) -> tuple[PyTree, Array]:
        """One step of the presynaptic trace driven by spikes ``s``; ``(trace, z)``."""
        ...
