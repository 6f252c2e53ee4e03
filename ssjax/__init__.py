"""ssjax: SuperSpike (Zenke & Ganguli 2018) surrogate-gradient learning for spiking networks in JAX.

The public surface, bottom up: the spike nonlinearity, filters, LIF neurons, layered networks,
losses, the learning rules (SuperSpike with its feedback strategies, BPTT), learning-rate rules,
and the online trainer. Units are SI (seconds, volts); arrays are time-major ``[T, *B, N]``.

Importing ssjax changes nothing outside it (no environment variables, JAX config or matplotlib
backend). :func:`configure_cpu` (``ssjax.xla``), called before the first JAX computation, applies
the XLA:CPU tuning that the ``ssjax`` command uses: one CPU device per core, time scans compiled
as single loops.
"""

from ssjax.filters import alpha_kernel, double_exp_filter, epsilon_kernel, exp_filter
from ssjax.losses import (
    VanRossum,
    error_distance,
    filtered_error,
    moving_average_cost,
    van_rossum_distance,
    van_rossum_loss,
)
from ssjax.metrics import PeriodMetrics, per_period
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
from ssjax.neurons import Neuron
from ssjax.optim import Optimizer, make_optimizer, rmaxprop, rmsprop
from ssjax.rules.base import Block, LearningRule, RuleOutput
from ssjax.rules.bptt import BPTTConfig, BPTTState, bptt, bptt_grad, bptt_loss, with_reset_grad
from ssjax.rules.feedback import FEEDBACKS, init_feedback, layer_errors
from ssjax.rules.regulariser import Regularizer
from ssjax.rules.superspike import (
    SuperSpikeConfig,
    SuperSpikeHyper,
    SuperSpikeState,
    init_rule_state,
    superspike,
    superspike_grads,
)
from ssjax.spike import Surrogate, spike, surrogate_grad
from ssjax.train import (
    Hyper,
    TrainSpec,
    TrainState,
    init_train_state,
    run_blocks,
    run_blocks_jit,
)
from ssjax.xla import CpuSettings, configure_cpu

__version__ = "0.1.0"

__all__ = [
    "CpuSettings",
    "configure_cpu",
    "FEEDBACKS",
    "BPTTConfig",
    "BPTTState",
    "Block",
    "Hyper",
    "LearningRule",
    "RuleOutput",
    "SuperSpikeConfig",
    "SuperSpikeHyper",
    "SuperSpikeState",
    "TrainSpec",
    "TrainState",
    "VanRossum",
    "bptt",
    "superspike",
    "init_feedback",
    "init_rule_state",
    "init_train_state",
    "layer_errors",
    "PeriodMetrics",
    "per_period",
    "run_blocks",
    "run_blocks_jit",
    "superspike_grads",
    "LIFParams",
    "LIFState",
    "Neuron",
    "Optimizer",
    "Regularizer",
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
