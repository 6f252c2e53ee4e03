"""Synthetic spoken-digit-like trials in the SHD layout: class-specific sweeping bands of activity.

The Heidelberg digits (SHD) are cochlear-model spikes: a spoken word drives bands of
neighbouring channels whose centre moves over the word. This generator draws data with that
structure, for tests, notebooks and benchmarks that must run without the real files. Class
``c`` has ``n_bands`` bands, band ``k`` a straight path of its centre from channel ``a_ck`` to
``b_ck`` over the word ``[t0_ck, t1_ck]``; the firing rate of channel ``n`` at time ``t`` is::

    r(t, n) = r_bg + r_max sum_k [t0 <= t' <= t1] exp(-(n - m_k(t'))^2 / (2 width^2)),
    t' = t / stretch,   m_k(t') = a_k + (b_k - a_k)(t' - t0) / (t1 - t0) + shift

with per-trial jitter: a time ``stretch`` ~ U(1 - warp, 1 + warp) (speaking rate) and a channel
``shift`` ~ U(-jitter, jitter) (speaker); spikes are Bernoulli per step of ``dt`` with
probability ``r dt`` (Poisson in the limit). Every draw comes from the key.

Returns times and units per trial, as the SHD file holds them (:func:`ssjax.data.hdf5.write_hdf5`
writes them in that layout; :meth:`ssjax.data.TrialSet.from_times` reads them).

Reference: Cramer et al. (2022), IEEE TNNLS 33(7):2744-2757 (the SHD data and its channels).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ssjax._types import PRNGKey

__all__ = ["synthetic_words"]


def synthetic_words(
    key: PRNGKey,
    *,
    n_classes: int = 20,
    n_per_class: int = 50,
    n_units: int = 700,
    duration: float = 0.5,
    dt: float = 1e-3,
    n_bands: int = 3,
    width: float = 15.0,
    rate_max: float = 60.0,
    rate_bg: float = 1.0,
    warp: float = 0.15,
    jitter: float = 20.0,
    trial_key: PRNGKey | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """``n_classes x n_per_class`` trials (shuffled) of the module's model.

    ``key`` draws the words (each class's bands), ``trial_key`` the trials (jitter, spikes,
    order; derived from ``key`` if None): the same ``key`` with another ``trial_key`` gives new
    utterances of the same words, e.g. a test set. Args are in seconds, Hz and channels.
    Returns ``(times, units, labels)``: per trial the
    spike times (s, float32, on the grid of ``dt``) and channels (int), and ``labels``
    ``[n]`` int. Memory: one trial's ``[T, N]`` rates at a time, then its events.
    """
    if not (n_classes >= 1 and n_per_class >= 1 and n_units >= 1 and n_bands >= 1):
        raise ValueError("n_classes, n_per_class, n_units and n_bands must be >= 1")
    if not (0 < dt < duration and 0 <= warp < 1 and rate_max >= 0 and rate_bg >= 0):
        raise ValueError("need 0 < dt < duration, 0 <= warp < 1 and non-negative rates")
    k_cls, k_default = jax.random.split(key)
    k_trials, k_order = jax.random.split(k_default if trial_key is None else trial_key)
    kc = jax.random.split(k_cls, 3)
    ends = jax.random.uniform(kc[0], (n_classes, n_bands, 2), minval=0.1, maxval=0.9) * n_units
    onsets = jax.random.uniform(kc[1], (n_classes, n_bands), minval=0.05, maxval=0.3) * duration
    lengths = jax.random.uniform(kc[2], (n_classes, n_bands), minval=0.3, maxval=0.6) * duration
    n_steps = int(round(duration / dt))
    t = (jnp.arange(n_steps) * dt)[:, None, None]  # [T, 1, 1]
    ch = jnp.arange(n_units)[None, None, :]  # [1, 1, N]

    @jax.jit
    def trial(k, c):
        k_warp, k_shift, k_spk = jax.random.split(k, 3)
        stretch = 1 + warp * jax.random.uniform(k_warp, minval=-1.0, maxval=1.0)
        shift = jitter * jax.random.uniform(k_shift, minval=-1.0, maxval=1.0)
        t0, t1 = onsets[c][None, :, None], (onsets[c] + lengths[c])[None, :, None]
        a, b = ends[c, :, 0][None, :, None], ends[c, :, 1][None, :, None]
        tw = t / stretch
        on = (tw >= t0) & (tw <= t1)
        centre = a + (b - a) * (tw - t0) / (t1 - t0) + shift
        bump = jnp.where(on, jnp.exp(-((ch - centre) ** 2) / (2 * width**2)), 0.0)
        rate = rate_bg + rate_max * jnp.sum(bump, axis=1)  # [T, N]
        return jax.random.uniform(k_spk, rate.shape) < rate * dt

    labels = np.repeat(np.arange(n_classes), n_per_class)
    labels = labels[np.asarray(jax.random.permutation(k_order, labels.size))]
    keys = jax.random.split(k_trials, labels.size)
    times, units = [], []
    for i, c in enumerate(labels):  # data generation on the host, once; not a training path
        steps, chans = np.nonzero(np.asarray(trial(keys[i], int(c))))
        times.append((steps * dt).astype(np.float32))
        units.append(chans.astype(np.int32))
    return times, units, labels.astype(np.int32)
