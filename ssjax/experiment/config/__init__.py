"""Typed run configuration: YAML files, ``--set section.key=value`` overrides, validation, build.

A config has ten sections (network, neuron, surrogate, rule, regularizer, optimizer, task,
readout, trials, run), generated from the library's parameter declarations (:mod:`.schema`);
it is loaded and validated once (:mod:`.validate`), dumped and compared (:mod:`.yaml_io`), and
turned into the library's objects and the task's arrays (:mod:`.build`).
"""

from ssjax.experiment.config.build import (
    TASK_KINDS,
    WINDOW_TASKS,
    build_heldout,
    build_patterns,
    build_task,
    build_trainer,
    build_trial_optimizer,
    build_trial_sets,
    build_trial_spec,
    make,
    n_blocks,
    run_dtype,
)
from ssjax.experiment.config.errors import ConfigError
from ssjax.experiment.config.schema import (
    SECTIONS,
    Config,
    NetworkConfig,
    NeuronConfig,
    OptimizerConfig,
    ReadoutConfig,
    RegularizerConfig,
    RuleConfig,
    RunConfig,
    SurrogateConfig,
    TaskConfig,
    TrialsConfig,
)
from ssjax.experiment.config.validate import default_config, load_config, validate_config
from ssjax.experiment.config.yaml_io import config_to_dict, diff_configs, dump_config

__all__ = [
    "SECTIONS",
    "TASK_KINDS",
    "WINDOW_TASKS",
    "Config",
    "ConfigError",
    "NetworkConfig",
    "NeuronConfig",
    "OptimizerConfig",
    "RegularizerConfig",
    "RuleConfig",
    "ReadoutConfig",
    "RunConfig",
    "SurrogateConfig",
    "TaskConfig",
    "TrialsConfig",
    "build_heldout",
    "build_patterns",
    "build_task",
    "build_trainer",
    "build_trial_optimizer",
    "build_trial_sets",
    "build_trial_spec",
    "config_to_dict",
    "default_config",
    "diff_configs",
    "dump_config",
    "load_config",
    "make",
    "n_blocks",
    "run_dtype",
    "validate_config",
]
