"""Neuron models behind one contract (:class:`Neuron`); LIF is :class:`ssjax.neuron.LIFParams`."""

from ssjax.neurons.base import Neuron

__all__ = ["Neuron"]
