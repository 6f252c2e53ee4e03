"""Random-manifold (randman) spike-latency classification task, generated from a JAX key.

Each class is a smooth random D-dimensional manifold embedded in M input units. For unit i,
intrinsic dimension d and frequency k < F::

    f_{i,d}(x) = sum_k a_{idk} s_k sin(2 pi (k x c_{idk} + phi_{idk})),   s_k = 1/((k+1)^alpha + 1)
    y_i(x)     = prod_d f_{i,d}(x_d),                                     x ~ U([0, 1]^D)

with amplitude a, frequency scale c and phase phi uniform in [0, 1) and a_{id0} = 0 (the k = 0 term
would only add a constant offset). Each unit's value is min-max normalised to u in [0, 1] and turned
into the latency of its single spike, so only relative spike timing carries the class.

``task.kind: randman`` (registered here, :mod:`ssjax.tasks.registry`) trains on a frozen stream of
``task.n_out`` classes x ``task.n_samples`` samples, each followed by ``task.gap`` of silence, and
scores a held-out stream after training (:func:`_randman_stream`, :func:`_heldout`).

Reference: Zenke & Vogels (2021), "The remarkable robustness of surrogate gradient learning for
instilling complex function in spiking neural networks", Neural Computation 33(4):899-925
(github.com/fzenke/randman); SUPERSPIKE.md section 4.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ssjax.params import Check, borrow, check_fields, int_ge, multiple_of, param
from ssjax.pattern import DensePattern, EventPattern
from ssjax.tasks.registry import TaskCommon, TaskKind, register

__all__ = [
    "RANDMAN_TAIL",
    "Randman",
    "eval_randman",
    "make_randman",
    "manifold_spike_times",
    "randman_dataset",
    "randman_heldout",
    "spike_times_to_raster",
    "train_test_split",
]


class Randman(NamedTuple):
    """Fixed random functions of one class manifold; each leaf has shape [M, D, F].

    A leading class axis ([C, M, D, F]) stacks several manifolds (as ``jax.vmap`` of
    ``make_randman`` returns them). ``amp`` already includes the spectrum ``s_k``.
    """

    amp: jax.Array  # a_{idk} * s_k (dimensionless)
    freq: jax.Array  # frequency scale c_{idk} in [0, 1)
    phase: jax.Array  # phi_{idk} in [0, 1), in cycles


def spectrum(n_freq: int, alpha: float = 2.0) -> jax.Array:
    """Amplitude envelope s_k = 1 / ((k + 1)^alpha + 1), k = 0..F-1; larger alpha, smoother."""
    k = jnp.arange(n_freq, dtype=jnp.float32)
    return 1.0 / ((k + 1.0) ** alpha + 1.0)


def make_randman(key, n_units: int, dim: int, n_freq: int = 32, alpha: float = 2.0) -> Randman:
    """Draw one manifold: amplitude, frequency scale and phase ~ U[0, 1), each [M, D, F].

    The stored ``amp`` is a_{idk} s_k with a_{id0} = 0. Jit/vmap friendly in ``key``.
    """
    k_amp, k_freq, k_phase = jax.random.split(key, 3)
    shape = (n_units, dim, n_freq)
    amp = jax.random.uniform(k_amp, shape) * spectrum(n_freq, alpha)
    amp = amp.at[..., 0].set(0.0)  # k = 0 is a constant offset, not part of the shape
    return Randman(amp, jax.random.uniform(k_freq, shape), jax.random.uniform(k_phase, shape))


def eval_randman(rm: Randman, x: jax.Array) -> jax.Array:
    """Evaluate the manifold: x [S, D] in [0, 1]^D -> y [S, M], y_i = prod_d f_{i,d}(x_d)."""
    k = jnp.arange(rm.amp.shape[-1], dtype=x.dtype)
    # [S, 1, D, 1] against [M, D, F] -> [S, M, D, F]; XLA fuses the sin into the k-sum under jit
    arg = k * x[:, None, :, None] * rm.freq + rm.phase
    f = jnp.sum(rm.amp * jnp.sin(2.0 * jnp.pi * arg), axis=-1)  # [S, M, D]
    return jnp.prod(f, axis=-1)


def _grid(value: float, dt: float, name: str) -> int:
    """Number of dt steps in ``value`` seconds; value must be a multiple of dt."""
    n = int(round(value / dt))
    if abs(n * dt - value) > 1e-6 * dt + 1e-12:
        raise ValueError(f"{name}={value} s must be a multiple of dt={dt} s")
    return n


def _n_bins(duration: float, dt: float) -> int:
    """Steps of a sample's ``duration`` (a multiple of dt, at least one step)."""
    n_bins = _grid(duration, dt, "duration")
    if n_bins < 1:
        raise ValueError(f"duration={duration} s must span at least one step dt={dt} s")
    return n_bins


