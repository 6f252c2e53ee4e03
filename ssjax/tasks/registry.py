"""The task registry: what each ``task.kind`` declares, checks, loads and builds.

Every kind lives in its own module of ``ssjax/tasks/``, which registers it at import with
``register(TaskKind(...))``, and has one entry in :data:`KINDS` below (``task.kind`` value ->
module), which is how the registry finds it and fixes the order of the kinds in messages.
:mod:`ssjax.experiment.config` validates and builds through this registry only: its ``task``
section is generated from the kinds' declarations, and it knows no kind by name.

A new task kind is one module plus its line in :data:`KINDS`; its :class:`TaskKind` provides:

- ``name``: the ``task.kind`` value (the key of its :data:`KINDS` entry).
- ``params``: a frozen dataclass (``SCOPE = "task"``) declaring the ``task`` keys the kind reads,
  each with :func:`ssjax.params.param` (type, default, range) or borrowed from
  :class:`TaskCommon` (the keys several kinds share: one declaration each). ``load``, ``build``
  and ``heldout`` get an instance of it, so an undeclared key fails loudly. A key another kind
  also declares must be the same declaration (borrowed), since the config's ``task`` section is
  their union.
- ``build(task, dt, dtype, data) -> (inputs [P, N_in], targets [P, N_out])``: one pattern
  period, time-major, as patterns of :mod:`ssjax.pattern` served in ``dtype`` (``run.dtype``):
  spikes as an :class:`~ssjax.pattern.EventPattern` (memory ``O(spikes)``, never a dense
  ``[P, N]`` float raster), compact codes as a :class:`~ssjax.pattern.DensePattern` (the int8
  window code); ``dt`` is ``neuron.dt`` (s),
  ``data`` what ``load`` returned (None without ``load``). It gets a validated config: it
  checks nothing and returns new arrays on every call (``data`` must stay untouched).
- ``checks`` (optional): constraints that hold for this kind only on keys it shares (e.g.
  ``task.n_out == 2`` for xor), run after every declared range has passed. Each is ``(dotted key,
  ok(value, c) -> bool, allowed)``, ``c.<section>.<key>`` the parsed values and ``allowed`` a text
  or a function ``allowed(c) -> text``; a failure reads ``<file>: <key>: must be <allowed>, got
  <value>``.
- ``load(task, dt, dtype) -> data`` (optional): reads and checks the kind's data files, once, at
  validation; the result stays on the validated config and is passed to ``build``/``heldout``.
  Problems raise :class:`TaskError` naming the dotted key, reported as ``<file>: <key>: ...``.
- ``window`` (default False): the targets are a window annotation (classification; the
  trainer's ``"window"`` error, :func:`ssjax.losses.window_error`) rather than spike trains.
- ``heldout(task, dt, dtype, data) -> (inputs [T, N_in], code [T, N_out])`` (optional, window
  kinds): a held-out stream scored after training (``task.n_heldout`` >= 1).

**Trial kinds** (``trials=True``, :mod:`ssjax.tasks.trials`: ``shd``, ``ras_folder``,
``randman_trials``) are data sets of labelled trials rather than a looped pattern: they have no
``build``; their ``load`` returns a :class:`ssjax.tasks.trials.TrialData` (the training
:class:`~ssjax.data.TrialSet` and an optional test set), and ``ssjax train`` runs them through
the trial trainer (:mod:`ssjax.trial`, :mod:`ssjax.experiment.trials`).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from ssjax.params import Check, check_fields, int_ge, multiple_of, param

__all__ = [
    "KINDS",
    "TaskCommon",
    "TaskError",
    "TaskKind",
    "get",
    "names",
    "reads",
    "register",
    "task_view",
    "trial_kinds",
    "window_kinds",
]

# task.kind -> the module that registers it; this order is the order of messages and docs.
KINDS = {
    "timing": "ssjax.tasks.timing",
    "ras": "ssjax.tasks.raster",
    "xor": "ssjax.tasks.xor",
    "image": "ssjax.tasks.image",
    "randman": "ssjax.tasks.randman",
    "shd": "ssjax.tasks.trials",
    "ras_folder": "ssjax.tasks.trials",
    "randman_trials": "ssjax.tasks.trials",
}

Arrays = tuple[np.ndarray, np.ndarray]
Patterns = tuple[Any, Any]  # (inputs, targets) of ssjax.pattern


class TaskError(ValueError):
    """A problem with the task section: ``key`` (dotted, e.g. ``task.input``) and ``message``."""

    def __init__(self, key: str, message: str):
        self.key, self.message = key, message
        super().__init__(f"{key}: {message}")


def _rate_ok(v, c) -> bool:
    return v >= 0 and v * c.neuron.dt <= 1


@dataclasses.dataclass(frozen=True)
class TaskCommon:
    """The ``task`` keys several kinds share, declared once; a kind borrows those it reads
    (:func:`ssjax.params.borrow`)."""

    SCOPE: ClassVar[str] = "task"

    n_in: int = param(100, int_ge(1), doc="input channels")
    n_out: int = param(1, int_ge(1), doc="output neurons")
    input_seed: int = param(0, int_ge(0), doc="seed of the frozen input draw")
    period: float = param(
        0.5, multiple_of("neuron.dt", strict=True), doc="pattern period, replayed in a loop (s)"
    )
    rate_hz: float = param(
        5.0,
        Check(
            _rate_ok,
            lambda c: f">= 0 Hz and <= 1 / neuron.dt = {1 / c.neuron.dt:g} Hz",
            ("neuron.dt",),
        ),
        doc="Poisson rate of the frozen input (Hz)",
    )
    n_heldout: int = param(
        32,
        int_ge(0),
        doc="held-out samples per class (xor: per pattern kind), scored after training",
    )

    def __post_init__(self):
        check_fields(self)


@dataclasses.dataclass(frozen=True)
class TaskKind:
    """One task kind (fields: module docstring)."""

    name: str
    params: Any  # the kind's frozen dataclass of task keys
    build: Callable[..., Patterns] | None = None  # None: a trial kind
    checks: tuple = ()
    load: Callable | None = None
    window: bool = False
    heldout: Callable[..., Arrays] | None = None
    trials: bool = False  # labelled trials (load returns TrialData), not a pattern


_REGISTERED: dict[str, TaskKind] = {}


def register(kind: TaskKind) -> TaskKind:
    """Add ``kind`` (called by its module at import); its name must have a :data:`KINDS` entry."""
    if kind.name not in KINDS:
        raise ValueError(
            f"task kind {kind.name!r} has no entry in ssjax.tasks.registry.KINDS "
            "(add its name and module there)"
        )
    if getattr(kind.params, "SCOPE", None) != "task" or not dataclasses.is_dataclass(kind.params):
        raise TypeError(f"task kind {kind.name!r}: params must be a dataclass with SCOPE 'task'")
    if (kind.build is None) != kind.trials or (kind.trials and kind.load is None):
        raise TypeError(
            f"task kind {kind.name!r}: a pattern kind has build, a trial kind (trials=True) has "
            "load and no build"
        )
    _REGISTERED[kind.name] = kind
    return kind


def get(name: str) -> TaskKind:
    """The registered kind ``name`` (its module is imported on first use); KeyError if unknown."""
    if name not in KINDS:
        raise KeyError(f"unknown task kind {name!r} (one of {', '.join(KINDS)})")
    if name not in _REGISTERED:
        importlib.import_module(KINDS[name])
        if name not in _REGISTERED:
            raise RuntimeError(f"{KINDS[name]} does not register task kind {name!r}")
    return _REGISTERED[name]


def names() -> tuple[str, ...]:
    """Every ``task.kind`` value, in :data:`KINDS` order."""
    return tuple(KINDS)


def window_kinds() -> tuple[str, ...]:
    """The kinds whose targets are window annotations (classification), in :data:`KINDS` order."""
    return tuple(n for n in KINDS if get(n).window)


def trial_kinds() -> tuple[str, ...]:
    """The kinds of labelled trials (``trials=True``), in :data:`KINDS` order."""
    return tuple(n for n in KINDS if get(n).trials)


def reads(kind: TaskKind) -> tuple[str, ...]:
    """The ``task`` keys ``kind`` declares, in declaration order."""
    return tuple(f.name for f in dataclasses.fields(kind.params))


def task_view(kind: TaskKind, task):
    """The task section as ``kind`` sees it: an instance of ``kind.params`` with the values of
    ``task`` (any object with those attributes, e.g. the config's task section)."""
    return kind.params(**{k: getattr(task, k) for k in reads(kind)})
