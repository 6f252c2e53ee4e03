"""The spiking XOR task of the paper's Fig. 5: input stream, window annotation, window error.

Task (SUPERSPIKE.md section 3). ``n_ref + n_a + n_b`` inputs (ids ``[ref | A | B]`` in that order)
each fire once at a fixed random offset within a 10 ms stimulus; the reference group is present in
every pattern, groups A and B only in some. Kinds ``0..3`` are ref, ref+A, ref+B, ref+A+B
(``kind = a + 2 b``), the label is ``a XOR b`` and output ``o`` stands for class ``o``. Each
pattern opens a 25 ms window (the stimulus plus 15 ms). Inside it the correct output must fire at
least once and the wrong one not at all: a wrong-output spike is an immediate negative error spike,
and a correct output still silent at the window's last step gets one positive error spike there.
The SuperSpike rule filters this ``delta`` with the alpha kernel like any error, ``e = alpha *
delta`` (SUPERSPIKE.md section 2).

Choices the paper leaves open, and why:

- Groups 34 / 33 / 33 (sum 100): as equal as 100 allows, so A and B drive the network equally
  and neither can be told from the other by spike count; ref takes the odd input.
- Gap (from the end of one window to the next stimulus onset): uniform on the ``dt`` grid in
  ``[50, 150]`` ms. The minimum is 5 time constants of the membrane (10 ms) and of the alpha
  kernel's decay (10 ms), so a pattern's PSPs and filtered error have died out (< 1 %) before the
  next one; the spread makes the onset unpredictable from the previous pattern. Gaps are measured
  from the window's end, so windows never overlap. Every pattern is preceded by its gap and the
  stream ends with the last window: streams concatenate into a valid longer stream.
- Noise: 4 Hz Poisson on every input at every step except during stimuli, i.e. in the gaps and in
  the 15 ms response tail of each window ("intervals in which inputs fire Poisson" = everything
  between stimuli). The stimulus itself is exact: a present input fires exactly once, at its
  offset, and absent groups are silent (10 ms of 4 Hz on 100 inputs would add ~4 stray spikes).
- Order: each of the 4 kinds appears ``n // 4`` times, the ``n % 4`` extra patterns are distinct
  kinds chosen at random, and the whole list is shuffled. Classes are thus balanced to within 1,
  with no kind favoured, while the order stays random.
- Extra spikes of the correct output carry no error: the paper's error is zero once the correct
  output has fired, and the accuracy criterion (correct fired, wrong silent) does not count spikes.
  Output spikes outside every window carry no error either.

``task.kind: xor`` (registered here, :mod:`ssjax.tasks.registry`): ``task.n_in`` inputs split
as :func:`task_spec` does, 2 outputs; training on the frozen stream of ``task.n_patterns``
patterns drawn from ``PRNGKey(task.input_seed)``, scored afterwards on a held-out stream
(:func:`_heldout`).

Reference: Zenke & Ganguli (2018), "SuperSpike", Neural Comput. 30(6), Fig. 5.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar, NamedTuple

import jax
import numpy as np

from ssjax.losses import WindowState, window_error  # noqa: F401  (re-exported)
from ssjax.metrics import window_correct
from ssjax.params import borrow, check_fields, int_ge, param
from ssjax.pattern import DensePattern, EventPattern
from ssjax.tasks.raster import frozen_poisson
from ssjax.tasks.registry import TaskCommon, TaskKind, register

__all__ = [
    "WindowState",
    "XORSpec",
    "XORStream",
    "stream_timing",
    "task_spec",
    "window_accuracy",
    "window_error",
    "xor_stream",
    "xor_timing",
]

KIND_NAMES = ("ref", "ref+A", "ref+B", "ref+A+B")


def _steps(name: str, value: float, dt: float) -> int:
    # Window lengths must sit on the grid, or "25 ms" would silently become 24.9 or 25.1 ms.
    k = value / dt
    if abs(k - round(k)) > 1e-6 * max(1.0, k):
        raise ValueError(f"XORSpec.{name} = {value!r} s is not a whole number of dt = {dt!r} s")
    return int(round(k))


@dataclasses.dataclass(frozen=True)
class XORSpec:
    """Spiking XOR parameters; times in seconds, rate in Hz (defaults: module docstring)."""

    n_ref: int = 34
    n_a: int = 33
    n_b: int = 33
    stim: float = 0.010
    window: float = 0.025
    gap_min: float = 0.050
    gap_max: float = 0.150
    noise_hz: float = 4.0
    dt: float = 1e-4

    def __post_init__(self):
        for name, low in (("n_ref", 0), ("n_a", 1), ("n_b", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise ValueError(f"XORSpec.{name} must be an integer >= {low}, got {v!r}")
        for name in ("stim", "window", "gap_min", "gap_max", "noise_hz", "dt"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.number)):
                raise ValueError(f"XORSpec.{name} must be a number, got {v!r}")
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"XORSpec.{name} must be finite and >= 0, got {v!r}")
        for name in ("dt", "stim"):
            if not getattr(self, name) > 0:
                raise ValueError(f"XORSpec.{name} must be > 0 s, got {getattr(self, name)!r}")
        if self.window < self.stim:
            raise ValueError(f"XORSpec.window ({self.window} s) must be >= stim ({self.stim} s)")
        if self.gap_max < self.gap_min:
            raise ValueError(
                f"XORSpec.gap_max ({self.gap_max}) must be >= gap_min ({self.gap_min})"
            )
        if self.noise_hz * self.dt > 1:
            raise ValueError(f"XORSpec.noise_hz * dt must be <= 1, got {self.noise_hz * self.dt}")
        _steps("stim", self.stim, self.dt)
        _steps("window", self.window, self.dt)

    @property
    def n_in(self) -> int:
        return self.n_ref + self.n_a + self.n_b

    @property
    def stim_steps(self) -> int:
        return _steps("stim", self.stim, self.dt)

    @property
    def window_steps(self) -> int:
        return _steps("window", self.window, self.dt)

    def present(self, kind: int) -> np.ndarray:
        """Boolean ``[n_in]`` mask of the inputs that fire in a pattern of ``kind`` (0..3)."""
        groups = np.repeat([0, 1, 2], [self.n_ref, self.n_a, self.n_b])
        return (groups == 0) | ((groups == 1) & bool(kind & 1)) | ((groups == 2) & bool(kind & 2))


class XORStream(NamedTuple):
    """A stream of XOR patterns (host numpy arrays; T steps of ``spec.dt``).

    inputs [T, n_in] float32 0/1; code [T, 2] int8 window annotation (``window_error``);
    labels, kinds, onsets [n_patterns] int32 (class, kind 0..3, stimulus-start step).
    """

    inputs: np.ndarray
    code: np.ndarray
    labels: np.ndarray
    kinds: np.ndarray
    onsets: np.ndarray


def xor_timing(key: jax.Array, spec: XORSpec) -> np.ndarray:
    """The frozen pattern identity: each input's spike offset (s) in the stimulus, ``[n_in]``.

    Offsets are uniform on the grid ``k * dt``, ``k in [0, stim_steps)``; reuse one timing for
    every stream (training and test) so that the patterns stay the same.
    """
    k = jax.random.randint(key, (spec.n_in,), 0, spec.stim_steps)
    return np.asarray(k, np.int64) * spec.dt


def stream_timing(key: jax.Array, spec: XORSpec) -> np.ndarray:
    """The timing that ``xor_stream(key, spec, n)`` draws when it is given none: pass it to
    another stream (new order, gaps and noise) to present the same patterns, e.g. a test set."""
    return xor_timing(jax.random.split(key, 5)[0], spec)


def xor_stream(
    key: jax.Array, spec: XORSpec, n_patterns: int, timing: np.ndarray | None = None
) -> XORStream:
    """Draw ``n_patterns`` patterns in random order, each after a random noisy gap.

    Args:
      key: jax.random key for kinds, order, gaps, noise (and the timing when ``timing`` is None).
      spec: task parameters.
      n_patterns: number of patterns (>= 1).
      timing: ``[n_in]`` offsets from :func:`xor_timing`; None draws a fresh one from ``key``.

    Memory is ``4 T n_in`` bytes for ``inputs`` (about 0.5 MB per pattern with the defaults:
    a 25 ms window and a 100 ms mean gap at dt = 0.1 ms, 100 inputs).
    """
    if isinstance(n_patterns, bool) or int(n_patterns) != n_patterns or n_patterns < 1:
        raise ValueError(f"n_patterns must be an integer >= 1, got {n_patterns!r}")
    n = int(n_patterns)
    k_time, k_extra, k_order, k_gap, k_noise = jax.random.split(key, 5)
    if timing is None:
        timing = xor_timing(k_time, spec)  # = stream_timing(key, spec)
    offs = np.rint(np.asarray(timing, np.float64) / spec.dt).astype(np.int64)
    if offs.shape != (spec.n_in,) or offs.min() < 0 or offs.max() >= spec.stim_steps:
        raise ValueError(f"timing must be [{spec.n_in}] offsets in [0, stim={spec.stim}) s")

    extra = np.asarray(jax.random.permutation(k_extra, 4))[: n % 4]
    kinds = np.concatenate([np.tile(np.arange(4), n // 4), extra])
    kinds = np.asarray(jax.random.permutation(k_order, kinds), np.int32)
    labels = ((kinds & 1) ^ (kinds >> 1)).astype(np.int32)

    lo, hi = round(spec.gap_min / spec.dt), round(spec.gap_max / spec.dt)
    gaps = np.asarray(jax.random.randint(k_gap, (n,), lo, hi + 1), np.int64)
    W = spec.window_steps
    onsets = np.cumsum(gaps) + W * np.arange(n)
    T = int(onsets[-1]) + W

    inputs = np.array(frozen_poisson(k_noise, spec.n_in, spec.noise_hz, T * spec.dt, spec.dt))
    code = np.zeros((T, 2), np.int8)
    cols = np.arange(spec.n_in)
    for o, kind, y in zip(onsets, kinds, labels, strict=True):
        inputs[o : o + spec.stim_steps] = 0.0  # the stimulus is noise-free (module docstring)
        mask = spec.present(int(kind))
        inputs[o + offs[mask], cols[mask]] = 1.0
        code[o : o + W, y], code[o : o + W, 1 - y] = 1, -1
        code[o + W - 1, y], code[o + W - 1, 1 - y] = 2, -2
    return XORStream(inputs, code, labels, kinds, onsets.astype(np.int32))


def window_accuracy(spikes, stream: XORStream) -> tuple[float, np.ndarray]:
    """Fraction of patterns answered correctly: in its window the correct output fired, the wrong
    one did not; :func:`ssjax.metrics.window_accuracy` broken down by pattern kind.

    Args:
      spikes: ``[T, 2]`` output spikes over the stream's steps.
      stream: the :class:`XORStream` that produced them.

    Returns:
      ``(accuracy, per_kind)``; ``per_kind`` ``[4]`` for kinds ref, ref+A, ref+B, ref+A+B
      (NaN for a kind absent from the stream).
    """
    s = np.asarray(spikes)
    if s.shape != stream.code.shape:
        raise ValueError(f"spikes must have shape {stream.code.shape} [T, 2], got {s.shape}")
    # the trainer's window outcome (ssjax.metrics), one entry per pattern in stream order
    ok = np.asarray(window_correct(s, stream.code)) > 0
    per_kind = np.array(
        [ok[stream.kinds == k].mean() if np.any(stream.kinds == k) else np.nan for k in range(4)]
    )
    return float(ok.mean()), per_kind


def task_spec(n_in: int, dt: float) -> XORSpec:
    """The XORSpec of ``task.n_in`` inputs: A and B get ``n_in // 3`` each, ref the rest."""
    third = n_in // 3
    return XORSpec(n_ref=n_in - 2 * third, n_a=third, n_b=third, dt=dt)


