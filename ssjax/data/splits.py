"""Train/validation/test splits of labelled trials, deterministic from a jax.random key.

:func:`split_indices` cuts the trials into parts of the given fractions. Stratified (the
default), each class ``c`` with ``n_c`` trials is permuted by its own key
(``fold_in(key, c)``) and cut at ``rint(n_c * cumsum(fractions))``, so every part holds each
class in the given proportion (to within one trial per class); otherwise one permutation of all
trials is cut at ``rint(n * cumsum(fractions))``. Indices within a part are sorted (an epoch
shuffles them anyway, :func:`ssjax.data.batches.epoch_indices`).

A data set shipped with its own split (SHD and SSC: one file per part) is loaded part by part
instead (:func:`ssjax.data.hdf5.load_hdf5` on each file, with the same ``duration``).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np

from ssjax._types import PRNGKey
from ssjax.data.trials import TrialSet

__all__ = ["split_indices", "split_trials"]


def _cuts(n: int, fractions: np.ndarray) -> np.ndarray:
    edges = np.rint(n * np.cumsum(fractions)).astype(np.int64)
    edges[-1] = n  # the fractions sum to 1 up to float error: the last part takes the rest
    return np.concatenate([[0], edges])


def split_indices(
    labels, key: PRNGKey, fractions: Sequence[float], *, stratify: bool = True
) -> tuple[np.ndarray, ...]:
    """Disjoint sorted index arrays (int64), one per fraction, covering all ``[n]`` labels.

    ``fractions`` are non-negative and sum to 1 (e.g. ``(0.8, 0.1, 0.1)``); ``labels`` ``[n]``
    integer classes. Same key, same split (module docstring for the cut).
    """
    f = np.asarray(fractions, np.float64).reshape(-1)
    if f.size < 1 or np.any(f < 0) or not np.isclose(f.sum(), 1.0, rtol=0, atol=1e-9):
        raise ValueError(f"fractions must be >= 0 and sum to 1, got {tuple(fractions)}")
    labels = np.asarray(labels).reshape(-1)
    parts: list[list[np.ndarray]] = [[] for _ in f]
    groups = (
        [(int(c), np.flatnonzero(labels == c)) for c in np.unique(labels)]
        if stratify
        else [(0, np.arange(labels.size))]
    )
    for c, members in groups:
        k = jax.random.fold_in(key, c) if stratify else key
        perm = members[np.asarray(jax.random.permutation(k, members.size))]
        cuts = _cuts(members.size, f)
        for p in range(f.size):
            parts[p].append(perm[cuts[p] : cuts[p + 1]])
    return tuple(np.sort(np.concatenate(p)).astype(np.int64) for p in parts)


def split_trials(
    trials: TrialSet, key: PRNGKey, fractions: Sequence[float], *, stratify: bool = True
) -> tuple[TrialSet, ...]:
    """``trials`` cut into one :class:`TrialSet` per fraction (:func:`split_indices` on its
    labels, then :meth:`TrialSet.subset`); each part keeps ``n_classes``, ``n_steps``, ``dt``."""
    return tuple(
        trials.subset(i)
        for i in split_indices(np.asarray(trials.labels), key, fractions, stratify=stratify)
    )
