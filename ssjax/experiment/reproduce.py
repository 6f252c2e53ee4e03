"""One command per figure: run every condition of a registered figure and summarise them.

``ssjax reproduce FIG [--quick]`` trains every condition of a figure into
``<out>/<fig>[_quick]/<condition>/`` and summarises them in ``<fig>.md`` (a table, one row per
condition), ``<fig>.json`` (the same numbers) and ``<fig>.png`` (learning curves, final values
per seed, and the output of the first condition against its target) in ``<out>/<fig>[_quick]/``.

A condition is a list of ``section.key=value`` overrides on top of the figure's YAML in
``configs/``: a full one (the paper's simulated time and number of runs) and a quick one (all
conditions together in a few minutes on 2 CPU cores); seeds and duration live in those files.
A killed command resumes where it stopped: :func:`ssjax.experiment.runner.train`
continues a condition from its checkpoints, and a condition whose ``summary.json`` was written
for the same config is read back instead of trained again.

Reference: SUPERSPIKE.md section 3 (the experiments); Zenke & Ganguli (2018), Figs. 1-8.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import time
from pathlib import Path
from typing import cast

import numpy as np

from ssjax import plots
from ssjax._types import Array
from ssjax.experiment.config import WINDOW_TASKS, Config, build_task, diff_configs, load_config
from ssjax.experiment.figures import (
    CONFIGS,
    FIGURES,
    Condition,
    Figure,
    Success,
    format_list,
    get_figure,
)
from ssjax.experiment.report import json_safe, seed_stats
from ssjax.experiment.runner import NumericalError, RunError, check_workdir, train
from ssjax.losses import van_rossum_distance

RESULT_FILES = ("config.yaml", "summary.json", "history.json", "final_output.npz")


def condition_configs(
    fig: Figure, *, quick: bool, seeds=None, duration=None, configs=CONFIGS
) -> list[tuple[Condition, Config]]:
    """Every condition's validated Config (figure YAML + overrides + seeds/duration)."""
    extra = []
    if seeds is not None:
        extra.append(f"run.seeds={seeds}")
    if duration is not None:
        extra.append(f"run.duration={float(duration)}")
    path = Path(configs) / fig.config_file(quick)
    return [(c, load_config(path, [*c.overrides, *extra])) for c in fig.conditions_for(quick)]


def figure_dir(out, fig: Figure, quick: bool) -> Path:
    return Path(out) / (f"{fig.name}_quick" if quick else fig.name)


def finished(workdir: Path, cfg: Config) -> bool:
    """True when ``workdir`` holds a completed run (summary written) of exactly ``cfg``."""
    if not all((workdir / f).exists() for f in RESULT_FILES):
        return False
    return not diff_configs(load_config(workdir / "config.yaml"), cfg)