def _values(k_x, manifolds: Randman, n_samples: int) -> jax.Array:
    """``n_samples`` uniform points per class mapped through its manifold: ``[C * n, M]``."""
    n_classes, _, dim, _ = manifolds.amp.shape
    x = jax.random.uniform(k_x, (n_classes, n_samples, dim))
    return jax.vmap(eval_randman)(manifolds, x).reshape(n_classes * n_samples, -1)


def _to_bins(y: jax.Array, lo: jax.Array, hi: jax.Array, n_bins: int) -> jax.Array:
    """Values -> time bins by the per-unit affine map that sends ``lo`` to 0 and ``hi`` to the
    last bin; a constant unit (zero range) maps to bin 0 instead of dividing by zero."""
    u = (y - lo) / jnp.where(hi > lo, hi - lo, 1.0)
    # Round onto the grid so the min lands on the first and the max on the last of n_bins steps:
    # times are exact multiples of dt, and rasterising them loses nothing.
    return jnp.clip(jnp.round(u * (n_bins - 1)), 0, n_bins - 1).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("n_samples", "n_bins"))
def _latency_bins(key, manifolds: Randman, n_samples: int, n_bins: int):
    n_classes = manifolds.amp.shape[0]
    k_x, k_perm = jax.random.split(key)
    y = _values(k_x, manifolds, n_samples)  # [N, M]
    # Global (whole dataset) min-max per unit, unlike the reference, which normalises each class
    # separately: one affine map per unit for all classes keeps the time code a fixed function
    # of the unit's value, so a class's offset or range is itself information, as it would be for
    # a real sensor.
    bins = _to_bins(y, y.min(axis=0), y.max(axis=0), n_bins)
    labels = jnp.repeat(jnp.arange(n_classes, dtype=jnp.int32), n_samples)
    perm = jax.random.permutation(k_perm, n_classes * n_samples)
    return bins[perm], labels[perm]


def manifold_spike_times(
    key,
    manifolds: Randman,
    *,
    n_samples: int,
    duration: float = 0.05,
    t_offset: float = 0.005,
    dt: float = 1e-4,
) -> tuple[np.ndarray, np.ndarray]:
    """Spike latencies for given stacked manifolds ([C, M, D, F]); see ``randman_dataset``.

    Split out so callers can pass chosen manifolds (e.g. two copies of one, a negative control).
    """
    n_bins = _n_bins(duration, dt)
    n_off = _grid(t_offset, dt, "t_offset")
    bins, labels = _latency_bins(key, manifolds, n_samples, n_bins)
    times = ((np.asarray(bins, np.int64) + n_off) * dt).astype(np.float32)
    return times, np.asarray(labels, np.int32)


def randman_dataset(
    key,
    *,
    n_classes: int,
    n_units: int,
    dim: int,
    n_samples: int,
    duration: float = 0.05,
    t_offset: float = 0.005,
    alpha: float = 2.0,
    dt: float = 1e-4,
    n_freq: int = 32,
) -> tuple[np.ndarray, np.ndarray]:
    """Randman classification set: ``n_samples`` per class, every unit fires once per sample.

    Class c has its own manifold; x ~ U([0, 1]^D); each unit's values y are min-max normalised over
    all N = n_classes * n_samples samples (global, not per class as in the reference) to u in
    [0, 1], and the spike time is t = t_offset + dt * round(u * (n_bins - 1)) with
    n_bins = duration / dt, i.e. t in [t_offset, t_offset + duration) on the dt grid. The 5 ms
    default offset keeps the earliest spikes off step 0, whose handling differs between simulators.

    Args: key: jax PRNG key (manifolds and samples/shuffle use independent subkeys); duration,
      t_offset, dt: seconds, duration and t_offset multiples of dt; alpha, n_freq: spectrum.
    Returns: times [N, M] float32 seconds and labels [N] int32 in 0..n_classes-1, shuffled.
    """
    manifolds, k_data = _manifolds(key, n_classes, n_units, dim, n_freq, alpha)
    return manifold_spike_times(
        k_data, manifolds, n_samples=n_samples, duration=duration, t_offset=t_offset, dt=dt
    )


