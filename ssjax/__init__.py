"""ssjax: SuperSpike (Zenke & Ganguli 2018) surrogate-gradient learning for spiking networks in JAX.

The public surface, bottom up: the spike nonlinearity, filters, LIF neurons, layered networks,
losses, the LI readout and classification losses of labelled trials, the learning rules
(SuperSpike with its feedback strategies and per-class errors, BPTT), learning-rate rules and
optax's optimisers by name, and the online trainer. Units are SI (seconds, volts); arrays are
time-major ``[T, *B, N]``.

Importing ssjax changes nothing outside it (no environment variables, JAX config or matplotlib
backend) and imports nothing heavy: each name loads its module on first use.
:func:`configure_cpu` (``ssjax.xla``), called before the first JAX computation, applies the
XLA:CPU tuning that the ``ssjax`` command uses: one CPU device per core, time scans compiled as
single loops.
"""

import importlib
import importlib.util
import typing

if typing.TYPE_CHECKING:  # the names, for type checkers and IDEs; at run time: __getattr__
    from ssjax.class_errors import (
        class_target_error,
        class_targets,
        class_window_code,
        class_window_error,
    )
    from ssjax.classification import (
        READOUTS,
        ClassifierLoss,
        cross_entropy,
        first_spike_times,
        get_readout,
        spike_counts,
    )
    from ssjax.data.trials import TrialSet
    from ssjax.experiment.load import Evaluation, LoadedRun, evaluate, load_run
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
    from ssjax.neurons import ALIFParams, ALIFState, Neuron, alif_step
    from ssjax.nir_io import from_nir as from_nir  # outside __all__ (below)
    from ssjax.nir_io import to_nir as to_nir
    from ssjax.optim import (
        Optimizer,
        chain_from_names,
        from_name,
        make_optimizer,
        rmaxprop,
        rmsprop,
        schedule_from_name,
    )
    from ssjax.readout import li_init, li_readout, li_scan, li_step
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
    from ssjax.trial import TrialSpec, TrialState, evaluate_trials, init_trial_state, train_epoch
    from ssjax.xla import CpuSettings, configure_cpu

