"""Random-manifold (randman) classification as labelled trials, from ssjax's randman generator.

Each trial is one sample of :func:`ssjax.tasks.randman.randman_dataset` (the same manifolds,
spike-latency code and key handling as ``task.kind: randman``): every one of the ``n_units``
units fires once, at ``t_offset + dt round(u (S - 1))`` with ``u`` in [0, 1] the unit's
normalised manifold value and ``S = duration / dt``; the trial lasts
``t_offset + duration + tail``, the tail leaving the network time to answer after the last
spike (ssjax's ``RANDMAN_TAIL``, 15 ms).

Default sizes: 10 classes x 1000 samples and smoothness ``alpha = 2``, the reference
generator's classification defaults (fzenke/randman, Zenke & Vogels 2021); 20 units on a 1-D
manifold with 50 ms latencies, ssjax's randman task (``configs/randman.yaml``); ``dt = 0.1``
ms, ssjax's neuron step. :func:`randman_heldout_trials` draws new samples of the same manifolds
with the training set's time code (:func:`ssjax.tasks.randman.randman_heldout`).

Reference: Zenke & Vogels (2021), Neural Computation 33(4):899-925.
"""

from __future__ import annotations

import numpy as np

from ssjax._types import PRNGKey
from ssjax.data.trials import TrialSet
from ssjax.tasks.randman import RANDMAN_TAIL, randman_dataset, randman_heldout

__all__ = ["randman_heldout_trials", "randman_trials"]


def _as_trials(times, labels, n_classes: int, dt: float, n_steps: int) -> TrialSet:
    """Single-spike times ``[n, M]`` (s) -> a TrialSet, unit m of trial i at ``rint(t / dt)``."""
    steps = np.rint(np.asarray(times, np.float64) / dt).astype(np.int64)
    n, m = steps.shape
    units = np.broadcast_to(np.arange(m), (n, m))
    return TrialSet(
        steps.reshape(-1),
        units.reshape(-1),
        np.arange(n + 1) * m,
        labels,
        n_units=m,
        n_steps=n_steps,
        dt=dt,
        n_classes=n_classes,
    )


def _n_steps(t_offset: float, duration: float, tail: float, dt: float) -> int:
    if tail < 0:
        raise ValueError(f"tail must be >= 0 s, got {tail!r}")
    return int(round((t_offset + duration + tail) / dt))


def randman_trials(
    key: PRNGKey,
    *,
    n_classes: int = 10,
    n_units: int = 20,
    dim: int = 1,
    n_samples: int = 1000,
    duration: float = 0.05,
    t_offset: float = 0.005,
    tail: float = RANDMAN_TAIL,
    alpha: float = 2.0,
    dt: float = 1e-4,
    n_freq: int = 32,
) -> TrialSet:
    """``n_classes x n_samples`` randman trials (shuffled), ``n_units`` events each.

    Arguments as :func:`ssjax.tasks.randman.randman_dataset` (seconds; ``duration`` and
    ``t_offset`` multiples of ``dt``), plus ``tail`` (s) of silence ending each trial:
    ``n_steps = (t_offset + duration + tail) / dt``. Memory ``O(n_classes n_samples n_units)``.
    """
    times, labels = randman_dataset(
        key,
        n_classes=n_classes,
        n_units=n_units,
        dim=dim,
        n_samples=n_samples,
        duration=duration,
        t_offset=t_offset,
        alpha=alpha,
        dt=dt,
        n_freq=n_freq,
    )
    return _as_trials(times, labels, n_classes, dt, _n_steps(t_offset, duration, tail, dt))


def randman_heldout_trials(
    key: PRNGKey,
    n_heldout: int,
    *,
    n_classes: int = 10,
    n_units: int = 20,
    dim: int = 1,
    n_samples: int = 1000,
    duration: float = 0.05,
    t_offset: float = 0.005,
    tail: float = RANDMAN_TAIL,
    alpha: float = 2.0,
    dt: float = 1e-4,
    n_freq: int = 32,
) -> TrialSet:
    """``n_heldout`` new trials per class of the manifolds of ``randman_trials(key, ...)`` (the
    same arguments), none equal to a training trial
    (:func:`ssjax.tasks.randman.randman_heldout`)."""
    times, labels = randman_heldout(
        key,
        n_classes=n_classes,
        n_units=n_units,
        dim=dim,
        n_samples=n_samples,
        n_heldout=n_heldout,
        duration=duration,
        t_offset=t_offset,
        alpha=alpha,
        dt=dt,
        n_freq=n_freq,
    )
    return _as_trials(times, labels, n_classes, dt, _n_steps(t_offset, duration, tail, dt))
