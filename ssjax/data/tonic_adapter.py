"""Event-camera and audio data sets in tonic's format as labelled trials (the ``tonic`` extra).

tonic (``pip install -e '.[tonic]'``) gives each sample as a numpy structured array of events
with fields ``t`` (microseconds), ``x`` and optionally ``y`` and ``p`` (polarity), and a sensor
size ``(W, H, P)`` (e.g. N-MNIST ``(34, 34, 2)``, SHD ``(700, 1, 1)``). The adapter turns them
into a :class:`TrialSet`, one unit per (polarity, row, column) in tonic's frame order
(``tonic.transforms.ToFrame`` gives ``[T, P, H, W]`` frames)::

    unit = (p H + y) W + x,    n_units = W H P

A single-polarity sensor (``P = 1``) reads every event as ``p = 0``, as ``ToFrame`` does.
Converting arrays needs no tonic: only reading a tonic data set object does, and then only
through its ``__getitem__`` and ``sensor_size``.

Reference: Lenz et al., tonic (github.com/neuromorphs/tonic).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ssjax.data.trials import TrialSet

__all__ = ["from_tonic_dataset", "from_tonic_events", "tonic_units"]

_US = 1e-6  # tonic's time unit (s)


def tonic_units(
    events: np.ndarray, sensor_size: Sequence[int], *, on_out_of_range: str = "error"
) -> np.ndarray:
    """Flat unit ids ``[E]`` (int64) of one structured event array (module docstring).

    A coordinate outside the sensor is a ValueError naming the field, or (``"drop"``) the unit
    ``W H P``, which :meth:`TrialSet.from_times` then drops."""
    names = events.dtype.names or ()
    for need in ("t", "x"):
        if need not in names:
            raise ValueError(f"tonic events need the field {need!r}, the dtype has {names}")
    W, H, P = (int(s) for s in sensor_size)
    zero = np.zeros(events.shape, np.int64)
    x = np.asarray(events["x"], np.int64)
    y = np.asarray(events["y"], np.int64) if "y" in names else zero
    p = np.asarray(events["p"], np.int64) if "p" in names and P > 1 else zero
    bad = np.zeros(events.shape, bool)
    for name, v, size in (("x", x, W), ("y", y, H), ("p", p, P)):
        out = (v < 0) | (v >= size)
        if out.any() and on_out_of_range == "error":
            k = int(np.argmax(out))
            raise ValueError(
                f"event field {name!r} = {v[k]} outside the sensor's [0, {size}) "
                f"(sensor_size {tuple(sensor_size)}; on_out_of_range='drop' discards it)"
            )
        bad |= out
    return np.where(bad, W * H * P, (p * H + y) * W + x)


def from_tonic_events(
    events: Sequence[np.ndarray],
    labels,
    *,
    sensor_size: Sequence[int],
    dt: float,
    duration: float | None = None,
    n_classes: int | None = None,
    rounding: str = "round",
    on_out_of_range: str = "error",
    time_unit: float = _US,
) -> TrialSet:
    """Trials from tonic-format event arrays: ``events[i]`` ``[E_i]`` structured, ``labels[i]``.

    ``t`` is in ``time_unit`` seconds (tonic: microseconds); ``n_units = W H P``; ``dt``,
    ``duration`` (s), ``n_classes``, ``rounding`` and ``on_out_of_range`` as
    :meth:`TrialSet.from_times` (errors name the sample as ``trial i``).
    """
    if len(events) != np.size(labels):
        raise ValueError(f"{len(events)} event arrays but {np.size(labels)} labels")
    times, units = [], []
    for i, ev in enumerate(events):
        ev = np.asarray(ev)
        try:
            units.append(tonic_units(ev, sensor_size, on_out_of_range=on_out_of_range))
        except ValueError as exc:
            raise ValueError(f"trial {i}: {exc}") from None
        times.append(np.asarray(ev["t"], np.float64) * time_unit)
    W, H, P = (int(s) for s in sensor_size)
    return TrialSet.from_times(
        times,
        units,
        np.asarray(labels),
        n_units=W * H * P,
        dt=dt,
        duration=duration,
        n_classes=n_classes,
        rounding=rounding,
        on_out_of_range=on_out_of_range,
        fields=("t", "x/y/p"),
    )


def from_tonic_dataset(
    dataset,
    *,
    dt: float,
    duration: float | None = None,
    sensor_size: Sequence[int] | None = None,
    n_classes: int | None = None,
    limit: int | None = None,
    rounding: str = "round",
    on_out_of_range: str = "error",
) -> TrialSet:
    """A tonic data set (``dataset[i] -> (events, label)``, without a ``ToFrame`` transform) as
    a :class:`TrialSet`; ``sensor_size`` defaults to ``dataset.sensor_size``, ``limit`` takes
    the first samples only. Reads every sample once, keeping the events (``O(events)``)."""
    size = sensor_size if sensor_size is not None else getattr(dataset, "sensor_size", None)
    if size is None:
        raise ValueError("sensor_size is needed: the data set has no sensor_size attribute")
    n = len(dataset) if limit is None else min(int(limit), len(dataset))
    events, labels = [], []
    for i in range(n):
        ev, label = dataset[i]
        events.append(ev)
        labels.append(int(label))
    return from_tonic_events(
        events,
        np.asarray(labels, np.int64),
        sensor_size=size,
        dt=dt,
        duration=duration,
        n_classes=n_classes,
        rounding=rounding,
        on_out_of_range=on_out_of_range,
    )
