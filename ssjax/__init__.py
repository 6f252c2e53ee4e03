"""ssjax: SuperSpike (Zenke & Ganguli 2018) surrogate-gradient learning for spiking networks in JAX.

The public surface, bottom up: the spike nonlinearity, filters, LIF neurons, layered networks,
losses, and the BPTT rule. Units are SI (seconds, volts); arrays are time-major ``[T, *B, N]``.
"""

from ssjax.filters import alpha_kernel, double_exp_filter, epsilon_kernel, exp_filter
from ssjax.losses import (
    error_distance,
    filtered_error,
    moving_average_cost,
    van_rossum_distance,
    van_rossum_loss,
)
from ssjax.network import (
    NetState,
    Network,
    Record,
    init_state,
    init_weights,
    simulate,
    simulate_stepwise,
)
from ssjax.neuron import LIFParams, LIFState, lif_init, lif_step
from ssjax.optim import make_optimizer, rmaxprop, rmsprop
from ssjax.rules.bptt import bptt_grad, bptt_loss, with_reset_grad
from ssjax.spike import Surrogate, spike, surrogate_grad

__version__ = "0.1.0"

__all__ = [
    "LIFParams",
    "LIFState",
    "NetState",
    "Network",
    "Record",
    "Surrogate",
    "alpha_kernel",
    "bptt_grad",
    "bptt_loss",
    "double_exp_filter",
    "epsilon_kernel",
    "error_distance",
    "exp_filter",
    "filtered_error",
    "init_state",
    "init_weights",
    "lif_init",
    "lif_step",
    "make_optimizer",
    "moving_average_cost",
    "rmaxprop",
    "rmsprop",
    "simulate",
    "simulate_stepwise",
    "spike",
    "surrogate_grad",
    "van_rossum_distance",
    "van_rossum_loss",
    "with_reset_grad",
]