def run_figure(
    name: str,
    *,
    quick: bool = False,
    seeds: int | None = None,
    duration: float | None = None,
    out="runs/reproduce",
    progress: bool = True,
    command: str | None = None,
    configs=CONFIGS,
    log=print,
) -> dict:
    """Train (or resume, or read back) every condition of figure ``name``; write the summary.

    Returns the report written to ``<fig>.json`` (``rows``: one dict per condition) with
    ``files``: the paths of ``<fig>.md``, ``.json`` and ``.png``, and ``failed``: the
    conditions that stopped on non-finite values (their row holds the ``error``; the others
    still run). Raises ConfigError (a bad config or override) or RunError (a condition folder
    holds another config) before training.
    """
    fig = get_figure(name)
    conds = condition_configs(fig, quick=quick, seeds=seeds, duration=duration, configs=configs)
    root = figure_dir(out, fig, quick)
    for c, cfg in conds:
        try:
            check_workdir(cfg, root / c.name, override=False)
        except RunError as e:
            text = str(e).rsplit("\n", 1)[0]  # the diff, without train's --workdir advice
            raise RunError(f"{text}\nuse another --out, or delete that folder") from None
    t0, rows, curves = time.perf_counter(), [], []
    swept = _sweep(fig, conds, root, progress, log)
    silent = {}
    for i, (c, cfg) in enumerate(conds):
        wd = root / c.name
        reused = c.name not in swept and finished(wd, cfg)
        what = (
            "trained in the sweep"
            if c.name in swept
            else "read back"
            if reused
            else f"{cfg.run.seeds} seeds x {cfg.run.duration:g} s"
        )
        log(f"[{i + 1}/{len(conds)}] {fig.name} {c.name}: {what}")
        try:
            if not finished(wd, cfg):
                train(cfg, wd, progress=progress)
        except NumericalError as e:  # a diverging condition is a result, not the end
            log(f"  {c.name} failed: {e}")
            rows.append(_failed_row(fig, c, cfg, wd, str(e)))
            curves.append((np.zeros(0), np.zeros((0, cfg.run.seeds))))
            continue
        if fig.success.relative and cfg.task not in silent:
            silent[cfg.task] = silent_distance(cfg)
        row, curve = _read_condition(fig, c, wd, reused, silent.get(cfg.task))
        rows.append(row)
        curves.append(curve)
    report = {
        "figure": fig.name,
        "title": fig.title,
        "quick": quick,
        "config": _shown(Path(configs) / fig.config_file(quick)),
        "command": command or f"ssjax reproduce {fig.name}" + " --quick" * quick,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "success": dataclasses.asdict(fig.success),
        "wall_seconds": time.perf_counter() - t0,
        "rows": rows,
        "failed": [r["condition"] for r in rows if "error" in r],
    }
    report["files"] = [str(root / f"{fig.name}.{ext}") for ext in ("md", "json", "png")]
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{fig.name}.json").write_text(json.dumps(json_safe(report), indent=2))
    (root / f"{fig.name}.md").write_text(markdown(report))
    _plot(fig, conds, rows, curves, root / f"{fig.name}.png")
    return report


def _shown(path: Path) -> str:
    """``configs/<file>`` for the shipped configs, else the path as given."""
    return f"configs/{path.name}" if path.parent == CONFIGS else str(path)


def silent_distance(cfg: Config) -> float:
    """Van Rossum distance of a silent output to one period of the target, mean over outputs."""
    _, target = build_task(cfg)
    # host arrays, as the jax code accepts (cast: the annotations say jax.Array; no conversion)
    t, z = cast(Array, target), cast(Array, np.zeros_like(target))
    d = van_rossum_distance(t, z, cfg.neuron.dt)
    return float(np.mean(np.asarray(d)))


def _read_condition(fig: Figure, c: Condition, wd: Path, reused: bool, silent):
    summary = json.loads((wd / "summary.json").read_text())
    history = json.loads((wd / "history.json").read_text())
    final, key = summary["final"], fig.success.metric
    missing = [math.nan] * len(summary["seeds"])  # e.g. a randman run with task.n_heldout 0
    ok = fig.success.passed(final.get(key, missing), silent)
    row = _row(c, wd, summary["seeds"], summary["simulated_seconds"], ok)
    row.update(
        wall_seconds=summary["wall_seconds"],
        reused=reused,
        hidden_rate_hz=summary["median"]["rate_hz"].get("hidden0"),
    )
    row[fig.metric] = seed_stats(final[fig.metric])
    if silent is not None:
        row["silent_distance"] = silent
    if key != fig.metric:
        row[key] = seed_stats(final.get(key, missing))
    if "heldout_accuracy" in final and "heldout_accuracy" not in row:  # xor: shown, not judged
        row["heldout_accuracy"] = seed_stats(final["heldout_accuracy"])
    if fig.feedback_signs and "feedback_all_negative" in final:
        row["feedback_all_negative"] = final["feedback_all_negative"]
    x = (np.asarray(history["period"]) + 1) * history["period_seconds"]
    values = np.asarray(history[fig.metric], np.float64).reshape(len(x), -1)
    return row, (x, values)