@functools.partial(jax.jit, static_argnames=("n_samples", "n_draw", "n_bins"))
def _heldout_bins(k_data, manifolds: Randman, n_samples: int, n_draw: int, n_bins: int):
    """Training bins [C * n_samples, M] (as _latency_bins, unshuffled) and ``n_draw`` candidate
    held-out bins per class [C, n_draw, M] on the training set's time code."""
    n_classes = manifolds.amp.shape[0]
    y = _values(jax.random.split(k_data)[0], manifolds, n_samples)  # the training draw
    lo, hi = y.min(axis=0), y.max(axis=0)
    # fold_in gives a key independent of every split of k_data (the training draws)
    yh = _values(jax.random.fold_in(k_data, 1), manifolds, n_draw)
    return _to_bins(y, lo, hi, n_bins), _to_bins(yh, lo, hi, n_bins).reshape(n_classes, n_draw, -1)


def _manifolds(key, n_classes, n_units, dim, n_freq, alpha) -> tuple[Randman, jax.Array]:
    """The classes' manifolds (stacked, ``[C, M, D, F]``) and the key left for the samples."""
    k_man, k_data = jax.random.split(key)
    make = functools.partial(make_randman, n_units=n_units, dim=dim, n_freq=n_freq, alpha=alpha)
    return jax.vmap(make)(jax.random.split(k_man, n_classes)), k_data


def randman_heldout(
    key,
    *,
    n_classes: int,
    n_units: int,
    dim: int,
    n_samples: int,
    n_heldout: int,
    duration: float = 0.05,
    t_offset: float = 0.005,
    alpha: float = 2.0,
    dt: float = 1e-4,
    n_freq: int = 32,
) -> tuple[np.ndarray, np.ndarray]:
    """Held-out samples of the manifolds of ``randman_dataset(key, ...)`` (same arguments).

    The manifolds are those of the training set; the coordinates x are new draws from a key
    independent of the training draws, ``n_heldout`` per class. Spike times use the *training*
    set's per-unit min-max (``n_samples`` per class, as ``randman_dataset``), so that a unit's
    value maps to the same time in both sets; a held-out value outside the training range is
    clipped to the first or last step. A draw whose spike pattern equals a training sample's
    (possible on the dt grid when two x lie close on a 1-D manifold) is skipped, so that no
    held-out pattern was seen in training; patterns one step away remain (they are new).
    Returns times [C * n_heldout, M] float32 s and labels [C * n_heldout] int32, shuffled.
    """
    n_bins = _n_bins(duration, dt)
    if n_heldout < 1:
        raise ValueError(f"n_heldout must be >= 1, got {n_heldout}")
    n_off = _grid(t_offset, dt, "t_offset")
    manifolds, k_data = _manifolds(key, n_classes, n_units, dim, n_freq, alpha)
    n_draw = 2 * n_heldout + 8  # spare draws for the skipped duplicates
    train, cand = _heldout_bins(k_data, manifolds, n_samples, n_draw, n_bins)
    train, cand = np.asarray(train), np.asarray(cand)
    seen = {row.tobytes() for row in train}
    bins = []
    for c in range(n_classes):
        new = [row for row in cand[c] if row.tobytes() not in seen][:n_heldout]
        if len(new) < n_heldout:
            raise ValueError(
                f"class {c}: only {len(new)} of {n_draw} held-out draws differ from the "
                f"training samples (n_heldout={n_heldout}); the manifold is too coarse on dt"
            )
        bins += new
    labels = np.repeat(np.arange(n_classes, dtype=np.int32), n_heldout)
    perm = np.asarray(jax.random.permutation(jax.random.fold_in(k_data, 2), len(labels)))
    times = ((np.stack(bins)[perm].astype(np.int64) + n_off) * dt).astype(np.float32)
    return times, labels[perm]


