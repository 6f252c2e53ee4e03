"""Neuron models behind one contract (:class:`Neuron`): LIF (:class:`ssjax.neuron.LIFParams`)
and adaptive LIF (:class:`ssjax.neurons.alif.ALIFParams`). ``MODELS`` maps the config's
``neuron.model`` to the parameter class."""

from ssjax.neuron import LIFParams
from ssjax.neurons.alif import ALIFParams, ALIFState, alif_step
from ssjax.neurons.base import Neuron

MODELS: dict[str, type] = {"lif": LIFParams, "alif": ALIFParams}

__all__ = ["ALIFParams", "ALIFState", "MODELS", "Neuron", "alif_step"]
