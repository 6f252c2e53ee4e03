"""Spike rasters: the SSBM ``.ras`` text format, sparse events, dense time-major rasters.

A ``.ras`` file holds one spike a line, ``time_in_seconds neuron_id`` (whitespace separated, integer
ids); lines starting with ``#`` are comments and blank lines are ignored. The SSBM reference files
have a time resolution of 0.1 ms. Dense rasters are time-major ``[T, N]`` spike counts on a grid of
step ``dt`` seconds; a spike at time t lands in bin ``np.rint(t / dt)`` (round half to even), so
times written on the grid read back into the same bin despite float error in ``t / dt``.

``task.kind: ras`` (registered here, :mod:`ssjax.tasks.registry`) trains on two such files,
``task.input`` ``[P, n_in]`` and ``task.target`` ``[P, n_out]``, ``P = task.period / dt``; they
are parsed once, when the config is validated.

Reference: SSBM benchmark suite, github.com/fzenke/ssbm (Zenke 2017, MIT); Zenke & Ganguli 2018,
"SuperSpike", Neural Comput. 30(6):1514-1541.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
import warnings
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from ssjax.params import borrow, check_fields, choice, param
from ssjax.pattern import EventPattern
from ssjax.tasks.registry import TaskCommon, TaskError, TaskKind, register

__all__ = [
    "RasterError",
    "SpikeEvents",
    "events_to_bins",
    "events_to_raster",
    "frozen_poisson",
    "frozen_poisson_events",
    "load_raster",
    "raster_to_events",
    "read_ras",
    "write_ras",
]


class RasterError(ValueError):
    """Invalid raster data; the message names the file and, where relevant, the 1-based line.

    ``offset`` is, for ids out of range that look 1-based, the id offset that would fit them
    (callers phrase the advice in their own terms: a config key, an argument)."""

    def __init__(self, message: str, *, offset: int | None = None):
        super().__init__(message)
        self.offset = offset


_HEADER_N = re.compile(r"^#\s*neurons\s*[:=]?\s*(\d+)\s*$", re.IGNORECASE)


def header_neurons(text: str) -> tuple[int, int] | None:
    """``(N, line)`` of a ``# neurons N`` header comment (what :func:`write_ras` writes for a
    dense raster), or None when the file has none."""
    for lineno, raw in enumerate(text.splitlines(), start=1):
        m = _HEADER_N.match(raw.strip())
        if m:
            return int(m.group(1)), lineno
    return None


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: element-wise array equality is ambiguous
class SpikeEvents:
    """Sparse spike list: spike k is neuron ``ids[k]`` at ``times[k]`` seconds.

    Attributes:
      times: float64 seconds, shape [K].
      ids: int64 neuron indices, shape [K].
    """

    times: np.ndarray
    ids: np.ndarray

    def __post_init__(self):
        times = np.asarray(self.times, dtype=np.float64).reshape(-1)
        ids = np.asarray(self.ids)
        if ids.size and not np.array_equal(ids, np.round(ids)):
            raise ValueError("SpikeEvents ids must be integers")
        ids = ids.astype(np.int64).reshape(-1)
        if times.shape != ids.shape:
            raise ValueError(f"times and ids differ in length: {times.size} vs {ids.size}")
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "ids", ids)

    def __len__(self) -> int:
        return int(self.times.size)


def _parse_lines(path, text: str):
    times, ids, linenos = [], [], []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}, line {lineno}"
        fields = line.split()
        if len(fields) != 2:
            raise RasterError(
                f"{where}: expected 2 fields 'time_s neuron_id', got {len(fields)}: {raw!r}"
            )
        try:
            t = float(fields[0])
        except ValueError:
            raise RasterError(f"{where}: time {fields[0]!r} is not a number") from None
        if not math.isfinite(t):
            raise RasterError(f"{where}: time {fields[0]!r} is not finite")
        if t < 0:
            raise RasterError(f"{where}: negative time {t!r} s")
        try:
            i = int(fields[1])
        except ValueError:
            # Some tools write ids as floats ("3.0"); accept those only when integer-valued.
            try:
                f = float(fields[1])
            except ValueError:
                f = math.nan
            if not (math.isfinite(f) and f.is_integer()):
                raise RasterError(f"{where}: neuron id {fields[1]!r} is not an integer") from None
            i = int(f)
        times.append(t)
        ids.append(i)
        linenos.append(lineno)
    return (
        np.asarray(times, dtype=np.float64),
        np.asarray(ids, dtype=np.int64),
        np.asarray(linenos, dtype=np.int64),
    )


def read_ras(path, *, id_offset=0, on_out_of_range="error", n=None) -> SpikeEvents:
    """Read a ``.ras`` file into SpikeEvents (file order kept).

    Args:
      path: file path.
      id_offset: subtracted from every id; 1 reads 1-based files (e.g. the SSBM Oxford target).
      on_out_of_range: "error" or "drop" (drop with a warning) for ids, after the offset, outside
        [0, n) (or negative when n is None).
      n: number of neurons, or None to check only that ids are >= 0.

    Returns:
      SpikeEvents with times in seconds, shape [K].

    Raises:
      RasterError: missing/unreadable file, malformed line, non-finite or negative time,
        non-integer id, or (with "error") an out-of-range id; the message names the file and line.
    """
    if on_out_of_range not in ("error", "drop"):
        raise ValueError(f"on_out_of_range must be 'error' or 'drop', got {on_out_of_range!r}")
    if n is not None and (int(n) != n or n < 0):
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise RasterError(f"cannot read raster file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise RasterError(f"{path}: not a UTF-8 text file ({exc.reason})") from exc
    times, raw_ids, linenos = _parse_lines(path, text)
    head = header_neurons(text)
    if n is not None and head is not None and head[0] != n:
        raise RasterError(
            f"{path}, line {head[1]}: the header says {head[0]} neurons, but {n} are expected"
        )
    ids = raw_ids - int(id_offset)
    bad = ids < 0 if n is None else (ids < 0) | (ids >= n)
    if bad.any():
        valid = f"[0, {n})" if n is not None else ">= 0"
        if on_out_of_range == "drop":
            warnings.warn(
                f"{path}: dropped {int(bad.sum())} of {ids.size} spikes whose ids "
                f"(after id_offset={id_offset}) lie outside {valid}",
                stacklevel=2,
            )
            return SpikeEvents(times[~bad], ids[~bad])
        k = int(np.argmax(bad))
        shown = f"{ids[k]}" if id_offset == 0 else f"{ids[k]} (file id {raw_ids[k]} - {id_offset})"
        msg = f"{path}, line {linenos[k]}: neuron id {shown} out of range {valid}"
        offset = None
        if n is not None:
            msg += f" for n={n}"
            if ids.min() >= 1 and ids.max() == n:
                offset = int(id_offset) + 1
                msg += f"; ids span {ids.min()}..{ids.max()}, which looks 1-based"
        raise RasterError(msg + f" ({int(bad.sum())} such spikes)", offset=offset)
    return SpikeEvents(times, ids)


def _time_strings(times: np.ndarray) -> list[str]:
    # Shortest digits that parse back to the identical float64, so reading is exact.
    return [np.format_float_positional(t, unique=True, trim="0") for t in times]


def write_ras(path, events_or_raster, *, dt=None, t0=0.0, header=None) -> None:
    """Write spikes as a ``.ras`` file, lines sorted by time then id.

    Args:
      path: output file path.
      events_or_raster: SpikeEvents, or a dense [T, N] raster of non-negative integer counts (a
        count c writes c identical lines).
      dt: bin width in seconds; required for a dense raster, not allowed with SpikeEvents.
      t0: time in seconds of bin 0 of a dense raster.
      header: optional text written first as ``#`` comment lines.

    Event times are written with the shortest digits that round-trip float64 exactly; dense-raster
    times are rounded to a few decimals beyond dt's when that keeps every bin, so
    ``load_raster(path, N, dt)`` returns the raster exactly (for t0 = 0).
    """
    if isinstance(events_or_raster, SpikeEvents):
        if dt is not None:
            raise ValueError("dt applies only to a dense raster; SpikeEvents carry their times")
        ev = events_or_raster
        order = np.lexsort((ev.ids, ev.times))
        times, ids = ev.times[order], ev.ids[order]
    else:
        if dt is None:
            raise ValueError("dt (seconds) is required to write a dense [T, N] raster")
        ev = raster_to_events(events_or_raster, dt, t0)
        times, ids = ev.times, ev.ids  # already sorted by bin then id
        decimals = max(0, math.ceil(-math.log10(dt))) + 3
        rounded = np.round(times, decimals)
        # Rounding makes the file readable (0.0003, not 0.00030000000000000003); keep it only
        # if no spike changes bin.
        if np.array_equal(np.rint(rounded / dt), np.rint(times / dt)):
            times = rounded
    if times.size and not (np.all(np.isfinite(times)) and times.min() >= 0):
        raise ValueError("spike times must be finite and >= 0 to be written")
    if ids.size and ids.min() < 0:
        raise ValueError(f"neuron ids must be >= 0 to be written, got {ids.min()}")
    lines = []
    if header:
        lines += [f"# {h}".rstrip() for h in str(header).splitlines()]
    lines += [f"{t} {i}" for t, i in zip(_time_strings(times), ids.tolist(), strict=True)]
    with open(os.fspath(path), "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + ("\n" if lines else ""))


def events_to_bins(events, n, dt, duration=None) -> tuple[np.ndarray, np.ndarray, int]:
    """The steps of SpikeEvents on a grid of ``dt``: ``(bins [K], ids [K], T)`` (int64), the
    checks and bins of :func:`events_to_raster` without the dense raster.

    Raises:
      RasterError: an id outside [0, n), or (with duration) a spike whose bin is >= T.
    """
    if not dt > 0:
        raise ValueError(f"dt must be > 0 seconds, got {dt!r}")
    if int(n) != n or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    n = int(n)
    bins = np.rint(events.times / dt).astype(np.int64)
    ids = events.ids
    if ids.size and (ids.min() < 0 or ids.max() >= n):
        bad = ids[(ids < 0) | (ids >= n)]
        raise RasterError(f"neuron id {bad[0]} out of range [0, {n}) ({bad.size} such spikes)")
    if bins.size and bins.min() < 0:
        raise RasterError(f"negative spike time {events.times.min()!r} s")
    if duration is None:
        T = int(bins.max()) + 1 if bins.size else 0
    else:
        if not duration > 0:
            raise ValueError(f"duration must be > 0 seconds, got {duration!r}")
        T = int(np.rint(duration / dt))
        if bins.size and bins.max() >= T:
            k = int(np.argmax(bins))
            raise RasterError(
                f"spike of neuron {ids[k]} at t={events.times[k]!r} s falls in bin {bins[k]}, "
                f"beyond duration {duration!r} s ({T} bins of dt={dt!r} s)"
            )
    return bins, ids, T


def events_to_raster(events, n, dt, duration=None, *, dtype=np.float32) -> np.ndarray:
    """Bin SpikeEvents into a dense time-major raster of spike counts, shape [T, N].

    Bin index is ``np.rint(t / dt)``. T = ``round(duration / dt)`` when duration (seconds) is
    given, else last occupied bin + 1 (0 for no spikes). Spikes of one neuron that share a bin add
    up, so entries are counts (cast to dtype).

    Raises:
      RasterError: an id outside [0, n), or (with duration) a spike whose bin is >= T.
    """
    bins, ids, T = events_to_bins(events, n, dt, duration)
    n = int(n)
    counts = np.bincount(bins * n + ids, minlength=T * n) if n else np.zeros(0, np.int64)
    return counts.reshape(T, n).astype(dtype)


def raster_to_events(raster, dt, t0=0.0) -> SpikeEvents:
    """Inverse of events_to_raster: [T, N] counts -> SpikeEvents sorted by time then id.

    Bin b maps to time ``t0 + b * dt`` seconds; a count c > 1 gives c repeated events.
    """
    if not dt > 0:
        raise ValueError(f"dt must be > 0 seconds, got {dt!r}")
    r = np.asarray(raster)
    if r.ndim != 2:
        raise ValueError(f"raster must be 2-D [T, N], got shape {r.shape}")
    if r.size and (not np.array_equal(r, np.round(r)) or r.min() < 0):
        raise ValueError("raster entries must be non-negative integer spike counts")
    b, i = np.nonzero(r)
    c = r[b, i].astype(np.int64)
    b, i = np.repeat(b, c), np.repeat(i, c)
    return SpikeEvents(t0 + b.astype(np.float64) * dt, i)


def load_raster(path, n, dt, duration=None, *, dtype=np.float32, **read_kwargs) -> np.ndarray:
    """Read a ``.ras`` file into a dense [T, N] count raster (read_ras, then events_to_raster).

    ``read_kwargs`` go to read_ras (id_offset, on_out_of_range); n is passed to both.
    """
    events = read_ras(path, n=n, **read_kwargs)
    try:
        return events_to_raster(events, n, dt, duration, dtype=dtype)
    except RasterError as exc:
        raise RasterError(f"{os.fspath(path)}: {exc}") from None


def _poisson_args(n, rate_hz, duration, dt) -> tuple[int, np.ndarray, int]:
    """Checked ``(n, rate * dt as float64 [N] or scalar, T)`` of :func:`frozen_poisson`."""
    if int(n) != n or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if not dt > 0:
        raise ValueError(f"dt must be > 0 seconds, got {dt!r}")
    if not duration > 0:
        raise ValueError(f"duration must be > 0 seconds, got {duration!r}")
    rate = np.asarray(rate_hz, dtype=np.float64)
    if rate.ndim not in (0, 1) or (rate.ndim == 1 and rate.shape != (n,)):
        raise ValueError(f"rate_hz must be a scalar or shape [{n}], got shape {rate.shape}")
    if not np.all(np.isfinite(rate) & (rate >= 0)):
        raise ValueError(f"rate_hz must be finite and >= 0 Hz, got {rate_hz!r}")
    p = rate * dt
    if np.any(p > 1):
        raise ValueError(f"rate_hz * dt must be <= 1 (a bin holds one spike), got {p.max()!r}")
    T = int(np.rint(duration / dt))
    if T < 1:
        raise ValueError(f"duration {duration!r} s is shorter than half a bin (dt={dt!r} s)")
    return int(n), p, T


def frozen_poisson(key, n, rate_hz, duration, dt, *, dtype=jnp.float32) -> jax.Array:
    """Frozen Poisson input: [T, N] of 0/1, each bin Bernoulli(rate_hz * dt), T = rint(duration/dt).

    Args:
      key: jax.random key; the only source of randomness (same key, same raster).
      n: number of neurons N.
      rate_hz: rate in Hz, scalar or shape [N].
      duration: seconds (> 0).
      dt: bin width in seconds (> 0).

    The SSBM inputs are such rasters at ~5 Hz, drawn once and replayed (Zenke & Ganguli 2018).
    :func:`frozen_poisson_events` gives the same spikes as events, without the dense raster.
    """
    n, p, T = _poisson_args(n, rate_hz, duration, dt)
    spikes = jax.random.bernoulli(key, jnp.asarray(p, jnp.float32), (T, int(n)))
    return spikes.astype(dtype)


# elements per chunk of frozen_poisson_events (16 MB of uint32 bits)
_CHUNK = 1 << 22


@functools.partial(jax.jit, static_argnames=("rows", "n"))
def _bernoulli_rows(key, p, base_hi, base_lo, rows: int, n: int):
    """Rows ``[rows, n]`` of ``jax.random.bernoulli(key, p, (T, n))`` from flat index
    ``base = base_hi 2^32 + base_lo`` on: the partitionable threefry draws element ``i`` from
    the counter ``i`` alone (``jax_threefry_partitionable``), so a chunk is computed by itself;
    the bits become a float32 uniform in [0, 1) as ``jax.random.uniform`` makes it."""
    from jax.extend.random import threefry2x32_p

    k = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    off = jnp.arange(rows * n, dtype=jnp.uint32).reshape(rows, n)
    lo = base_lo + off
    hi = base_hi + (lo < base_lo).astype(jnp.uint32)  # carry of the 64-bit counter
    b1, b2 = threefry2x32_p.bind(k[0], k[1], hi, lo)
    bits = (b1 ^ b2) >> jnp.uint32(32 - 23)
    u = jax.lax.bitcast_convert_type(bits | jnp.uint32(0x3F800000), jnp.float32) - 1.0
    return jnp.maximum(0.0, u) < p


def frozen_poisson_events(key, n, rate_hz, duration, dt) -> tuple[np.ndarray, np.ndarray, int]:
    """:func:`frozen_poisson`'s spikes as events, drawn in chunks of rows: ``(steps [S],
    ids [S], T)`` int32, sorted by step then id; memory ``O(S + chunk)``, never ``[T, N]``.

    Bit-identical to ``np.nonzero(frozen_poisson(key, ...))`` (tested) with JAX's
    partitionable threefry (the default); without it the dense draw is taken and converted.
    """
    n, p, T = _poisson_args(n, rate_hz, duration, dt)
    if not jax.config.jax_threefry_partitionable or n == 0:  # type: ignore[attr-defined]
        steps, ids = np.nonzero(np.asarray(jax.random.bernoulli(key, jnp.float32(p), (T, n))))
        return steps.astype(np.int32), ids.astype(np.int32), T
    rows = max(1, min(T, _CHUNK // n))
    p32 = jnp.asarray(p, jnp.float32)
    out_s, out_i = [], []
    for t0 in range(0, T, rows):
        base = t0 * n
        hit = np.asarray(
            _bernoulli_rows(key, p32, np.uint32(base >> 32), np.uint32(base & 0xFFFFFFFF), rows, n)
        )
        s, i = np.nonzero(hit[: T - t0])
        out_s.append((s + t0).astype(np.int32))
        out_i.append(i.astype(np.int32))
    return np.concatenate(out_s), np.concatenate(out_i), T


def _load_ras(task, dt: float, which: str) -> tuple[np.ndarray, np.ndarray, int]:
    """``(steps, ids, P)`` of ``task.<which>`` (``input`` or ``target``): the spikes' grid steps,
    never a dense raster; TaskError naming the key."""
    key, path, t = f"task.{which}", getattr(task, which), task
    n, off = (t.n_in, t.id_offset) if which == "input" else (t.n_out, t.target_id_offset)
    if path is None:
        raise TaskError(
            key,
            "required when task.kind is 'ras' (a .ras file path, "
            "relative to the YAML file's folder)",
        )
    if not os.path.isfile(path):
        raise TaskError(key, f"data file not found: {path}")
    offkey = "task.id_offset" if which == "input" else "task.target_id_offset"
    try:
        events = read_ras(path, n=n, id_offset=off, on_out_of_range=task.on_out_of_range)
        try:
            bins, ids, T = events_to_bins(events, n, dt, task.period)
        except RasterError as exc:
            raise RasterError(f"{os.fspath(path)}: {exc}") from None
    except (RasterError, ValueError) as exc:
        if getattr(exc, "offset", None) is not None:
            advice = f"set {offkey}: {exc.offset}"  # type: ignore[attr-defined]
        else:
            advice = (
                f"ids must lie in [0, {n}) after {offkey} = {off}, spike times in "
                f"[0, task.period = {task.period}) s; set task.on_out_of_range: drop to discard "
                "out-of-range ids"
            )
        raise TaskError(key, f"malformed raster: {exc}; {advice}") from None
    if which == "input" and not bins.size:
        raise TaskError(key, f"the input raster {path} holds no spike in the period")
    return bins.astype(np.int32), ids.astype(np.int32), T


def _load(task, dt: float, dtype) -> tuple:
    """Both files, parsed once at validation: ``((steps, ids, P) input, (...) target)``."""
    return _load_ras(task, dt, "input"), _load_ras(task, dt, "target")


def _build(task, dt: float, dtype, data) -> tuple[EventPattern, EventPattern]:
    """The parsed spikes as patterns (``[P, n_in]``, ``[P, n_out]`` counts) in ``dtype``."""
    (si, ii, p), (st, it, _) = data
    return (
        EventPattern(si, ii, p, task.n_in, dtype=dtype),
        EventPattern(st, it, p, task.n_out, dtype=dtype),
    )


@dataclasses.dataclass(frozen=True)
class RasParams:
    """The ``task`` keys of ``task.kind: ras``."""

    SCOPE: ClassVar[str] = "task"

    input: str | None = param(None, doc="input raster file (.ras: time id per line)")
    target: str | None = param(None, doc="target raster file (.ras)")
    n_in: int = borrow(TaskCommon, "n_in")
    n_out: int = borrow(TaskCommon, "n_out")
    id_offset: int = param(0, doc="subtracted from the input file's neuron ids")
    target_id_offset: int = param(0, doc="subtracted from the target file's neuron ids")
    on_out_of_range: str = param(
        "error",
        choice(("error", "drop")),
        doc="ids outside [0, n) after the offset: an error, or dropped with a warning",
    )
    period: float = borrow(TaskCommon, "period")

    def __post_init__(self):
        check_fields(self)


register(
    TaskKind(
        name="ras",
        params=RasParams,
        load=_load,
        build=_build,
    )
)
