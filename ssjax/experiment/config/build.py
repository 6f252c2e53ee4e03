"""Building: the library objects a validated config describes, and its task's arrays.

:func:`build_trainer` assembles the :class:`ssjax.train.TrainSpec` from the sections with
:func:`make`, which copies exactly the fields a library dataclass declares (the schema is
generated from those declarations, so there is no list of names to keep in step). The task
builders run the task kind's ``build``/``heldout`` on the data read at validation.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ssjax.classification import ClassifierLoss
from ssjax.data.trials import TrialSet
from ssjax.experiment.config.errors import ConfigError
from ssjax.experiment.config.schema import RULE_TYPES, Config
from ssjax.experiment.config.validate import label, trial_optimizer, validate_config
from ssjax.network import Network
from ssjax.neurons import MODELS
from ssjax.optim import Optimizer
from ssjax.params import params_of
from ssjax.rules.regulariser import Regularizer
from ssjax.rules.superspike import SuperSpikeConfig
from ssjax.spike import Surrogate
from ssjax.tasks import registry
from ssjax.tasks.trials import TrialData, split_validation
from ssjax.train import TrainSpec
from ssjax.trial import TrialSpec

__all__ = [
    "TASK_KINDS",
    "WINDOW_TASKS",
    "build_heldout",
    "build_patterns",
    "build_task",
    "build_trainer",
    "build_trial_optimizer",
    "build_trial_sets",
    "build_trial_spec",
    "make",
    "n_blocks",
    "run_dtype",
]

TASK_KINDS = registry.names()
# tasks whose targets are window annotations (classification) rather than spike trains
WINDOW_TASKS = registry.window_kinds()


def make(cls, section, **nested):
    """``cls`` built from the fields of ``section`` that ``cls`` declares, plus ``nested``
    (its dataclass-valued fields, built from other sections); a declared field the section
    leaves out (e.g. ``Surrogate.forward``) keeps its default."""
    have = {f.name for f in dataclasses.fields(section)}
    kw = {f.name: getattr(section, f.name) for f, _ in params_of(cls) if f.name in have}
    return cls(**kw, **nested)


def n_blocks(cfg: Config) -> int:
    """Number of blocks of a run: ``run.duration / run.block``."""
    return int(round(cfg.run.duration / cfg.run.block))


def _network(cfg: Config) -> Network:
    neuron = make(MODELS[cfg.neuron.model], cfg.neuron, surrogate=make(Surrogate, cfg.surrogate))
    return make(Network, cfg.network, neuron=neuron)


def _trial_config(cfg: Config) -> Config:
    cfg = validate_config(cfg)
    if not registry.get(cfg.task.kind).trials:
        raise ConfigError(
            label(cfg), "task.kind", f"{cfg.task.kind!r} is a pattern task, not a trial task"
        )
    return cfg


def build_trial_spec(cfg: Config) -> TrialSpec:
    """The :class:`ssjax.trial.TrialSpec` of a trial config (``task.kind`` of
    :mod:`ssjax.tasks.trials`): network, ``rule.name``, the ``readout`` section, SuperSpike's
    settings (``rule``, ``regularizer``, ``trials.error``) and the ``trials`` window, target times
    and ``carry_state``."""
    cfg = _trial_config(cfg)
    t = cfg.trials
    try:
        net = _network(cfg)
        ss = make(
            SuperSpikeConfig,
            cfg.rule,
            error=t.error,
            regularizer=make(Regularizer, cfg.regularizer),
        )
        return TrialSpec(
            net,
            rule=cfg.rule.name,
            readout=make(ClassifierLoss, cfg.readout),
            superspike=ss,
            window_start=t.window_start,
            window_stop=t.window_stop,
            target_times=t.target_times,
            error_tail=t.error_tail,
            carry_state=t.carry_state,
        )
    except ValueError as exc:
        raise ConfigError(label(cfg), None, f"invalid configuration: {exc}") from None


def build_trial_optimizer(cfg: Config):
    """The optax transformation of a trial config: ``ssjax.optim.from_name(optimizer.name,
    learning_rate=optimizer.learning_rate, **optimizer.kwargs)`` (checked at validation)."""
    cfg = _trial_config(cfg)
    try:
        return trial_optimizer(cfg.optimizer)
    except ValueError as exc:
        key, msg = exc.args
        raise ConfigError(label(cfg), key, msg) from None


def build_trial_sets(cfg: Config) -> tuple[TrialSet, TrialSet | None, TrialSet | None]:
    """``(train, validation, test)`` trials of a trial config: the kind's data (read at
    validation), the validation split cut from its training trials
    (:func:`ssjax.tasks.trials.split_validation`: ``trials.validation_fraction``, stratified,
    from ``trials.split_seed``); None where there is none."""
    cfg = _trial_config(cfg)
    assert cfg._checked is not None  # validate_config attaches it
    data = cfg._checked.data
    assert isinstance(data, TrialData)  # a trial kind's load returns it
    train, val = split_validation(data.train, cfg.trials.validation_fraction, cfg.trials.split_seed)
    return train, val, data.test


def build_trainer(cfg: Config) -> TrainSpec:
    """The :class:`ssjax.train.TrainSpec` the config describes (validates first)."""
    cfg = validate_config(cfg)
    if registry.get(cfg.task.kind).trials:
        raise ConfigError(
            label(cfg),
            "task.kind",
            f"{cfg.task.kind!r} is a trial task (ssjax.tasks.trials), which the pattern "
            "trainer and sweeps do not take: run it with `ssjax train` without --sweep "
            "(build_trial_spec in Python)",
        )
    try:
        net = _network(cfg)
        error = "window" if cfg.task.kind in WINDOW_TASKS else "van_rossum"
        rule_cls = RULE_TYPES[cfg.rule.name]
        nested = {"error": error}
        if rule_cls is SuperSpikeConfig:
            nested["regularizer"] = make(Regularizer, cfg.regularizer)
        rule = make(rule_cls, cfg.rule, **nested)
        return TrainSpec(
            net,
            rule=rule,
            optimizer=make(Optimizer, cfg.optimizer),
            block=cfg.run.block,
        )
    except ValueError as exc:
        raise ConfigError(label(cfg), None, f"invalid configuration: {exc}") from None


def _kind_of(cfg: Config):
    """``(cfg validated, its task kind, the kind's params, neuron.dt, run.dtype)``; a validated
    Config (load_config's) is taken as is."""
    cfg = validate_config(cfg)
    kind = registry.get(cfg.task.kind)
    return cfg, kind, registry.task_view(kind, cfg.task), cfg.neuron.dt, np.dtype(cfg.run.dtype)


def build_heldout(cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """Held-out stream of a window task ``(inputs [T, n_in], code [T, n_out])`` in ``run.dtype``.

    The task kind's ``heldout`` (ssjax.tasks.registry). randman: ``task.n_heldout`` new samples
    per class of the training stream's manifolds, after one ``task.gap`` of silence; xor:
    ``task.n_heldout`` patterns of each of the 4 kinds with the training stream's stimulus timing
    but a new order, new gaps and new background noise (ssjax.tasks.randman, ssjax.tasks.xor).
    Raises ConfigError unless the kind has a held-out set and ``task.n_heldout >= 1``.
    """
    cfg, kind, task, dt, dtype = _kind_of(cfg)
    if kind.heldout is None or cfg.task.n_heldout < 1:
        have = " or ".join(sorted(n for n in TASK_KINDS if registry.get(n).heldout is not None))
        raise ConfigError(
            label(cfg), "task.n_heldout", f"a held-out set needs task.kind {have} and >= 1"
        )
    assert cfg._checked is not None  # validate_config attaches it
    return kind.heldout(task, dt, dtype, cfg._checked.data)


def build_patterns(cfg: Config, block_steps: int | None = None):
    """One pattern period as patterns (:mod:`ssjax.pattern`): ``(inputs [P, N_in], targets
    [P, N_out])``, served in ``run.dtype``; spike rasters as events, so memory is ``O(spikes)``.

    ``block_steps``: the window length their capacity is sized for (default ``run.block /
    neuron.dt``, the trainer's block). For window tasks (WINDOW_TASKS) the period is the whole
    frozen stream and the targets are its int8 window annotation; for image, P = task.period /
    neuron.dt and the targets draw the image. The task kind's ``build``
    (ssjax.tasks.registry), on the data files read at validation.
    """
    cfg, kind, task, dt, dtype = _kind_of(cfg)
    assert cfg._checked is not None  # validate_config attaches it
    if block_steps is None:
        block_steps = int(round(cfg.run.block / dt))
    x, y = kind.build(task, dt, dtype, cfg._checked.data)
    return x.with_block(block_steps), y.with_block(block_steps)


def build_task(cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """One pattern period as dense host arrays ``(inputs [P, N_in], targets [P, N_out])`` in
    ``run.dtype``: :func:`build_patterns` densified, for small uses (tests, plots); the trainer
    takes the patterns themselves."""
    cfg, kind, task, dt, dtype = _kind_of(cfg)
    assert cfg._checked is not None  # validate_config attaches it
    x, y = kind.build(task, dt, dtype, cfg._checked.data)
    return x.to_dense(), y.to_dense()


def run_dtype(cfg: Config):
    """The JAX dtype of the run's state (``run.dtype``); ConfigError when ``float64`` is asked
    for but JAX runs without 64-bit types (it would silently compute in float32)."""
    if cfg.run.dtype == "float64":
        if not jax.config.read("jax_enable_x64"):
            raise ConfigError(
                label(cfg),
                "run.dtype",
                "float64 needs JAX's 64-bit mode, which is off: set JAX_ENABLE_X64=1 in the "
                "environment or call jax.config.update('jax_enable_x64', True) before any JAX "
                "computation (the ssjax command does this itself for a float64 config)",
            )
        return jnp.float64
    return jnp.float32
