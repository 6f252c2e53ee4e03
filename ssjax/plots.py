"""Pictures: spike rasters over trials (as in the paper's Fig. 2c), learning curves, the
overview of one reproduced figure (:func:`figure_overview`, used by ``ssjax reproduce``), and the
per-layer alignment of rule updates (:func:`plot_alignment`, :func:`format_table`, used by
``ssjax compare``).

Every function writes a PNG and returns its path. Importing this module leaves the matplotlib
backend alone: the ``ssjax`` command selects the non-interactive Agg backend (unless
``MPLBACKEND`` is set); a library user picks their own.

Reference: Zenke & Ganguli (2018), Fig. 2.
"""

from __future__ import annotations

import os
import warnings

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np


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


# ------------------------------------------------------------------ one figure of the paper


def _quartiles(v):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows give NaN, not an error
        return np.nanpercentile(np.asarray(v, np.float64), [25, 50, 75], axis=-1)


def _spike_panel(ax, spikes, dt, *, color="k", marker="|", size=12, label=None):
    t, n = np.nonzero(np.asarray(spikes))
    ax.scatter(t * dt, n, s=size, c=color, marker=marker, linewidths=0.8, label=label)


def figure_overview(
    path,
    *,
    title,
    curves,
    finals,
    ylabel,
    bar_label=None,
    threshold=None,
    log=True,
    raster=None,
    picture=None,
) -> str:
    """One reproduced figure: learning curves, final values per condition, and a raster.

    Args:
      curves: ``[(label, x [n] seconds, values [n, S])]`` per condition: median and quartile band
        over the S seeds against simulated time.
      finals: ``[(label, values [S])]``: bar at the median, one dot per seed.
      ylabel: what the curves show; bar_label: what the bars show (default ``final <ylabel>``).
      threshold: success threshold of the bars' values, a dashed line there (None: none).
      log: symlog y axis (distances); False for accuracies.
      raster: ``(output [T, N], target [T, N], dt, title)``: output (black ticks) over target
        (red circles) of one seed, one row per output neuron; title names both.
      picture: ``(output [T, N], target [T, N], dt, title)``: target and output side by side as
        pictures (neuron id upwards), for tasks whose target draws an image.
    """
    heights = [1.0]
    if raster is not None:  # a row of ticks per output neuron
        heights.append(min(1.2, 0.35 + 0.03 * np.asarray(raster[0]).shape[1]))
    if picture is not None:
        heights.append(1.2)
    fig = plt.figure(figsize=(13, 4.2 * sum(heights)))
    grid = fig.add_gridspec(len(heights), 6, height_ratios=heights)
    ax_c, ax_b = fig.add_subplot(grid[0, :4]), fig.add_subplot(grid[0, 4:])
    colors = plt.get_cmap("tab10" if len(curves) <= 10 else "tab20")
    for i, (label, x, v) in enumerate(curves):
        if len(x) == 0:
            continue
        q1, med, q3 = _quartiles(np.asarray(v, np.float64).reshape(len(x), -1))
        ax_c.fill_between(x, q1, q3, color=colors(i), alpha=0.2, lw=0)
        marker = "o" if len(x) < 5 else None  # a curve of one period is a point
        ax_c.plot(x, med, color=colors(i), lw=1.3, marker=marker, label=label)
    ax_c.set_xlabel("simulated time (s)")
    ax_c.set_ylabel(ylabel + " (median, quartiles)")
    if ax_c.lines:
        ax_c.legend(fontsize="x-small", ncol=1 + len(curves) // 8, loc="best")
    rng = np.random.default_rng(0)
    for i, (_, v) in enumerate(finals):
        v = np.asarray(v, np.float64)
        ax_b.bar(i, _quartiles(v)[1], color=colors(i), alpha=0.5)
        ax_b.scatter(i + rng.uniform(-0.2, 0.2, len(v)), v, s=10, c="k", zorder=3)
    ax_b.set_xticks(range(len(finals)), [f[0] for f in finals], rotation=60, ha="right")
    ax_b.set_ylabel(bar_label or "final " + ylabel)
    if threshold is not None:
        ax_b.axhline(threshold, color="tab:gray", ls="--", lw=0.8)
    for ax in (ax_c, ax_b):
        lo, hi = ax.get_ylim()
        if threshold is not None:
            hi = max(hi, 1.2 * threshold)
        if log and hi > 10 * max(lo, 1e-2):  # symlog only when the values span a decade
            ax.set_yscale("symlog", linthresh=1e-2)
        ax.set_ylim(max(lo, 0.0), hi)  # distances and accuracies are >= 0
    row = 1
    if raster is not None:
        out, tgt, dt, sub = raster
        ax = fig.add_subplot(grid[row, :])
        _spike_panel(ax, tgt, dt, color="none", marker="o", size=30)
        ax.collections[-1].set_edgecolors("tab:red")  # type: ignore[attr-defined]  # stubs lack it
        _spike_panel(ax, out, dt, size=40, label="output")
        ax.set_xlim(0, len(out) * dt)
        ax.set_ylim(-0.5, np.asarray(out).shape[1] - 0.5)
        n_out = np.asarray(out).shape[1]
        if n_out <= 10:
            ax.set_yticks(range(n_out))
        else:
            ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_xlabel("time in period (s)")
        ax.set_ylabel("output neuron")
        ax.set_title(sub, fontsize="medium")
        row += 1
    if picture is not None:
        out, tgt, dt, sub = picture
        for col, (img, name) in enumerate(((tgt, "target"), (out, "output, " + sub))):
            ax = fig.add_subplot(grid[row, 3 * col : 3 * col + 3])
            _spike_panel(ax, img, dt, marker="s", size=2)
            ax.set_xlim(0, len(img) * dt)
            ax.set_ylim(-0.5, np.asarray(img).shape[1] - 0.5)
            ax.set_xlabel("time in period (s)")
            ax.set_ylabel("neuron")
            ax.set_title(name, fontsize="medium")
    fig.suptitle(title)
    return _save(fig, path)


# ------------------------------------------------------- alignment of rules (ssjax compare)


def _layer_names(results, layer_names):
    n_layers = len(next(iter(results.values())).cosine)
    if layer_names is None:
        return [f"W[{l}]" for l in range(n_layers)]
    if len(layer_names) != n_layers:
        raise ValueError(f"layer_names needs {n_layers} entries, got {len(layer_names)}")
    return list(layer_names)


def format_table(results, layer_names=None) -> str:
    """Plain-text table: one row per pair and layer with cosine, norm ratio, sign agreement.

    ``results``: ``{(rule_a, rule_b): Alignment}`` as from
    :func:`ssjax.analysis.alignment.compare_rules`; ``layer_names`` default ``W[0]``, ``W[1]``...
    """
    names = _layer_names(results, layer_names)
    pairs = [f"{a} vs {b}" for a, b in results]
    wp, wl = max(len(p) for p in pairs + ["pair"]), max(len(n) for n in names + ["layer"])
    head = f"{'pair':<{wp}}  {'layer':<{wl}}  {'cosine':>8}  {'norm ratio':>10}  {'sign agr.':>9}"
    lines = [head, "-" * len(head)]
    for pair, res in zip(pairs, results.values(), strict=True):
        cos, ratio, sign = (np.asarray(x) for x in res)
        for l, name in enumerate(names):
            lines.append(
                f"{pair:<{wp}}  {name:<{wl}}  {cos[l]:>+8.4f}  {ratio[l]:>10.4g}  {sign[l]:>9.3f}"
            )
    return "\n".join(lines)


def plot_alignment(results, path, layer_names=None) -> str:
    """Grouped bar chart of the cosine per pair (groups) and layer (bars); writes a PNG.

    ``results`` and ``layer_names`` as for :func:`format_table`.
    """
    names = _layer_names(results, layer_names)
    cos = np.array([np.asarray(r.cosine) for r in results.values()])  # [pairs, layers]
    n_pairs, n_layers = cos.shape
    width = 0.8 / n_layers
    x = np.arange(n_pairs)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * n_pairs + 2.0), 4.5))
    for l, name in enumerate(names):
        ax.bar(x + (l - (n_layers - 1) / 2) * width, cos[:, l], width, label=name)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xticks(x)
    ax.set_xticklabels([f"{a}\nvs {b}" for a, b in results], rotation=60, ha="right", fontsize=7)
    ax.set_ylim(-1.05, 1.05)
    ax.set_ylabel("cosine similarity")
    ax.set_title("update alignment per layer (same state and block)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def _save(fig, path) -> str:
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
