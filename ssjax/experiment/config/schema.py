"""The config's schema: ten sections generated from the library's parameter declarations.

Each section is a frozen dataclass whose fields are the :func:`ssjax.params.param` fields of one
or more library dataclasses, with their types, defaults (the paper's values, SI units) and range
checks (:mod:`ssjax.params`). Nothing is declared twice: a new parameter of ``LIFParams``, say,
is a key of the ``neuron`` section by that declaration alone.

======================  ==================================================================
section                 declared by
======================  ==================================================================
``network``             :class:`ssjax.network.Network` (less ``neuron``)
``neuron``              ``model``, and the union of the models' parameters
                        (:data:`ssjax.neurons.MODELS`: :class:`ssjax.neuron.LIFParams`,
                        :class:`ssjax.neurons.alif.ALIFParams`; less ``surrogate``)
``surrogate``           :class:`ssjax.spike.Surrogate` (less ``forward``)
``rule``                ``name``, and the union of the rules' configs
                        (:class:`ssjax.rules.superspike.SuperSpikeConfig`,
                        :class:`ssjax.rules.bptt.BPTTConfig`; ``error`` follows the task)
``regularizer``         :class:`ssjax.rules.regulariser.Regularizer` (SuperSpike only)
``optimizer``           ``name``, ``learning_rate``, ``kwargs`` (:class:`OptimizerKeys`),
                        and :class:`ssjax.optim.Optimizer`'s keys
``task``                ``kind``, and the union of the task kinds' ``params``
                        (:mod:`ssjax.tasks.registry`)
``readout``             :class:`ssjax.classification.ClassifierLoss` (trial kinds)
``trials``              :class:`TrialsConfig` below: trial training (trial kinds)
``run``                 :class:`RunConfig` below: the experiment's own keys
======================  ==================================================================

Two modes share the schema, chosen by ``task.kind``. Pattern kinds (``timing``, ``ras``,
``xor``, ``image``, ``randman``) train online on a looped pattern (:mod:`ssjax.train`): they
read ``optimizer``'s :class:`~ssjax.optim.Optimizer` keys and every ``run`` key. Trial kinds
(``shd``, ``ras_folder``, ``randman_trials``, :mod:`ssjax.tasks.trials`) train on labelled
trials in epochs (:mod:`ssjax.trial`): they read ``readout``, ``trials``, the optimiser by name
(``optimizer.name``: any of :data:`ssjax.optim.TRANSFORMS`, with ``optimizer.learning_rate``
and the other keyword arguments in ``optimizer.kwargs``) and of ``run`` only ``seeds``,
``seed``, ``keep_checkpoints``, ``dtype`` and ``seed_batching``; with ``rule.name: bptt`` no
other ``rule`` key (the readout is the loss).

A union section holds every variant's keys so that a config is one fixed structure (dump,
diff, checkpoints); a key the chosen variant does not declare must keep its default
(:mod:`ssjax.experiment.config.validate`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from ssjax.classification import ClassifierLoss
from ssjax.data.batches import SPIKE_MODES
from ssjax.network import Network
from ssjax.neurons import MODELS
from ssjax.optim import OPTIMIZERS, TRANSFORMS, Optimizer
from ssjax.params import (
    Check,
    FrozenDict,
    borrow,
    choice,
    ge,
    gt,
    int_ge,
    param,
    params_of,
    same_declaration,
)
from ssjax.rules.regulariser import Regularizer
from ssjax.rules.superspike import SuperSpikeConfig
from ssjax.spike import Surrogate
from ssjax.tasks import registry
from ssjax.train import RULE_CONFIGS, RULES, TrainSpec

__all__ = [
    "Config",
    "NetworkConfig",
    "NeuronConfig",
    "OptimizerConfig",
    "OptimizerKeys",
    "ReadoutConfig",
    "RegularizerConfig",
    "RuleConfig",
    "RunConfig",
    "SECTIONS",
    "SurrogateConfig",
    "TaskConfig",
    "TrialsConfig",
    "MOVED",
    "RUN_TRIAL_KEYS",
    "is_trial",
    "RULE_TYPES",
    "variant_keys",
]

RULE_TYPES = RULE_CONFIGS  # rule.name -> its config dataclass (ssjax.train's registry)


def _section(
    name: str,
    sources: list[type],
    exclude: tuple[str, ...] = (),
    overrides: tuple[str, ...] = (),
) -> Any:
    """A frozen dataclass ``name`` with the param fields of ``sources`` (first declaration of a
    key wins; a key two sources declare must be one declaration, borrowed, unless it is in
    ``overrides``: the first source's declaration replaces the later ones)."""
    fields: dict[str, tuple[dataclasses.Field, Any]] = {}
    for src in sources:
        for f, tp in params_of(src):
            if f.name in exclude:
                continue
            if f.name in fields and f.name in overrides:
                continue
            if f.name in fields:
                if not same_declaration(fields[f.name][0], f):
                    raise TypeError(
                        f"{name}.{f.name} is declared twice ({src.__name__} and another source); "
                        "borrow one declaration (ssjax.params.borrow)"
                    )
                continue
            fields[f.name] = (f, tp)
    spec = [
        (
            n,
            tp,
            dataclasses.field(
                default=f.default, default_factory=f.default_factory, metadata=f.metadata
            ),
        )
        for n, (f, tp) in fields.items()
    ]
    cls = dataclasses.make_dataclass(name, spec, frozen=True)
    cls.__module__ = __name__  # for pickling and repr; make_dataclass's module= needs 3.12
    return cls


@dataclasses.dataclass(frozen=True)
class _RuleName:
    SCOPE: ClassVar[str] = "rule"
    name: str = param("superspike", choice(RULES), doc="the learning rule")


@dataclasses.dataclass(frozen=True)
class _NeuronModel:
    SCOPE: ClassVar[str] = "neuron"
    model: str = param("lif", choice(MODELS), doc="the neuron model: lif | alif (adaptive)")


@dataclasses.dataclass(frozen=True)
class _TaskKind:
    SCOPE: ClassVar[str] = "task"
    kind: str = param("timing", choice(registry.names()), doc="the task kind")


def _multiple_of_block(v, c) -> bool:
    b = c.run.block
    return b > 0 and abs(v / b - round(v / b)) <= 1e-6


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The ``run`` section: seeds, duration, block length, logging, checkpoints, numerics.

    ``seed_batching``: how one device runs its seeds. ``vmap`` is one batched program (needed on
    accelerators, and on CPU faster for many seeds of a small network; seeds match single-seed
    runs to float rounding); ``map`` runs one seed after another, each bit-identical to a
    single-seed run; ``auto`` is map on CPU and vmap elsewhere.
    """

    SCOPE: ClassVar[str] = "run"

    seeds: int = param(1, int_ge(1), doc="independent runs, seeds seed .. seed + seeds - 1")
    seed: int = param(0, int_ge(0), doc="first run seed")
    block: float = borrow(TrainSpec, "block")
    duration: float = param(
        60.0,
        gt(0, " s"),
        Check(
            _multiple_of_block,
            lambda c: f"> 0 s and a multiple of run.block = {c.run.block} s",
            ("run.block",),
        ),
        doc="simulated training time (s)",
    )
    checkpoint_every: int = param(100, int_ge(1), doc="blocks between checkpoints")
    keep_checkpoints: int = param(3, int_ge(1), doc="checkpoints kept")
    log_every: int = param(10, int_ge(1), doc="blocks between log lines")
    raster_every: int = param(100, int_ge(1), doc="blocks between raster plots")
    on_nonfinite: str = param("halt", choice(("halt", "skip")), doc="a non-finite block")
    dtype: str = param("float32", choice(("float32", "float64")), doc="float type")
    seed_batching: str = param("auto", choice(("auto", "vmap", "map")), doc="see the class")


def is_trial(c) -> bool:
    """Whether the config ``c`` (``c.task.kind``) is a trial kind (:mod:`ssjax.tasks.trials`)."""
    return registry.get(c.task.kind).trials


def _optimizer_names(c) -> tuple[str, ...]:
    return tuple(sorted(TRANSFORMS)) if is_trial(c) else OPTIMIZERS


@dataclasses.dataclass(frozen=True)
class OptimizerKeys:
    """The ``optimizer`` keys that depend on the mode: ``name`` (pattern kinds: ssjax's rules,
    :class:`ssjax.optim.Optimizer`; trial kinds: a name of :data:`ssjax.optim.TRANSFORMS`, built
    by :func:`ssjax.optim.from_name` with ``learning_rate`` and ``kwargs``)."""

    SCOPE: ClassVar[str] = "optimizer"

    name: str = param(
        "rmaxprop",
        Check(
            lambda v, c: v in _optimizer_names(c),
            lambda c: "one of " + ", ".join(repr(o) for o in _optimizer_names(c)),
            ("task.kind",),
        ),
        doc="pattern tasks: rmaxprop | rmsprop | fixed; trial tasks: an optax optimiser's name",
    )
    learning_rate: float = param(1e-3, gt(0), doc="trial tasks: the optimiser's learning rate")
    kwargs: dict = param(
        default_factory=FrozenDict,
        doc="trial tasks: the optimiser's other keyword arguments (optax's names)",
    )


def _window_stop_ok(v, c) -> bool:
    return v is None or v > c.trials.window_start


@dataclasses.dataclass(frozen=True)
class TrialsConfig:
    """The ``trials`` section: training on labelled trials (trial task kinds).

    An epoch is one pass over the training split in minibatches of ``batch_size`` (order from
    :func:`ssjax.data.epoch_key` of the seed's key and the epoch); ``validation_fraction`` of the
    training trials (stratified, drawn from ``split_seed``) are held out and scored every
    ``eval_every`` epochs and after the last; the best validation accuracy's weights are kept.
    ``error``, ``window_start``/``window_stop`` and ``target_times`` are SuperSpike's per-class
    error (:class:`ssjax.trial.TrialSpec`).
    """

    SCOPE: ClassVar[str] = "trials"

    batch_size: int = param(32, int_ge(1), doc="trials per minibatch")
    epochs: int = param(10, int_ge(1), doc="passes over the training split")
    eval_every: int = param(1, int_ge(1), doc="epochs between validation scores (and the last)")
    checkpoint_every: int = param(1, int_ge(1), doc="epochs between checkpoints (and the last)")
    validation_fraction: float = param(
        0.1,
        Check(lambda v, c: 0 <= v < 1, ">= 0 and < 1"),
        doc="share of the training trials held out for validation (0: none)",
    )
    split_seed: int = param(0, int_ge(0), doc="seed of the validation split")
    drop_last: bool = param(False, doc="drop an epoch's last, partial batch (else padded)")
    spikes: str = param("count", choice(SPIKE_MODES), doc="input spikes per step: count | binary")
    carry_state: bool = param(False, doc="carry each batch slot's state into the next batch")
    error: str = param(
        "window", choice(("window", "van_rossum")), doc="superspike: the per-class error"
    )
    window_start: float = param(0.0, ge(0, " s"), doc="superspike window: start (s)")
    window_stop: float | None = param(
        None,
        Check(_window_stop_ok, "None or > trials.window_start", ("trials.window_start",)),
        doc="superspike window: stop (s); None: the trial's end",
    )
    target_times: tuple[float, ...] = param(
        (0.01,),
        Check(lambda v, c: len(v) > 0 and min(v) >= 0, "a non-empty list of times >= 0 s"),
        doc="superspike van_rossum: the correct output's target spike times (s)",
    )
    error_tail: float = param(
        0.05,
        ge(0, " s"),
        doc="superspike: silence after a trial in which the error meets traces (s)",
    )


RUN_TRIAL_KEYS = ("seeds", "seed", "keep_checkpoints", "dtype", "seed_batching")

_TASK_PARAMS = [registry.get(k).params for k in registry.names()]

NetworkConfig = _section("NetworkConfig", [Network])
NeuronConfig = _section("NeuronConfig", [_NeuronModel, *MODELS.values()])
SurrogateConfig = _section("SurrogateConfig", [Surrogate], exclude=("forward",))
RuleConfig = _section("RuleConfig", [_RuleName, *RULE_CONFIGS.values()], exclude=("error",))
RegularizerConfig = _section("RegularizerConfig", [Regularizer])
OptimizerConfig = _section("OptimizerConfig", [OptimizerKeys, Optimizer], overrides=("name",))
TaskConfig = _section("TaskConfig", [_TaskKind, *_TASK_PARAMS])
ReadoutConfig = _section("ReadoutConfig", [ClassifierLoss])


@dataclasses.dataclass(frozen=True)
class _Checked:
    """The mark of a validated Config: what its task kind's ``load`` returned (None: no files)."""

    data: object


@dataclasses.dataclass(frozen=True)
class Config:
    """A whole run's configuration: one instance of each section (see the module docstring)."""

    network: Any = dataclasses.field(default_factory=NetworkConfig)
    neuron: Any = dataclasses.field(default_factory=NeuronConfig)
    surrogate: Any = dataclasses.field(default_factory=SurrogateConfig)
    rule: Any = dataclasses.field(default_factory=RuleConfig)
    regularizer: Any = dataclasses.field(default_factory=RegularizerConfig)
    optimizer: Any = dataclasses.field(default_factory=OptimizerConfig)
    task: Any = dataclasses.field(default_factory=TaskConfig)
    readout: Any = dataclasses.field(default_factory=ReadoutConfig)
    trials: TrialsConfig = dataclasses.field(default_factory=TrialsConfig)
    run: RunConfig = dataclasses.field(default_factory=RunConfig)
    source: str | None = dataclasses.field(default=None, compare=False)  # the YAML path
    # set by validation only (init=False: dataclasses.replace resets it to None)
    _checked: _Checked | None = dataclasses.field(
        default=None, init=False, compare=False, repr=False
    )


# section name -> its dataclass, in schema order
SECTIONS: dict[str, Any] = {
    f.name: f.default_factory
    for f in dataclasses.fields(Config)
    if f.default_factory is not dataclasses.MISSING
}

# keys of earlier schemas -> where they live now (named in the unknown-key message)
MOVED = {
    "feedback": "rule.feedback",
    "feedback.kind": "rule.feedback",
    "neuron.surrogate": "surrogate.kind",
    "neuron.beta": "surrogate.beta",
    "neuron.v_floor": "surrogate.v_floor",
    "rule.reset_grad": "neuron.reset_grad",
}


def _names(cls) -> tuple[str, ...]:
    return tuple(f.name for f, _ in params_of(cls))


def variant_keys(cfg_values) -> dict[str, tuple[str, ...]]:
    """Per union section, the keys the chosen variant declares: ``{"rule": (...), "task":
    (...), "regularizer": (...), "neuron": (...), "optimizer", "readout", "trials", "run"}`` for
    ``cfg_values`` with ``.rule.name``, ``.task.kind`` and ``.neuron.model`` (the last four
    depend on the mode, pattern or trial, of ``task.kind``)."""
    rule = RULE_TYPES[cfg_values.rule.name]
    kind = registry.get(cfg_values.task.kind)
    reg = _names(Regularizer) if rule is SuperSpikeConfig else ()
    trial = kind.trials
    rule_keys = _names(rule) if rule is SuperSpikeConfig or not trial else ()
    return {
        "rule": ("name", *rule_keys),
        "task": ("kind", *registry.reads(kind)),
        "regularizer": tuple(reg),
        "neuron": ("model", *_names(MODELS[cfg_values.neuron.model])),
        "optimizer": _names(OptimizerKeys) if trial else _names(Optimizer),
        "readout": _names(ClassifierLoss) if trial else (),
        "trials": _names(TrialsConfig) if trial else (),
        "run": RUN_TRIAL_KEYS if trial else _names(RunConfig),
    }
