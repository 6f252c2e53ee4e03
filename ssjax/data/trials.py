"""Labelled trials as spike events: one flat, sorted event list with per-trial offsets (CSR).

A data set of ``n_trials`` labelled trials, each ``n_steps`` steps of ``dt`` seconds for
``n_units`` input units, is held as its spikes only, never as a dense ``[n_trials, T, N]``
array (SHD's 8156 training trials of 700 units over 1 s at 1 ms would be 5.7 G values)::

    steps   [E] int32   time step of each spike, in [0, n_steps)
    units   [E] int32   unit of each spike, in [0, n_units)
    offsets [n_trials + 1] int32   trial i's spikes are steps[offsets[i]:offsets[i + 1]]
    labels  [n_trials] int32   class of each trial, in [0, n_classes)

Memory ``O(E + n_trials)``. Within a trial the events are sorted by step, then unit; a
repeated (step, unit) pair is two spikes (a count of 2, as in :class:`ssjax.pattern.EventPattern`).

Time binning (:func:`time_to_step`): a spike at ``t`` seconds goes to step ``rint(t / dt)``
(``rounding="round"``, round half to even), the convention of ssjax's rasters
(:func:`ssjax.tasks.raster.events_to_bins`), so times written on the grid read back into their
own step; ``rounding="floor"`` gives ``floor(t / dt)``, step k covering ``[k dt, (k + 1) dt)``,
the usual choice for continuous-time recordings. A spike whose step is ``>= n_steps`` (or whose
unit is ``>= n_units``) is an error, or dropped with a warning with ``on_out_of_range="drop"``
(as ``read_ras``'s option); a negative or non-finite time is always an error.

A :class:`TrialSet` is a pytree (the four arrays are its leaves, the sizes its static data), so
it can be put on the device once (``jax.device_put``) and passed to jitted functions;
:meth:`TrialSet.with_batch` fixes the per-batch event capacity that
:func:`ssjax.data.batches.dense_batch` gathers with.

Reference: Cramer et al. (2022), "The Heidelberg spiking data sets for the systematic evaluation
of spiking neural networks", IEEE TNNLS 33(7):2744-2757 (the SHD/SSC event layout).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import jax
import numpy as np

__all__ = ["ROUNDINGS", "TrialSet", "batch_capacity", "time_to_step"]

ROUNDINGS = ("round", "floor")
_INT32_MAX = np.iinfo(np.int32).max


def time_to_step(times, dt: float, rounding: str = "round") -> np.ndarray:
    """The step of spike times: ``rint(t / dt)`` (``"round"``) or ``floor(t / dt)`` (``"floor"``).

    ``times`` in seconds, any shape; returns int64 of the same shape. Computed in float64, so
    float16/float32 times (SHD stores float16) are not rounded twice.
    """
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
    if not dt > 0:
        raise ValueError(f"dt must be > 0 seconds, got {dt!r}")
    x = np.asarray(times, np.float64) / float(dt)
    return (np.rint(x) if rounding == "round" else np.floor(x)).astype(np.int64)


def batch_capacity(counts, batch_size: int) -> int:
    """Events that any batch of ``batch_size`` distinct trials can hold: the sum of the
    ``batch_size`` largest per-trial counts (``counts`` ``[n_trials]``), a bound that no shuffle
    can exceed."""
    c = np.sort(np.asarray(counts, np.int64))[::-1]
    return int(c[: int(batch_size)].sum())


def _fail(source: str | None, msg: str) -> ValueError:
    return ValueError(f"{source}: {msg}" if source else msg)


@jax.tree_util.register_pytree_node_class
class TrialSet:
    """Labelled trials as sorted spike events (module docstring); a pytree, never mutated.

    Args:
      steps, units: ``[E]`` integer step in ``[0, n_steps)`` and unit in ``[0, n_units)`` of
        each spike, grouped by trial (trial i's are ``[offsets[i], offsets[i + 1])``); sorted here
        within each trial by step, then unit.
      offsets: ``[n_trials + 1]`` non-decreasing, ``offsets[0] = 0``, ``offsets[-1] = E``.
      labels: ``[n_trials]`` integer classes in ``[0, n_classes)``.
      n_units: input units ``N``. n_steps: steps per trial ``T``. dt: step (s).
      n_classes: the number of classes; None: ``max(labels) + 1``.
      source: what the data came from (a file), prefixed to error messages.

    Raises ValueError (naming the source and the field) for out-of-range or inconsistent input.

    Attributes: the four arrays (numpy int32 as built; device arrays once put there), the sizes,
    and ``batch_size``/``capacity`` (None until :meth:`with_batch`).
    """

    def __init__(
        self,
        steps,
        units,
        offsets,
        labels,
        *,
        n_units: int,
        n_steps: int,
        dt: float,
        n_classes: int | None = None,
        source: str | None = None,
    ):
        steps = np.asarray(steps).reshape(-1)
        units = np.asarray(units).reshape(-1)
        offsets = np.asarray(offsets).reshape(-1)
        labels = np.asarray(labels).reshape(-1)
        for name, a in (("steps", steps), ("units", units), ("offsets", offsets)):
            if a.size and not np.issubdtype(a.dtype, np.integer):
                raise _fail(source, f"{name} must be integers, got dtype {a.dtype}")
        if labels.size and not np.issubdtype(labels.dtype, np.integer):
            if not np.array_equal(labels, np.round(labels)):
                raise _fail(source, f"labels must be integer classes, got dtype {labels.dtype}")
        for name, v, lo in (("n_units", n_units, 0), ("n_steps", n_steps, 1)):
            if int(v) != v or v < lo:
                raise _fail(source, f"{name} must be an integer >= {lo}, got {v!r}")
        if not dt > 0:
            raise _fail(source, f"dt must be > 0 seconds, got {dt!r}")
        n_units, n_steps = int(n_units), int(n_steps)
        if steps.shape != units.shape:
            raise _fail(source, f"steps and units differ in length: {steps.size} vs {units.size}")
        if steps.size > _INT32_MAX:
            raise _fail(source, f"{steps.size} events exceed the int32 range of the offsets")
        n_trials = labels.size
        if offsets.shape != (n_trials + 1,):
            raise _fail(
                source,
                f"offsets must have n_trials + 1 = {n_trials + 1} entries (one label per trial), "
                f"got {offsets.size}",
            )
        if offsets[0] != 0 or offsets[-1] != steps.size or np.any(np.diff(offsets) < 0):
            raise _fail(
                source,
                f"offsets must rise from 0 to the number of events {steps.size}, "
                f"got {offsets[0]}..{offsets[-1]}"
                + (" (decreasing somewhere)" if np.any(np.diff(offsets) < 0) else ""),
            )
        if steps.size and (steps.min() < 0 or steps.max() >= n_steps):
            k = int(np.argmax((steps < 0) | (steps >= n_steps)))
            trial = int(np.searchsorted(offsets, k, side="right") - 1)
            raise _fail(
                source,
                f"steps must lie in [0, n_steps={n_steps}), trial {trial} has step {steps[k]}",
            )
        if units.size and (units.min() < 0 or units.max() >= n_units):
            k = int(np.argmax((units < 0) | (units >= n_units)))
            trial = int(np.searchsorted(offsets, k, side="right") - 1)
            raise _fail(
                source,
                f"units must lie in [0, n_units={n_units}), trial {trial} has unit {units[k]}",
            )
        labels = labels.astype(np.int64)
        if n_classes is None:
            n_classes = int(labels.max()) + 1 if labels.size else 0
        if int(n_classes) != n_classes or n_classes < 0:
            raise _fail(source, f"n_classes must be an integer >= 0, got {n_classes!r}")
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            k = int(np.argmax((labels < 0) | (labels >= n_classes)))
            raise _fail(
                source,
                f"labels must lie in [0, n_classes={n_classes}), trial {k} has label {labels[k]}",
            )
        of_trial = np.repeat(np.arange(n_trials), np.diff(offsets))
        order = np.lexsort((units, steps, of_trial))
        self.steps = steps[order].astype(np.int32)
        self.units = units[order].astype(np.int32)
        self.offsets = offsets.astype(np.int32)
        self.labels = labels.astype(np.int32)
        self.n_units, self.n_steps, self.dt = n_units, n_steps, float(dt)
        self.n_classes = int(n_classes)
        self.batch_size: int | None = None
        self.capacity: int | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_times(
        cls,
        times: Sequence,
        units: Sequence,
        labels,
        *,
        n_units: int,
        dt: float,
        duration: float | None = None,
        n_classes: int | None = None,
        rounding: str = "round",
        on_out_of_range: str = "error",
        source: str | None = None,
        fields: tuple[str, str] = ("times", "units"),
    ) -> TrialSet:
        """Trials from per-trial spike times (s) and units: ``times[i]``, ``units[i]`` ``[E_i]``.

        ``n_steps = rint(duration / dt)``; duration None: the last occupied step + 1 over all
        trials. Binning by ``rounding`` (:func:`time_to_step`). A step ``>= n_steps`` or a unit
        outside ``[0, n_units)``: ValueError naming ``source``, the trial and the field (``fields``:
        the names of the times and units in the source, e.g. a file's datasets), or, with
        ``on_out_of_range="drop"``, the spike is dropped with one warning counting them.
        Negative or non-finite times are always an error.
        """
        if on_out_of_range not in ("error", "drop"):
            raise ValueError(f"on_out_of_range must be 'error' or 'drop', got {on_out_of_range!r}")
        field, ufield = fields
        if len(times) != len(units):
            raise _fail(source, f"{field} has {len(times)} trials but {ufield} has {len(units)}")
        if len(times) != np.size(labels):
            raise _fail(source, f"{field} has {len(times)} trials but labels has {np.size(labels)}")
        lens = np.array([np.size(t) for t in times], np.int64)
        for i, (t, u) in enumerate(zip(times, units, strict=True)):
            if np.size(t) != np.size(u):
                raise _fail(
                    source,
                    f"trial {i}: {np.size(t)} spike times ({field}) but {np.size(u)} units "
                    f"({ufield})",
                )
        flat_t = np.concatenate(
            [np.asarray(t, np.float64).reshape(-1) for t in times] or [np.zeros(0)]
        )
        flat_u = np.concatenate([np.asarray(u).reshape(-1) for u in units] or [np.zeros(0, int)])
        trial = np.repeat(np.arange(len(times)), lens)
        if flat_u.size and not np.array_equal(flat_u, np.round(flat_u)):
            raise _fail(source, f"unit ids ({ufield}) must be integers")
        flat_u = flat_u.astype(np.int64)
        bad_t = ~np.isfinite(flat_t) | (flat_t < 0)
        if bad_t.any():
            k = int(np.argmax(bad_t))
            raise _fail(
                source,
                f"trial {trial[k]}: spike time {float(flat_t[k])!r} s in {field} is negative "
                "or not finite",
            )
        step = time_to_step(flat_t, dt, rounding)
        if duration is None:
            n_steps = int(step.max()) + 1 if step.size else 1
        else:
            if not duration > 0:
                raise _fail(source, f"duration must be > 0 seconds, got {duration!r}")
            n_steps = int(np.rint(duration / dt))
            if n_steps < 1:
                raise _fail(source, f"duration {duration!r} s is shorter than dt {dt!r} s")
        bad = (step >= n_steps) | (flat_u < 0) | (flat_u >= n_units)
        if bad.any():
            if on_out_of_range == "drop":
                warnings.warn(
                    f"{source or 'trials'}: dropped {int(bad.sum())} of {bad.size} spikes beyond "
                    f"the trial ({n_steps} steps of dt={dt!r} s) or with units outside "
                    f"[0, {n_units})",
                    stacklevel=2,
                )
                keep = ~bad
                step, flat_u, trial = step[keep], flat_u[keep], trial[keep]
            else:
                k = int(np.argmax(bad))
                what = (
                    f"spike at t={float(flat_t[k])!r} s ({field}) falls in step {step[k]}, "
                    f"beyond the trial's {n_steps} steps of dt={dt!r} s"
                    if step[k] >= n_steps
                    else f"unit {flat_u[k]} ({ufield}) outside [0, n_units={n_units})"
                )
                raise _fail(
                    source,
                    f"trial {trial[k]}: {what} ({int(bad.sum())} such spikes; "
                    "on_out_of_range='drop' discards them)",
                )
        offsets = np.concatenate([[0], np.cumsum(np.bincount(trial, minlength=len(times)))])
        return cls(
            step,
            flat_u,
            offsets,
            np.asarray(labels),
            n_units=n_units,
            n_steps=n_steps,
            dt=dt,
            n_classes=n_classes,
            source=source,
        )

    def with_batch(self, batch_size: int, capacity: int | None = None) -> TrialSet:
        """This set (a copy sharing the arrays) with a per-batch event capacity for batches of
        ``batch_size`` trials: at least :func:`batch_capacity` of its trials' counts, so no
        batch drawn from it loses a spike. None sizes it; a smaller value raises ValueError (as
        :class:`ssjax.pattern.EventPattern`'s capacity). Pass another set's capacity to share
        one compiled batch function between sets."""
        batch_size = int(batch_size)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        need = batch_capacity(self.counts, batch_size)
        if capacity is None:
            capacity = need
        elif int(capacity) < need:
            raise ValueError(
                f"capacity {capacity} is smaller than the {need} events of the busiest batch of "
                f"{batch_size} trials: spikes would be lost (leave capacity None to size it)"
            )
        children, aux = self.tree_flatten()
        out = TrialSet.tree_unflatten(aux[:-2] + (batch_size, int(capacity)), children)
        return out

    def subset(self, index) -> TrialSet:
        """The trials ``index`` (integer array, in that order) as a new set on the host, with the
        same sizes and classes; the batch capacity is not carried over (call :meth:`with_batch`)."""
        idx = np.asarray(index, np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_trials):
            raise ValueError(f"trial indices must lie in [0, {self.n_trials})")
        off = np.asarray(self.offsets, np.int64)
        lo, hi = off[idx], off[idx + 1]
        lens = hi - lo
        new_off = np.concatenate([[0], np.cumsum(lens)])
        # event j of the subset is source event lo[trial] + (j - new_off[trial])
        src = np.repeat(lo - new_off[:-1], lens) + np.arange(int(new_off[-1]))
        return TrialSet(
            np.asarray(self.steps)[src],
            np.asarray(self.units)[src],
            new_off,
            np.asarray(self.labels)[idx],
            n_units=self.n_units,
            n_steps=self.n_steps,
            dt=self.dt,
            n_classes=self.n_classes,
        )

    # ------------------------------------------------------------------ pytree
    def tree_flatten(self):
        aux = (
            self.n_units,
            self.n_steps,
            self.dt,
            self.n_classes,
            self.batch_size,
            self.capacity,
        )
        return (self.steps, self.units, self.offsets, self.labels), aux

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = object.__new__(cls)  # leaves may be tracers: no host checks
        obj.steps, obj.units, obj.offsets, obj.labels = children
        (obj.n_units, obj.n_steps, obj.dt, obj.n_classes, obj.batch_size, obj.capacity) = aux
        return obj

    # ------------------------------------------------------------------ views
    @property
    def n_trials(self) -> int:
        return int(self.labels.shape[0])

    @property
    def n_events(self) -> int:
        return int(self.steps.shape[0])

    @property
    def duration(self) -> float:
        """Trial length ``n_steps dt`` (s)."""
        return self.n_steps * self.dt

    @property
    def counts(self) -> np.ndarray:
        """Spikes per trial ``[n_trials]`` (host int64)."""
        return np.diff(np.asarray(self.offsets, np.int64))

    def trial(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, units)`` of trial ``i`` on the host, each ``[E_i]``."""
        off = np.asarray(self.offsets)
        lo, hi = int(off[i]), int(off[i + 1])
        return np.asarray(self.steps)[lo:hi], np.asarray(self.units)[lo:hi]

    def trial_raster(self, i: int, dtype="float32") -> np.ndarray:
        """Trial ``i`` as a dense ``[T, N]`` count raster on the host (one trial, for plots and
        checks; the training path is :func:`ssjax.data.batches.dense_batch`)."""
        s, u = self.trial(i)
        out = np.zeros((self.n_steps, self.n_units), dtype)
        np.add.at(out, (s, u), 1)
        return out

    def __repr__(self) -> str:
        return (
            f"TrialSet(n_trials={self.n_trials}, n_units={self.n_units}, n_steps={self.n_steps}, "
            f"dt={self.dt}, n_classes={self.n_classes}, events={self.n_events}, "
            f"batch_size={self.batch_size}, capacity={self.capacity})"
        )