def _row(c: Condition, wd: Path, seeds, simulated_seconds, ok) -> dict:
    """The fields every row has; ``ok``: success per seed."""
    ok = np.asarray(ok, bool)
    return {
        "condition": c.name,
        "overrides": list(c.overrides),
        "workdir": str(wd),
        "seeds": list(seeds),
        "simulated_seconds": simulated_seconds,
        "wall_seconds": math.nan,
        "reused": False,
        "success": ok.tolist(),
        "n_success": int(ok.sum()),
        "hidden_rate_hz": None,
    }


def _sweep(fig: Figure, conds, root: Path, progress: bool, log) -> set[str]:
    """Train the unfinished conditions as a sweep (:func:`ssjax.experiment.sweep.train_sweep`:
    those that share a structure as one program; with ``map`` batching, the CPU default, each
    condition bit-identical to its own run); returns the names it finished. A diverging
    condition halts its group: the conditions left unfinished are then trained one by one,
    where a divergence is that condition's result."""
    from ssjax.experiment.sweep import Condition as SweepCondition
    from ssjax.experiment.sweep import train_sweep

    todo = [(c, cfg) for c, cfg in conds if not finished(root / c.name, cfg)]
    if len(todo) < 2:
        return set()
    log(f"{fig.name}: {len(todo)} conditions as one sweep")
    try:
        train_sweep(
            [SweepCondition(c.name, tuple(c.overrides), cfg) for c, cfg in todo],
            root,
            dirs=[c.name for c, _ in todo],
            progress=progress,
        )
    except NumericalError as e:
        log(f"  the sweep stopped ({e}); the conditions left run one by one")
    return {c.name for c, cfg in todo if finished(root / c.name, cfg)}


def _failed_row(fig: Figure, c: Condition, cfg: Config, wd: Path, error: str) -> dict:
    n = cfg.run.seeds
    row = _row(c, wd, [cfg.run.seed + k for k in range(n)], cfg.run.duration, [False] * n)
    for metric in (fig.metric, fig.success.metric):
        row[metric] = seed_stats([math.nan] * n)
    row["error"] = error
    return row


def _q(s: dict) -> str:
    return f"{s['median']:.3g} [{s['q1']:.3g}, {s['q3']:.3g}]"


def _negative_cell(row: dict) -> str:
    """``k/n (seed: solved yes|no, ...)`` over the seeds whose feedback weights are all < 0."""
    neg = row.get("feedback_all_negative")
    if neg is None:
        return "-"
    picked = [(s, ok) for s, n, ok in zip(row["seeds"], neg, row["success"], strict=True) if n]
    text = ", ".join(f"{s}: {'yes' if ok else 'no'}" for s, ok in picked)
    return f"{len(picked)}/{len(neg)}" + f" ({text})" * bool(text)


