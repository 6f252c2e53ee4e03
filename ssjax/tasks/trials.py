"""Trial task kinds: labelled data sets for the trial trainer (``ssjax train`` on trials).

Three ``task.kind`` values, registered here (:mod:`ssjax.tasks.registry`, ``trials=True``):

=================  ===========================================================================
kind               data (a :class:`ssjax.data.TrialSet` per split; :mod:`ssjax.data`)
=================  ===========================================================================
``shd``            an HDF5 file in the SHD/SSC layout (``task.train_file``), and optionally a
                   test file (``task.test_file``): :func:`ssjax.data.load_hdf5`
``ras_folder``     a folder of ``.ras`` files, one trial each (``task.folder``), labels from
                   ``task.labels_file`` or the file names; an optional ``task.test_folder``:
                   :func:`ssjax.data.load_ras_folder`
``randman_trials`` ``task.n_out`` classes x ``task.n_samples`` randman trials from
                   ``task.input_seed``, and ``task.n_heldout`` new trials per class of the same
                   manifolds as the test set: :func:`ssjax.data.randman_trials`
=================  ===========================================================================

Each kind's ``load`` reads (or draws) the data once, at config validation, into a
:class:`TrialData`; a missing or malformed file is a :class:`~ssjax.tasks.registry.TaskError`
naming the key. Trials are binned at ``neuron.dt`` and last ``task.trial_duration`` (the
files' kinds) or ``task.randman_duration`` plus the randman offset and tail (5 ms + 15 ms).
The validation split and the training itself are the experiment's
(:mod:`ssjax.experiment.trials`).

Reference: Cramer et al. (2022), IEEE TNNLS 33(7) (SHD/SSC); Zenke & Vogels (2021), Neural
Computation 33(4) (randman).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, NamedTuple

import jax

from ssjax.data.hdf5 import load_hdf5
from ssjax.data.randman import randman_heldout_trials, randman_trials
from ssjax.data.ras import load_ras_folder
from ssjax.data.splits import split_trials
from ssjax.data.trials import ROUNDINGS, TrialSet
from ssjax.params import borrow, choice, multiple_of, param
from ssjax.tasks.randman import RandmanParams
from ssjax.tasks.raster import RasParams
from ssjax.tasks.registry import TaskCommon, TaskError, TaskKind, register

__all__ = [
    "RasFolderParams",
    "RandmanTrialsParams",
    "ShdParams",
    "TrialData",
    "split_validation",
]


class TrialData(NamedTuple):
    """What a trial kind's ``load`` returns: the training trials (the validation split is cut
    from them) and the test trials (None: no test set)."""

    train: TrialSet
    test: TrialSet | None


_DURATION = param(
    1.0,
    multiple_of("neuron.dt", strict=True),
    doc="trial length (s); later spikes are an error (or dropped: task.on_out_of_range)",
)
_ROUNDING = param("round", choice(ROUNDINGS), doc="spike time to step: rint(t / dt) or floor")


@dataclasses.dataclass(frozen=True)
class ShdParams:
    """``task.kind: shd``: the SHD/SSC HDF5 layout (``spikes/times``, ``spikes/units``,
    ``labels``); SHD has 700 inputs and 20 classes, SSC 700 and 35."""

    SCOPE: ClassVar[str] = "task"

    train_file: str | None = param(None, doc="training trials, an HDF5 file (SHD/SSC layout)")
    test_file: str | None = param(None, doc="test trials, an HDF5 file (optional)")
    n_in: int = borrow(TaskCommon, "n_in")
    n_out: int = borrow(TaskCommon, "n_out")
    trial_duration: float = _DURATION
    rounding: str = _ROUNDING
    on_out_of_range: str = borrow(RasParams, "on_out_of_range")


@dataclasses.dataclass(frozen=True)
class RasFolderParams:
    """``task.kind: ras_folder``: one ``.ras`` file (``time id`` per line) per trial."""

    SCOPE: ClassVar[str] = "task"

    folder: str | None = param(None, doc="folder of training .ras files, one trial each")
    test_folder: str | None = param(None, doc="folder of test .ras files (optional)")
    labels_file: str | None = param(
        None, doc="'name label' per line for the files of both folders; None: from file names"
    )
    n_in: int = borrow(TaskCommon, "n_in")
    n_out: int = borrow(TaskCommon, "n_out")
    trial_duration: float = _DURATION
    rounding: str = _ROUNDING
    id_offset: int = borrow(RasParams, "id_offset")
    on_out_of_range: str = borrow(RasParams, "on_out_of_range")


@dataclasses.dataclass(frozen=True)
class RandmanTrialsParams:
    """``task.kind: randman_trials``: ``n_out`` classes, ``n_in`` units, one spike per unit."""

    SCOPE: ClassVar[str] = "task"

    n_in: int = borrow(TaskCommon, "n_in")
    n_out: int = borrow(TaskCommon, "n_out")
    randman_dim: int = borrow(RandmanParams, "randman_dim")
    n_samples: int = borrow(RandmanParams, "n_samples")
    randman_duration: float = borrow(RandmanParams, "randman_duration")
    n_heldout: int = borrow(TaskCommon, "n_heldout")
    input_seed: int = borrow(TaskCommon, "input_seed")


def _file(path: str | None, key: str, kind: str) -> str:
    if path is None:
        raise TaskError(key, f"task.kind {kind!r} needs this path")
    return path


def _read(fn, key: str, path: str, **kw) -> TrialSet:
    """``fn(path, **kw)`` with its errors as TaskError naming ``key`` (and the file)."""
    try:
        return fn(path, **kw)
    except FileNotFoundError:
        raise TaskError(key, f"{path}: no such file or folder") from None
    except ValueError as exc:
        raise TaskError(key, str(exc)) from None


def _train_and_test(fn, kw: dict, train: tuple, test: tuple) -> TrialData:
    """The training set and the optional test set, each ``(config key, path or None)``, read by
    ``fn(path, **kw)``."""
    return TrialData(
        _read(fn, train[0], train[1], **kw),
        None if test[1] is None else _read(fn, test[0], test[1], **kw),
    )


def _load_shd(task: ShdParams, dt: float, dtype) -> TrialData:
    kw = dict(
        n_units=task.n_in,
        dt=dt,
        duration=task.trial_duration,
        n_classes=task.n_out,
        rounding=task.rounding,
        on_out_of_range=task.on_out_of_range,
    )
    train = ("task.train_file", _file(task.train_file, "task.train_file", "shd"))
    return _train_and_test(load_hdf5, kw, train, ("task.test_file", task.test_file))


def _load_ras_folder(task: RasFolderParams, dt: float, dtype) -> TrialData:
    kw = dict(
        n_units=task.n_in,
        dt=dt,
        duration=task.trial_duration,
        labels=task.labels_file,
        n_classes=task.n_out,
        id_offset=task.id_offset,
        rounding=task.rounding,
        on_out_of_range=task.on_out_of_range,
    )
    train = ("task.folder", _file(task.folder, "task.folder", "ras_folder"))
    return _train_and_test(load_ras_folder, kw, train, ("task.test_folder", task.test_folder))


def _randman_kw(task: RandmanTrialsParams, dt: float) -> dict:
    return dict(
        n_classes=task.n_out,
        n_units=task.n_in,
        dim=task.randman_dim,
        n_samples=task.n_samples,
        duration=task.randman_duration,
        dt=dt,
    )


def _load_randman(task: RandmanTrialsParams, dt: float, dtype) -> TrialData:
    key = jax.random.PRNGKey(task.input_seed)
    kw = _randman_kw(task, dt)
    try:
        train = randman_trials(key, **kw)
    except ValueError as exc:
        raise TaskError("task.randman_duration", str(exc)) from None
    test = None
    if task.n_heldout > 0:
        try:
            test = randman_heldout_trials(key, task.n_heldout, **kw)
        except ValueError as exc:
            raise TaskError("task.n_heldout", str(exc)) from None
    return TrialData(train, test)


register(TaskKind("shd", ShdParams, load=_load_shd, trials=True))
register(TaskKind("ras_folder", RasFolderParams, load=_load_ras_folder, trials=True))
register(TaskKind("randman_trials", RandmanTrialsParams, load=_load_randman, trials=True))


def split_validation(
    trials: TrialSet, fraction: float, seed: int
) -> tuple[TrialSet, TrialSet | None]:
    """``(train, validation)``: ``fraction`` of ``trials`` held out, stratified by label, from
    ``PRNGKey(seed)`` (:func:`ssjax.data.split_trials`); ``fraction == 0``: ``(trials, None)``."""
    if fraction <= 0:
        return trials, None
    train, val = split_trials(trials, jax.random.PRNGKey(seed), (1.0 - fraction, fraction))
    return train, val
