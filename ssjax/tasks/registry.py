"""The task registry: what each ``task.kind`` reads, checks, loads and builds.

Every kind lives in its own module of ``ssjax/tasks/``, which registers it at import with
``register(TaskKind(...))``, and has one entry in :data:`KINDS` below (``task.kind`` value ->
module), which is how the registry finds it and fixes the order of the kinds in messages.
:mod:`ssjax.experiment.config` validates and builds through this registry only; it knows no kind
by name.

A new task kind is one module plus its line in :data:`KINDS`; its :class:`TaskKind` provides:

- ``name``: the ``task.kind`` value (the key of its :data:`KINDS` entry).
- ``reads``: the ``task`` keys (fields of :class:`ssjax.experiment.config.TaskConfig`) that it
  reads.
  ``load``, ``build`` and ``heldout`` get a view of the task section with these attributes
  only, so an undeclared key fails loudly (AttributeError) instead of being read silently.
- ``build(task, dt, dtype, data) -> (inputs [P, N_in], targets [P, N_out])``: one pattern
  period, time-major, as numpy arrays of ``dtype`` (``run.dtype``); ``dt`` is ``neuron.dt`` (s),
  ``data`` what ``load`` returned (None without ``load``). It gets a validated config: it
  checks nothing and returns new arrays on every call (``data`` must stay untouched).
- ``checks`` (optional): range checks that hold for this kind only, run after the key-level
  ranges of every section (ssjax.experiment.config) have passed. Each is ``(dotted key,
  ok(value, c) ->
  bool, allowed)``, ``c.<section>.<key>`` the parsed values and ``allowed`` a text or a function
  ``allowed(c) -> text``; a failure reads ``<file>: <key>: must be <allowed>, got <value>``.
- ``load(task, dt, dtype) -> data`` (optional): reads and checks the kind's data files, once, at
  validation; the result stays on the validated config and is passed to ``build``/``heldout``.
  Problems raise :class:`TaskError` naming the dotted key, reported as ``<file>: <key>: ...``.
- ``window`` (default False): the targets are a window annotation (classification; the
  trainer's ``"window"`` error, :func:`ssjax.losses.window_error`) rather than spike trains.
- ``heldout(task, dt, dtype, data) -> (inputs [T, N_in], code [T, N_out])`` (optional, window
  kinds): a held-out stream scored after training (``task.n_heldout`` >= 1).

A kind that needs a new ``task`` key also adds the field, its type and its key-level range to
:mod:`ssjax.experiment.config` (a schema change).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np

__all__ = [
    "KINDS",
    "TaskError",
    "TaskKind",
    "get",
    "names",
    "register",
    "task_view",
    "window_kinds",
]

# task.kind -> the module that registers it; this order is the order of messages and docs.
KINDS = {
    "timing": "ssjax.tasks.timing",
    "ras": "ssjax.tasks.raster",
    "xor": "ssjax.tasks.xor",
    "image": "ssjax.tasks.image",
    "randman": "ssjax.tasks.randman",
}

Arrays = tuple[np.ndarray, np.ndarray]


class TaskError(ValueError):
    """A problem with the task section: ``key`` (dotted, e.g. ``task.input``) and ``message``."""

    def __init__(self, key: str, message: str):
        self.key, self.message = key, message
        super().__init__(f"{key}: {message}")


@dataclasses.dataclass(frozen=True)
class TaskKind:
    """One task kind (fields: module docstring)."""

    name: str
    reads: tuple[str, ...]
    build: Callable[..., Arrays]
    checks: tuple = ()
    load: Callable | None = None
    window: bool = False
    heldout: Callable[..., Arrays] | None = None


_REGISTERED: dict[str, TaskKind] = {}


def register(kind: TaskKind) -> TaskKind:
    """Add ``kind`` (called by its module at import); its name must have a :data:`KINDS` entry."""
    if kind.name not in KINDS:
        raise ValueError(
            f"task kind {kind.name!r} has no entry in ssjax.tasks.registry.KINDS "
            "(add its name and module there)"
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


def task_view(kind: TaskKind, task) -> SimpleNamespace:
    """The task section as ``kind`` sees it: only the attributes named in ``kind.reads``."""
    return SimpleNamespace(**{k: getattr(task, k) for k in kind.reads})
