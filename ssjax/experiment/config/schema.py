"""The config's schema: eight sections generated from the library's parameter declarations.

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
``optimizer``           :class:`ssjax.optim.Optimizer`
``task``                ``kind``, and the union of the task kinds' ``params``
                        (:mod:`ssjax.tasks.registry`)
``run``                 :class:`RunConfig` below: the experiment's own keys
======================  ==================================================================

A union section holds every variant's keys so that a config is one fixed structure (dump,
diff, checkpoints); a key the chosen variant does not declare must keep its default
(:mod:`ssjax.experiment.config.validate`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from ssjax.network import Network
from ssjax.neurons import MODELS
from ssjax.optim import Optimizer
from ssjax.params import (
    Check,
    borrow,
    choice,
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
    "RegularizerConfig",
    "RuleConfig",
    "RunConfig",
    "SECTIONS",
    "SurrogateConfig",
    "TaskConfig",
    "MOVED",
    "RULE_TYPES",
    "variant_keys",
]

RULE_TYPES = RULE_CONFIGS  # rule.name -> its config dataclass (ssjax.train's registry)


def _section(name: str, sources: list[type], exclude: tuple[str, ...] = ()) -> Any:
    """A frozen dataclass ``name`` with the param fields of ``sources`` (first declaration of a
    key wins; a key two sources declare must be one declaration, borrowed)."""
    fields: dict[str, tuple[dataclasses.Field, Any]] = {}
    for src in sources:
        for f, tp in params_of(src):
            if f.name in exclude:
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


_TASK_PARAMS = [registry.get(k).params for k in registry.names()]

NetworkConfig = _section("NetworkConfig", [Network])
NeuronConfig = _section("NeuronConfig", [_NeuronModel, *MODELS.values()])
SurrogateConfig = _section("SurrogateConfig", [Surrogate], exclude=("forward",))
RuleConfig = _section("RuleConfig", [_RuleName, *RULE_CONFIGS.values()], exclude=("error",))
RegularizerConfig = _section("RegularizerConfig", [Regularizer])
OptimizerConfig = _section("OptimizerConfig", [Optimizer])
TaskConfig = _section("TaskConfig", [_TaskKind, *_TASK_PARAMS])


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


def variant_keys(cfg_values) -> dict[str, tuple[str, ...]]:
    """Per union section, the keys the chosen variant declares: ``{"rule": (...), "task":
    (...), "regularizer": (...), "neuron": (...)}`` for ``cfg_values`` with ``.rule.name``,
    ``.task.kind`` and ``.neuron.model``."""
    rule = RULE_TYPES[cfg_values.rule.name]
    kind = registry.get(cfg_values.task.kind)
    reg = [f.name for f, _ in params_of(Regularizer)] if rule is SuperSpikeConfig else []
    return {
        "rule": ("name", *(f.name for f, _ in params_of(rule))),
        "task": ("kind", *registry.reads(kind)),
        "regularizer": tuple(reg),
        "neuron": ("model", *(f.name for f, _ in params_of(MODELS[cfg_values.neuron.model]))),
    }