def spike_times_to_raster(times: np.ndarray, dt: float, n_steps: int) -> np.ndarray:
    """Single-spike times [N, M] (s) -> time-major rasters [N, T, M] uint8, 1 at round(t / dt).

    ``np.rint`` (as in ``raster.events_to_raster``) puts grid times back into their own bin.
    Raises ValueError if a spike falls outside [0, n_steps).
    """
    times = np.asarray(times)
    bins = np.rint(times.astype(np.float64) / dt).astype(np.int64)
    if bins.size and (bins.min() < 0 or bins.max() >= n_steps):
        raise ValueError(f"spike bins span [{bins.min()}, {bins.max()}], outside [0, {n_steps})")
    n, m = times.shape
    raster = np.zeros((n, n_steps, m), np.uint8)
    raster[np.arange(n)[:, None], bins, np.arange(m)[None, :]] = 1
    return raster


def train_test_split(times, labels, key, test_fraction: float = 0.2):
    """Stratified split: round(test_fraction * n_c) random samples of each class c go to test.

    Returns (times_train, labels_train, times_test, labels_test), each part shuffled with its own
    subkey so batches mix classes. times: [N, ...]; labels: [N] integer class ids.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    times, labels = np.asarray(times), np.asarray(labels)
    k_cls, k_train, k_test = jax.random.split(key, 3)
    train, test = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[np.asarray(jax.random.permutation(jax.random.fold_in(k_cls, int(c)), idx.size))]
        n_test = int(round(test_fraction * idx.size))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    train = np.concatenate(train)[np.asarray(jax.random.permutation(k_train, sum(map(len, train))))]
    test = np.concatenate(test)[np.asarray(jax.random.permutation(k_test, sum(map(len, test))))]
    return times[train], labels[train], times[test], labels[test]


# ------------------------------------------------------------------------ task.kind: randman

# A sample's window is its randman_duration plus this response tail (s), as the 15 ms after the
# XOR stimulus (SUPERSPIKE.md section 3); task.gap must be at least as long
# (RandmanParams), so that a window ends before the next sample starts and the last one ends
# with the stream.
RANDMAN_TAIL = 0.015


def _gap_ok(v, c) -> bool:
    dt = c.neuron.dt
    return v >= RANDMAN_TAIL - 1e-12 and abs(v / dt - round(v / dt)) <= 1e-6


@dataclasses.dataclass(frozen=True)
class RandmanParams:
    """The ``task`` keys of ``task.kind: randman``."""

    SCOPE: ClassVar[str] = "task"

    n_in: int = borrow(TaskCommon, "n_in")
    n_out: int = borrow(TaskCommon, "n_out")
    randman_dim: int = param(1, int_ge(1), doc="intrinsic manifold dimension D")
    n_samples: int = param(64, int_ge(1), doc="training samples per class")
    randman_duration: float = param(
        0.05,
        multiple_of("neuron.dt", strict=True),
        doc="each unit fires once within it per sample (s)",
    )
    gap: float = param(
        0.05,
        Check(
            _gap_ok,
            lambda c: (
                f">= {RANDMAN_TAIL} s (the window's response tail) and a multiple of "
                f"neuron.dt = {c.neuron.dt} s"
            ),
            ("neuron.dt",),
        ),
        doc="silence after each sample (s)",
    )
    n_heldout: int = borrow(TaskCommon, "n_heldout")
    input_seed: int = borrow(TaskCommon, "input_seed")

    def __post_init__(self):
        check_fields(self)


def _randman_args(task, dt: float) -> dict:
    return dict(
        n_classes=task.n_out,
        n_units=task.n_in,
        dim=task.randman_dim,
        n_samples=task.n_samples,
        duration=task.randman_duration,
        t_offset=0.0,
        dt=dt,
    )


def _randman_layout(task, dt: float, times, labels) -> tuple[np.ndarray, np.ndarray]:
    """Samples one after another: ``(inputs [T, n_in] 0/1, code [T, n_out] int8)``."""
    S, G = int(round(task.randman_duration / dt)), int(round(task.gap / dt))
    n = len(labels)
    rasters = spike_times_to_raster(times, dt, S)  # [N, S, n_in]
    inputs = np.zeros((n, S + G, task.n_in), np.float32)
    inputs[:, :S] = rasters
    return inputs.reshape(-1, task.n_in), _randman_code(task, dt, labels)


def _randman_code(task, dt: float, labels) -> np.ndarray:
    """The window code ``[T, n_out]`` int8 of samples with ``labels``, laid out as
    :func:`_randman_layout`."""
    S, G = int(round(task.randman_duration / dt)), int(round(task.gap / dt))
    W = S + int(round(RANDMAN_TAIL / dt))  # <= S + G: task.gap >= RANDMAN_TAIL
    n = len(labels)
    code = np.zeros((n, S + G, task.n_out), np.int8)
    code[:, :W] = -1
    code[np.arange(n), :W, labels] = 1
    code[:, W - 1] *= 2
    return code.reshape(-1, task.n_out)


def _randman_stream(task, dt: float, key) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frozen randman stream: ``(inputs [T, n_in] 0/1, code [T, n_out] int8, labels [N])``.

    ``N = n_out * n_samples`` samples (randman_dataset, shuffled), each ``randman_duration`` long
    (every unit fires once; spike times from 0, i.e. ``t_offset = 0``: the gap before a sample
    keeps its spikes off step 0 of the replayed stream) and followed by ``task.gap`` of silence.
    Window annotation as in ssjax.tasks.xor: from the sample's onset for ``randman_duration +
    RANDMAN_TAIL`` (15 ms, the XOR response tail), +1 on the label's output, -1 on the others,
    +2/-2 at the window's last step, 0 outside. ``T = N (randman_duration + gap) / dt``.
    """
    times, labels = randman_dataset(key, **_randman_args(task, dt))
    return (*_randman_layout(task, dt, times, labels), labels)


