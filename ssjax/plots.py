"""Pictures: spike rasters over trials (as in the paper's Fig. 2c) and learning curves.

Matplotlib with the non-interactive Agg backend; every function writes a PNG and returns its path.

Reference: Zenke & Ganguli (2018), Fig. 2.
"""

from __future__ import annotations

import os
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def trial_raster(spikes, dt: float, path, *, target=None, trial_ids=None, title=None) -> str:
    """Raster of one neuron's spikes over trials, with the target times as lines.

    Args:
      spikes: ``[n_trials, T]`` spike counts of one neuron, one row per pattern period.
      dt: step (s). target: ``[T]`` target spike counts, drawn as vertical lines.
      trial_ids: labels of the rows (e.g. the period index); defaults to ``0..n_trials-1``.
    """
    spikes = np.asarray(spikes)
    trial_ids = np.arange(len(spikes)) if trial_ids is None else np.asarray(trial_ids)
    fig, ax = plt.subplots(figsize=(6, 4))
    if target is not None:
        for t in np.nonzero(np.asarray(target))[0]:
            ax.axvline(t * dt * 1e3, color="tab:red", lw=1, alpha=0.5)
    rows, cols = np.nonzero(spikes)
    ax.scatter(cols * dt * 1e3, trial_ids[rows], s=4, c="k", marker="|")
    ax.set_xlabel("time in period (ms)")
    ax.set_ylabel("trial")
    ax.set_xlim(0, spikes.shape[1] * dt * 1e3)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def network_raster(record_spikes, dt: float, path, *, target=None, names=None) -> str:
    """Raster of every layer of one simulation, stacked top (input) to bottom (output).

    Args:
      record_spikes: sequence of ``[T, N_l]`` arrays (one sample). target: ``[T, N_out]``.
    """
    layers = [np.asarray(s) for s in record_spikes]
    fig, axes = plt.subplots(len(layers), 1, figsize=(7, 1.2 + 1.3 * len(layers)), sharex=True)
    axes = np.atleast_1d(axes)
    for l, (ax, s) in enumerate(zip(axes, layers, strict=True)):
        t, n = np.nonzero(s)
        ax.scatter(t * dt * 1e3, n, s=3, c="k", marker="|")
        if target is not None and l == len(layers) - 1:
            tt, tn = np.nonzero(np.asarray(target))
            ax.scatter(tt * dt * 1e3, tn, s=30, facecolors="none", edgecolors="tab:red")
        ax.set_ylabel(names[l] if names else f"layer {l}")
        ax.set_ylim(-0.5, s.shape[1] - 0.5)
    axes[-1].set_xlabel("time (ms)")
    return _save(fig, path)


def learning_curve(
    values, path, *, x=None, xlabel="pattern period", ylabel="van Rossum distance", log=True
) -> str:
    """Learning curve; ``values`` ``[n]`` or ``[n, seeds]`` (median and quartile band)."""
    v = np.asarray(values, np.float64)
    x = np.arange(len(v)) if x is None else np.asarray(x)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if v.ndim == 1:
        ax.plot(x, v, lw=1)
    else:
        q1, med, q3 = np.percentile(v, [25, 50, 75], axis=1)
        ax.plot(x, med, lw=1.2, label="median")
        ax.fill_between(x, q1, q3, alpha=0.3, label="quartiles")
        ax.legend()
    if log:
        ax.set_yscale("symlog", linthresh=1e-2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return _save(fig, path)


def output_vs_target(spikes, target, dt: float, path, title=None) -> str:
    """Output raster of one sample over its target: output as black ticks, target as hollow red
    circles, one row per output neuron.

    Args:
      spikes: ``[T, N]`` output spike counts. target: ``[T, N]`` target spike counts. dt: step (s).
    """
    spikes, target = np.asarray(spikes), np.asarray(target)
    n = max(spikes.shape[1], target.shape[1])
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.25 * min(n, 40)))
    tt, tn = np.nonzero(target)
    ax.scatter(tt * dt * 1e3, tn, s=30, facecolors="none", edgecolors="tab:red", label="target")
    t, k = np.nonzero(spikes)
    ax.scatter(t * dt * 1e3, k, s=40, c="k", marker="|", label="output")
    ax.set_xlim(0, max(spikes.shape[0], target.shape[0]) * dt * 1e3)
    ax.set_ylim(-0.5, n - 0.5)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("output neuron")
    ax.legend(loc="upper right", fontsize="small")
    if title:
        ax.set_title(title)
    return _save(fig, path)


def seed_curves(x, values, path, ylabel="value", xlabel="block") -> str:
    """Curves over seeds: median with the quartile band, and thin per-seed lines when there are
    at most 8 seeds. ``values`` ``[n, S]`` at ``x`` ``[n]``; NaN entries (e.g. a diverged seed)
    are left out of the median and quartiles."""
    v = np.asarray(values, np.float64).reshape(len(x), -1)
    x = np.asarray(x)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if v.shape[1] <= 8:
        ax.plot(x, v, lw=0.6, alpha=0.5, color="tab:gray")
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows give NaN, not an error
        q1, med, q3 = np.nanpercentile(v, [25, 50, 75], axis=1)
    ax.fill_between(x, q1, q3, alpha=0.3, color="tab:blue", label="quartiles")
    ax.plot(x, med, lw=1.4, color="tab:blue", label="median")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small")
    return _save(fig, path)


def _save(fig, path) -> str:
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
