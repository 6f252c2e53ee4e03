"""Looped patterns as spike events: one period of spikes, gathered block by block on the device.

A pattern is one period of ``P`` steps for ``N`` units, replayed in a loop (SUPERSPIKE.md 2.1).
Held as a dense ``[P, N]`` raster it costs ``P N`` values (1.3 GB for 1000 inputs over a 33.1 s
period at 0.1 ms), although the spikes are few (5 Hz: one value in 2000). :class:`EventPattern`
keeps the spikes of one period only, sorted by step: ``steps`` and ``ids`` ``[S]`` int32, memory
``O(S)``. The trainer asks for one block at a time, :meth:`EventPattern.window`: the steps
``pos .. pos + k - 1`` of the looped period as a dense ``[k, N]`` block, built on the device::

    lo    = searchsorted(steps, pos mod P)                 first event of the window
    j     = lo + [0, C)                                    C = capacity, a static count
    src   = j mod S,   t = steps[src] + (j div S) P - (pos mod P)
    block = zeros[k, N].at[t, ids[src]].add(1)  for t < k  (t >= k is dropped)

The capacity ``C`` is the largest number of events any window of ``block`` steps holds
(:func:`max_window_count`, computed on the host when the pattern is made), so the gather has a
fixed shape and loses nothing; a capacity given smaller than that is an error at construction,
never a silent truncation. Wrap-around and windows longer than a period come out of the
modular index ``j mod S``. Events of one unit on one step add up, so the block holds spike
counts, the same values as the dense raster's slice (exact: small integers).

:class:`DensePattern` is the dense form behind the same interface (``window``, ``n_steps``,
``shape``, ``to_dense``), for compact codes (the int8 window annotation of classification tasks)
and for callers that pass arrays (:func:`as_pattern`).

Reference: Zenke & Ganguli (2018), Methods (frozen patterns replayed in a loop).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ssjax._types import Array

__all__ = ["DensePattern", "EventPattern", "Pattern", "as_pattern", "max_window_count"]


def max_window_count(steps: np.ndarray, n_steps: int, k: int) -> int:
    """The most events any window of ``k`` consecutive steps of the looped period holds.

    ``steps`` ``[S]`` sorted, in ``[0, n_steps)``. A window of ``k = q P + r`` steps holds ``q S``
    events plus those of ``r`` steps; the busiest window starts on an event, so only those starts
    are counted (``O(S log S)``).
    """
    s = np.asarray(steps, np.int64)
    if s.size == 0 or k <= 0:
        return 0
    full, rem = divmod(int(k), int(n_steps))
    if rem == 0:
        return full * s.size
    ext = np.concatenate([s, s + n_steps])  # the period twice: a window of r < P steps wraps once
    ends = np.searchsorted(ext, s + rem, side="left")
    return full * s.size + int((ends - np.arange(s.size)).max())


def _window(pattern: Array, pos: Array, k: int) -> Array:
    """Steps ``pos .. pos + k - 1`` of ``pattern`` ``[P, ...]`` replayed in a loop: ``[k, ...]``.

    One contiguous slice of the pattern tiled to ``P - 1 + k`` steps instead of a per-step
    gather (XLA fuses the tiling into the slice; nothing of size ``P + k`` is written).
    """
    period = pattern.shape[0]
    reps = -(-(period - 1 + k) // period)
    tiled = jnp.tile(pattern, (reps,) + (1,) * (pattern.ndim - 1)) if reps > 1 else pattern
    return jax.lax.dynamic_slice_in_dim(tiled, pos % period, k)


@jax.tree_util.register_pytree_node_class
class EventPattern:
    """One period of spikes as events (module docstring); a pytree (``steps``, ``ids`` leaves).

    Args:
      steps, ids: ``[S]`` integer step (in ``[0, n_steps)``) and unit (in ``[0, n)``) of each
        spike; sorted here by step, then unit. A repeated pair is a count of 2.
      n_steps: the period ``P`` (steps). n: the number of units ``N``.
      block: the window length (steps) the capacity is computed for; :meth:`window` serves any
        ``k <= block``. None: no capacity yet (:meth:`with_block` sets it).
      capacity: events gathered per window; None computes the least that loses nothing; a value
        below that raises ValueError.
      dtype: the float type of :meth:`window` and :meth:`to_dense` (numpy dtype name).

    Raises ValueError (naming the argument) for out-of-range steps or ids, or a capacity too
    small.
    """

    def __init__(
        self, steps, ids, n_steps: int, n: int, *, block=None, capacity=None, dtype="float32"
    ):
        steps = np.asarray(steps).reshape(-1)
        ids = np.asarray(ids).reshape(-1)
        if steps.shape != ids.shape:
            raise ValueError(f"steps and ids differ in length: {steps.size} vs {ids.size}")
        if int(n_steps) != n_steps or n_steps < 1 or int(n) != n or n < 0:
            raise ValueError(f"n_steps must be >= 1 and n >= 0 integers, got {n_steps!r}, {n!r}")
        n_steps, n = int(n_steps), int(n)
        if steps.size and (steps.min() < 0 or steps.max() >= n_steps):
            raise ValueError(
                f"steps must lie in [0, n_steps={n_steps}), got {steps.min()}..{steps.max()}"
            )
        if ids.size and (ids.min() < 0 or ids.max() >= n):
            raise ValueError(f"ids must lie in [0, n={n}), got {ids.min()}..{ids.max()}")
        order = np.lexsort((ids, steps))
        self.steps = steps[order].astype(np.int32)
        self.ids = ids[order].astype(np.int32)
        self.n_steps, self.n = n_steps, n
        self.dtype = np.dtype(dtype).name
        self.block: int | None = None
        self.capacity: int | None = None
        if block is not None:
            self._set_block(int(block), capacity)
        elif capacity is not None:
            raise ValueError("capacity needs block (the window length it is counted for)")

    def _set_block(self, block: int, capacity) -> None:
        if block < 1:
            raise ValueError(f"block must be >= 1 step, got {block}")
        need = max_window_count(self.steps, self.n_steps, block)
        if capacity is None:
            capacity = need
        elif int(capacity) < need:
            raise ValueError(
                f"capacity {capacity} is smaller than the {need} events of the busiest window of "
                f"{block} steps: spikes would be lost (leave capacity None to size it)"
            )
        self.block, self.capacity = block, int(capacity)

    # ------------------------------------------------------------------ pytree
    def tree_flatten(self):
        aux = (self.n_steps, self.n, self.block, self.capacity, self.dtype)
        return (self.steps, self.ids), aux

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = object.__new__(cls)  # leaves may be tracers: no host checks
        obj.steps, obj.ids = children
        obj.n_steps, obj.n, obj.block, obj.capacity, obj.dtype = aux
        return obj

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dense(cls, raster, *, block=None, capacity=None, dtype=None) -> EventPattern:
        """Events of a dense ``[P, N]`` raster of non-negative integer counts (a count ``c``
        gives ``c`` events); ``dtype`` defaults to the raster's float type (float32 else)."""
        r = np.asarray(raster)
        if r.ndim != 2:
            raise ValueError(f"raster must be [P, N], got shape {r.shape}")
        if r.size and (r.min() < 0 or not np.array_equal(r, np.round(r))):
            raise ValueError("raster entries must be non-negative integer spike counts")
        t, i = np.nonzero(r)
        c = r[t, i].astype(np.int64)
        if dtype is None:
            dtype = r.dtype if np.issubdtype(r.dtype, np.floating) else np.float32
        return cls(
            np.repeat(t, c),
            np.repeat(i, c),
            r.shape[0],
            r.shape[1],
            block=block,
            capacity=capacity,
            dtype=dtype,
        )

    def with_block(self, block: int, capacity=None) -> EventPattern:
        """This pattern with the capacity of windows of ``block`` steps (a copy)."""
        out = EventPattern.tree_unflatten(self.tree_flatten()[1], self.tree_flatten()[0])
        out._set_block(int(block), capacity)
        return out

    # ------------------------------------------------------------------ use
    @property
    def shape(self) -> tuple[int, int]:
        """``(P, N)``, the shape of the dense raster."""
        return (self.n_steps, self.n)

    @property
    def n_events(self) -> int:
        return int(self.steps.shape[0])

    def window(self, pos: Array, k: int, dtype=None) -> Array:
        """Steps ``pos .. pos + k - 1`` of the looped period, dense ``[k, N]`` spike counts in
        ``dtype`` (default the pattern's), built on the device (module docstring). ``pos`` may be
        traced (and vmapped); ``k`` is static and at most :attr:`block`."""
        dtype = self.dtype if dtype is None else dtype
        if self.block is None:
            raise ValueError(
                "EventPattern.window needs a capacity: make the pattern with block=k or call "
                f"with_block(k) first (k = {k} steps here)"
            )
        if k > self.block:
            raise ValueError(
                f"window of {k} steps, but the capacity is counted for {self.block}: "
                f"call with_block({k})"
            )
        n_ev, cap = self.n_events, self.capacity
        out = jnp.zeros((k, self.n), dtype)
        if n_ev == 0 or cap == 0:
            return out
        steps, ids = jnp.asarray(self.steps), jnp.asarray(self.ids)
        r = jnp.asarray(pos % self.n_steps, jnp.int32)
        lo = jnp.searchsorted(steps, r, side="left").astype(jnp.int32)
        j = lo + jnp.arange(cap, dtype=jnp.int32)
        copy = j // n_ev
        src = j - copy * n_ev
        t = steps[src] + copy * self.n_steps - r
        t = jnp.where(t < k, t, k)  # beyond the window: index k, dropped by the scatter
        return out.at[t, ids[src]].add(jnp.ones((), dtype), mode="drop")

    def to_dense(self, dtype=None) -> np.ndarray:
        """The dense ``[P, N]`` raster on the host (small patterns only: ``P N`` values)."""
        dtype = self.dtype if dtype is None else dtype
        out = np.zeros((self.n_steps, self.n), dtype)
        np.add.at(out, (self.steps, self.ids), 1)  # repeated events add up; O(S) beyond the output
        return out

    def __repr__(self) -> str:
        return (
            f"EventPattern(n_steps={self.n_steps}, n={self.n}, events={self.n_events}, "
            f"block={self.block}, capacity={self.capacity}, dtype={self.dtype})"
        )