# name -> defining module; imported on first use, so that `import ssjax` (and the `ssjax`
# command before it parses its arguments or installs its signal handlers) does not import JAX
_EXPORTS = {
    # reading runs back: the experiment layer's public entry points
    "Evaluation": "ssjax.experiment.load",
    "LoadedRun": "ssjax.experiment.load",
    "evaluate": "ssjax.experiment.load",
    "load_run": "ssjax.experiment.load",
    "TrialSet": "ssjax.data.trials",
    "TrialSpec": "ssjax.trial",
    "TrialState": "ssjax.trial",
    "init_trial_state": "ssjax.trial",
    "train_epoch": "ssjax.trial",
    "evaluate_trials": "ssjax.trial",
    "class_target_error": "ssjax.class_errors",
    "class_targets": "ssjax.class_errors",
    "class_window_code": "ssjax.class_errors",
    "class_window_error": "ssjax.class_errors",
    "READOUTS": "ssjax.classification",
    "ClassifierLoss": "ssjax.classification",
    "cross_entropy": "ssjax.classification",
    "first_spike_times": "ssjax.classification",
    "get_readout": "ssjax.classification",
    "spike_counts": "ssjax.classification",
    "alpha_kernel": "ssjax.filters",
    "double_exp_filter": "ssjax.filters",
    "epsilon_kernel": "ssjax.filters",
    "exp_filter": "ssjax.filters",
    "VanRossum": "ssjax.losses",
    "error_distance": "ssjax.losses",
    "filtered_error": "ssjax.losses",
    "moving_average_cost": "ssjax.losses",
    "van_rossum_distance": "ssjax.losses",
    "van_rossum_loss": "ssjax.losses",
    "PeriodMetrics": "ssjax.metrics",
    "per_period": "ssjax.metrics",
    "NetState": "ssjax.network",
    "Network": "ssjax.network",
    "Record": "ssjax.network",
    "init_state": "ssjax.network",
    "init_weights": "ssjax.network",
    "simulate": "ssjax.network",
    "simulate_stepwise": "ssjax.network",
    "LIFParams": "ssjax.neuron",
    "LIFState": "ssjax.neuron",
    "lif_init": "ssjax.neuron",
    "lif_step": "ssjax.neuron",
    "Neuron": "ssjax.neurons",
    "ALIFParams": "ssjax.neurons",
    "ALIFState": "ssjax.neurons",
    "alif_step": "ssjax.neurons",
    "from_nir": "ssjax.nir_io",
    "to_nir": "ssjax.nir_io",
    "Optimizer": "ssjax.optim",
    "make_optimizer": "ssjax.optim",
    "rmaxprop": "ssjax.optim",
    "rmsprop": "ssjax.optim",
    "chain_from_names": "ssjax.optim",
    "from_name": "ssjax.optim",
    "schedule_from_name": "ssjax.optim",
    "li_init": "ssjax.readout",
    "li_readout": "ssjax.readout",
    "li_scan": "ssjax.readout",
    "li_step": "ssjax.readout",
    "Block": "ssjax.rules.base",
    "LearningRule": "ssjax.rules.base",
    "RuleOutput": "ssjax.rules.base",
    "BPTTConfig": "ssjax.rules.bptt",
    "BPTTState": "ssjax.rules.bptt",
    "bptt": "ssjax.rules.bptt",
    "bptt_grad": "ssjax.rules.bptt",
    "bptt_loss": "ssjax.rules.bptt",
    "with_reset_grad": "ssjax.rules.bptt",
    "FEEDBACKS": "ssjax.rules.feedback",
    "init_feedback": "ssjax.rules.feedback",
    "layer_errors": "ssjax.rules.feedback",
    "Regularizer": "ssjax.rules.regulariser",
    "SuperSpikeConfig": "ssjax.rules.superspike",
    "SuperSpikeHyper": "ssjax.rules.superspike",
    "SuperSpikeState": "ssjax.rules.superspike",
    "init_rule_state": "ssjax.rules.superspike",
    "superspike": "ssjax.rules.superspike",
    "superspike_grads": "ssjax.rules.superspike",
    "Surrogate": "ssjax.spike",
    "spike": "ssjax.spike",
    "surrogate_grad": "ssjax.spike",
    "Hyper": "ssjax.train",
    "TrainSpec": "ssjax.train",
    "TrainState": "ssjax.train",
    "init_train_state": "ssjax.train",
    "run_blocks": "ssjax.train",
    "run_blocks_jit": "ssjax.train",
    "CpuSettings": "ssjax.xla",
    "configure_cpu": "ssjax.xla",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        if importlib.util.find_spec(f"ssjax.{name}") is None:
            raise AttributeError(f"module 'ssjax' has no attribute {name!r}")
        return importlib.import_module(f"ssjax.{name}")  # a subpackage: ssjax.xla, ...
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # cached: __getattr__ runs once per name
    return value


def __dir__():
    return sorted([*globals(), *_EXPORTS])


__version__ = "0.1.0"

# to_nir and from_nir are lazy names outside __all__: they need the optional nir package, and
# `from ssjax import *` must work without it
__all__ = [
    "Evaluation",
    "LoadedRun",
    "evaluate",
    "load_run",
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
    "TrialSet",
    "TrialSpec",
    "TrialState",
    "evaluate_trials",
    "init_trial_state",
    "train_epoch",
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
    "ALIFParams",
    "ALIFState",
    "alif_step",
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
    "READOUTS",
    "ClassifierLoss",
    "chain_from_names",
    "class_target_error",
    "class_targets",
    "class_window_code",
    "class_window_error",
    "cross_entropy",
    "first_spike_times",
    "from_name",
    "get_readout",
    "li_init",
    "li_readout",
    "li_scan",
    "li_step",
    "schedule_from_name",
    "spike_counts",
]