def _build(task, dt: float, dtype, data=None) -> tuple[EventPattern, DensePattern]:
    """The frozen training stream: inputs ``[T, n_in]`` as events (one spike per unit and
    sample, at its latency), the window code ``[T, n_out]`` kept as int8, served in ``dtype``;
    the same values as :func:`_randman_stream`'s arrays (tested)."""
    times, labels = randman_dataset(jax.random.PRNGKey(task.input_seed), **_randman_args(task, dt))
    S, G = int(round(task.randman_duration / dt)), int(round(task.gap / dt))
    bins = np.rint(np.asarray(times).astype(np.float64) / dt).astype(np.int64)  # [N, M]
    if bins.size and (bins.min() < 0 or bins.max() >= S):
        raise ValueError(f"spike bins span [{bins.min()}, {bins.max()}], outside [0, {S})")
    n, m = bins.shape
    steps = (np.arange(n)[:, None] * (S + G) + bins).reshape(-1)
    ids = np.broadcast_to(np.arange(m), (n, m)).reshape(-1)
    inputs = EventPattern(steps, ids, n * (S + G), task.n_in, dtype=dtype)
    return inputs, DensePattern(_randman_code(task, dt, labels), dtype)


def _heldout(task, dt: float, dtype, data=None) -> tuple[np.ndarray, np.ndarray]:
    """Held-out stream ``(inputs [T, n_in], code [T, n_out])`` in ``dtype``: ``task.n_heldout``
    new samples per class of the training stream's manifolds (:func:`randman_heldout`: same
    manifolds, new coordinates, the training set's time code), laid out as the training stream
    and preceded by one ``task.gap`` of silence, so that, as in training, every sample follows
    a gap."""
    key = jax.random.PRNGKey(task.input_seed)
    times, labels = randman_heldout(key, n_heldout=task.n_heldout, **_randman_args(task, dt))
    inputs, code = _randman_layout(task, dt, times, labels)
    G = int(round(task.gap / dt))
    inputs = np.concatenate([np.zeros((G, task.n_in), inputs.dtype), inputs])
    code = np.concatenate([np.zeros((G, task.n_out), code.dtype), code])
    return inputs.astype(dtype), code.astype(dtype)


register(
    TaskKind(
        name="randman",
        params=RandmanParams,
        checks=(
            (
                "task.n_out",
                lambda v, c: v >= 2,
                ">= 2 for task.kind randman (one output per class)",
            ),
        ),
        build=_build,
        window=True,
        heldout=_heldout,
    )
)