@jax.tree_util.register_pytree_node_class
class DensePattern:
    """A dense pattern ``[P, ...]`` behind :class:`EventPattern`'s interface; :meth:`window` is
    the tiled slice (:func:`_window`), cast to ``dtype`` when given (e.g. int8 window codes
    served as the run's float type)."""

    def __init__(self, data, dtype=None):
        self.data = data
        self.dtype = None if dtype is None else np.dtype(dtype).name

    def tree_flatten(self):
        return (self.data,), self.dtype

    @classmethod
    def tree_unflatten(cls, dtype, children):
        return cls(children[0], dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def n_steps(self) -> int:
        return int(self.data.shape[0])

    def with_block(self, block: int, capacity=None) -> DensePattern:
        return self

    def window(self, pos: Array, k: int, dtype=None) -> Array:
        x = _window(self.data, pos, k)
        dtype = self.dtype if dtype is None else dtype
        return x if dtype is None else x.astype(dtype)

    def to_dense(self, dtype=None) -> np.ndarray:
        dtype = self.dtype if dtype is None else dtype
        x = np.asarray(self.data)
        return x if dtype is None else x.astype(dtype)


Pattern = EventPattern | DensePattern


def as_pattern(x) -> Pattern:
    """``x`` if it is a pattern, else a :class:`DensePattern` of the array ``x`` (served as is)."""
    return x if isinstance(x, (EventPattern, DensePattern)) else DensePattern(x)