def _build(task, dt: float, dtype, data=None) -> tuple[EventPattern, DensePattern]:
    """The frozen training stream: inputs ``[T, n_in]`` 0/1 as events, the window code
    ``[T, 2]`` kept as int8 and served in ``dtype``."""
    key = jax.random.PRNGKey(task.input_seed)
    stream = xor_stream(key, task_spec(task.n_in, dt), task.n_patterns)
    return EventPattern.from_dense(stream.inputs, dtype=dtype), DensePattern(stream.code, dtype)


def _heldout(task, dt: float, dtype, data=None) -> tuple[np.ndarray, np.ndarray]:
    """Held-out stream ``(inputs [T, n_in], code [T, 2])``: ``task.n_heldout`` patterns of each
    of the 4 kinds with the training stream's stimulus timing (the task) but a new order, new
    gaps and new background noise (drawn from ``fold_in(key, 1)``): a network that memorised the
    frozen training stream's noise context does not score on it."""
    key = jax.random.PRNGKey(task.input_seed)
    spec = task_spec(task.n_in, dt)
    timing = stream_timing(key, spec)  # the training stream's patterns
    stream = xor_stream(jax.random.fold_in(key, 1), spec, 4 * task.n_heldout, timing)
    return np.asarray(stream.inputs, dtype), np.asarray(stream.code, dtype)


@dataclasses.dataclass(frozen=True)
class XorParams:
    """The ``task`` keys of ``task.kind: xor``."""

    SCOPE: ClassVar[str] = "task"

    n_in: int = borrow(TaskCommon, "n_in")
    n_out: int = borrow(TaskCommon, "n_out")
    n_patterns: int = param(64, int_ge(1), doc="patterns in the frozen training stream")
    n_heldout: int = borrow(TaskCommon, "n_heldout")
    input_seed: int = borrow(TaskCommon, "input_seed")

    def __post_init__(self):
        check_fields(self)


register(
    TaskKind(
        name="xor",
        params=XorParams,
        checks=(
            ("task.n_out", lambda v, c: v == 2, "2 for task.kind xor"),
            ("task.n_in", lambda v, c: v >= 3, ">= 3 for task.kind xor"),
        ),
        build=_build,
        window=True,
        heldout=_heldout,
    )
)