def markdown(report: dict) -> str:
    """The ``<fig>.md`` text of a report: header and one table row per condition."""
    rows = report["rows"]
    metric = "van_rossum" if "van_rossum" in rows[0] else "accuracy"
    label = {"van_rossum": "final van Rossum distance", "accuracy": "final accuracy"}[metric]
    cols = ["condition", "overrides", "seeds", "simulated s", f"{label}, median [q1, q3]"]
    heldout = any("heldout_accuracy" in r for r in rows)
    negative = any("feedback_all_negative" in r for r in rows)
    cols += ["held-out accuracy, median [q1, q3]"] * heldout
    cols += ["success", "hidden rate Hz (median)", "wall s"]
    cols += ["all feedback negative (seed: success)"] * negative
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        rate = r["hidden_rate_hz"]
        cells = [
            r["condition"],
            " ".join(f"`{o}`" for o in r["overrides"]) or "-",
            str(len(r["seeds"])),
            f"{r['simulated_seconds']:g}",
            "failed: non-finite values (see the .json)" if "error" in r else _q(r[metric]),
        ]
        cells += [_q(r["heldout_accuracy"]) if "heldout_accuracy" in r else "-"] * heldout
        cells += [
            f"{r['n_success']}/{len(r['seeds'])}",
            "-" if rate is None else f"{rate:.3g}",
            f"{r['wall_seconds']:.1f}" + (" (earlier run)" if r["reused"] else ""),
        ]
        if negative:
            cells.append(_negative_cell(r))
        lines.append("| " + " | ".join(cells) + " |")
    s = report["success"]
    thr = f"{s['threshold']:g}"
    if s["relative"]:
        silent = next((r["silent_distance"] for r in rows if "silent_distance" in r), math.nan)
        thr += f" x silent distance {silent:.3g}"
    head = [
        f"# {report['figure']}{' (quick)' * report['quick']}: {report['title']}",
        "",
        f"- command: `{report['command']}`",
        f"- date: {report['date']}",
        f"- settings: {'quick' if report['quick'] else 'full'}, `{report['config']}` "
        "plus each condition's overrides",
        f"- success per seed ({s['metric']}, threshold {thr}): {s['text']}",
        f"- wall: {report['wall_seconds']:.1f} s for this invocation "
        f"(conditions: {sum(not r['reused'] for r in rows)} trained, "
        f"{sum(r['reused'] for r in rows)} read back)",
        "",
    ]
    tail = ["", f"![{report['figure']}]({report['figure']}.png)", ""]
    return "\n".join(head + lines + tail)


def _output_panel(fig: Figure, cond: Condition, cfg: Config, row: dict) -> dict:
    """The ``raster`` or ``picture`` argument of plots.figure_overview for one condition."""
    npz = np.load(Path(row["workdir"]) / "final_output.npz")
    out, tgt, dt = npz["output"], npz["target"], float(npz["dt"])
    sub = f"{cond.name}, seed {int(npz['seed'])}"
    if fig.picture:
        return {"picture": (out, tgt, dt, sub)}
    if cfg.task.kind in WINDOW_TASKS:  # the first 2 s of the stream
        n = min(len(out), int(round(2.0 / dt)))
        what = "output (black); red: end of the window in which this output must fire"
        return {"raster": (out[:n], tgt[:n] == 2, dt, f"{sub}: {what}")}
    return {"raster": (out, tgt, dt, f"{sub}: output (black) vs target (red)")}


def _plot(fig: Figure, conds, rows, curves, path) -> None:
    names = [r["condition"] for r in rows]
    done = [(c, cfg, r) for (c, cfg), r in zip(conds, rows, strict=True) if "error" not in r]
    panel = _output_panel(fig, *done[0]) if done else {}  # the first condition that finished
    s = fig.success
    silent = next((r["silent_distance"] for r in rows if "silent_distance" in r), math.nan)
    threshold = s.threshold * (silent if s.relative else 1.0)
    labels = {
        "van_rossum": "van Rossum distance",
        "accuracy": "accuracy",
        "heldout_accuracy": "held-out accuracy",
    }
    plots.figure_overview(
        path,
        title=fig.title,
        curves=[(n, x, v) for n, (x, v) in zip(names, curves, strict=True)],
        finals=[(r["condition"], r[s.metric]["values"]) for r in rows],
        ylabel=labels[fig.metric],
        bar_label="final " + labels[s.metric],
        threshold=threshold,
        log=fig.metric == "van_rossum",
        **panel,
    )


__all__ = [
    "CONFIGS",
    "FIGURES",
    "Condition",
    "Figure",
    "Success",
    "condition_configs",
    "figure_dir",
    "finished",
    "format_list",
    "get_figure",
    "markdown",
    "run_figure",
    "silent_distance",
]
