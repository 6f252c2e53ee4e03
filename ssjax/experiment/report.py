"""What a finished run leaves behind: ``summary.json``, ``history.json``, the output raster.

:func:`write_report` turns a run's per-period history (:func:`ssjax.metrics.period_record`
rows) and final state into the summary (final values per seed, the mean over the last 10% of
periods, and medians over seeds), the history file, ``final_output.npz`` and the two plots;
:func:`output_raster` is one pattern period of a seed's output from its current state, which the
runner also draws while it trains.
"""

from __future__ import annotations

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np

from ssjax import plots
from ssjax.experiment.config import WINDOW_TASKS, build_heldout, n_blocks
from ssjax.experiment.workdir import atomic_write
from ssjax.metrics import heldout_accuracy
from ssjax.network import simulate
from ssjax.pattern import as_pattern
from ssjax.train import TrainSpec

__all__ = [
    "json_safe",
    "layer_names",
    "output_raster",
    "run_warnings",
    "seed_stats",
    "write_report",
]


def run_warnings(cfg, trainer: TrainSpec, period_steps: int) -> list[str]:
    """What a run's length makes meaningless: no complete pattern period (no distance, no
    rates in the summary), or no weight update (the run ends inside the optimiser's burn-in)."""
    out = []
    total = n_blocks(cfg)
    sim = total * trainer.t_b
    period = period_steps * trainer.net.neuron.dt
    if total * trainer.block_steps < period_steps:
        out.append(
            f"run.duration = {sim:g} s is shorter than one pattern period ({period:g} s): no "
            "period completes, so the summary has no distance or rates (null); set "
            f"run.duration >= {period:g}"
        )
    burn = trainer.optimizer.burn_in
    if total <= int(round(burn / trainer.t_b)):
        out.append(
            f"run.duration = {sim:g} s ends inside the burn-in (optimizer.burn_in = {burn:g} s): "
            "no weight is ever updated; lengthen the run or shorten optimizer.burn_in"
        )
    return out


def json_safe(x):
    """``x`` with every non-finite float as None, recursively: strict JSON has no NaN."""
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if np.isfinite(x) else None
    return x


def seed_stats(values) -> dict:
    """Median and quartiles over the finite per-seed ``values`` (NaN when none is finite),
    with the values themselves."""
    v = np.asarray(values, np.float64)
    ok = v[np.isfinite(v)]
    q1, med, q3 = np.percentile(ok, [25, 50, 75]) if ok.size else (np.nan,) * 3
    return {"values": v.tolist(), "median": float(med), "q1": float(q1), "q3": float(q3)}


def _write_json(path, obj, **kw) -> None:
    atomic_write(path, json.dumps(json_safe(obj), allow_nan=False, **kw))


def layer_names(trainer: TrainSpec) -> list[str]:
    """Names of the trained layers in logs and summaries: ``hidden0, ..., output``."""
    return [f"hidden{l}" for l in range(trainer.net.n_layers - 1)] + ["output"]


@functools.lru_cache(maxsize=8)
def _output_sim(trainer: TrainSpec, k: int, n_chunks: int):
    # compiled once per run: an eager simulate would re-trace its scans at every raster
    def run(weights, pattern, pos, net_state, dtype_like):
        def chunk(ns, c):
            x = pattern.window(pos + c * k, k, dtype_like.dtype)
            ns, rec = simulate(trainer.net, weights, x, ns)
            return ns, (rec.spikes[-1] > 0).astype(jnp.uint8)

        return jax.lax.scan(chunk, net_state, jnp.arange(n_chunks))[1]

    return jax.jit(run)


def output_raster(trainer: TrainSpec, state, pattern_in, seed: int) -> np.ndarray:
    """One pattern period of seed ``seed``'s output from its current state, in pattern time:
    ``[P, N_out]`` uint8 spikes.

    Simulated in blocks of the trainer's ``K`` steps (a scan over blocks carrying the network
    state), each gathered from the pattern (:meth:`ssjax.pattern.EventPattern.window`): memory
    ``O(K N)``, never the whole period's input raster.
    """
    st = jax.tree.map(lambda a: a[seed], state)
    pattern = as_pattern(pattern_in)
    period, k = pattern.n_steps, trainer.block_steps
    n_chunks = -(-period // k)
    sim = _output_sim(trainer, k, n_chunks)
    net_state = trainer.make_rule().network_state(st.rule)
    spikes = np.asarray(sim(st.weights, pattern, st.pos, net_state, st.ema))
    spikes = spikes.reshape(n_chunks * k, -1)[:period]
    out = np.zeros_like(spikes)
    out[(int(st.pos) + np.arange(period)) % period] = spikes
    return out


def write_report(
    cfg, trainer, workdir, ids, history, state, pattern_in, pattern_tgt, wall, warnings=()
) -> dict:
    """Write a finished run's results to ``workdir``; return the summary dict.

    The files are those listed in :func:`ssjax.experiment.runner.train`. ``history`` holds the
    per-period lists ``[periods][seeds]`` (``[periods][layers][seeds]`` for ``rate_hz``),
    ``state`` the final state with a leading seed axis, ``wall`` the training's wall seconds
    (all invocations), ``warnings`` :func:`run_warnings`' messages. The JSON files are strict
    (a NaN, e.g. the distance of a run without a complete period, is written as null) and
    replaced atomically.
    """
    vr = np.asarray(history["van_rossum"], np.float64).reshape(-1, len(ids))
    tail = max(1, len(vr) // 10)
    final_vr = vr[-tail:].mean(0) if len(vr) else np.full(len(ids), np.nan)
    rates = np.asarray(history["rate_hz"], np.float64)  # [periods, layers, seeds]
    names = layer_names(trainer)
    final_rates = {
        n: (rates[-tail:, i].mean(0).tolist() if len(rates) else []) for i, n in enumerate(names)
    }
    has_feedback = cfg.rule.name == "superspike" and trainer.net.n_layers > 1
    summary = {
        "config": cfg.source,
        "rule": cfg.rule.name,
        "feedback": cfg.rule.feedback if has_feedback else None,
        "seeds": ids,
        "simulated_seconds": n_blocks(cfg) * trainer.t_b,
        "wall_seconds": wall,
        "final": {"van_rossum": final_vr.tolist(), "rate_hz": final_rates},
        "median": {
            "van_rossum": float(np.median(final_vr)),
            "rate_hz": {n: float(np.median(v)) if v else None for n, v in final_rates.items()},
        },
        "periods": len(vr),
        "warnings": list(warnings),
    }
    if history["accuracy"]:
        accs = np.asarray(history["accuracy"], np.float64)[-tail:].mean(0)
        summary["final"]["accuracy"] = accs.tolist()
        summary["median"]["accuracy"] = float(np.median(accs))
    if has_feedback and cfg.rule.feedback == "random":
        # the paper's Fig. 4: random feedback fails only when all feedback weights are negative
        neg = np.ones(len(ids), bool)
        for f in state.rule.feedback:
            neg &= np.asarray(f < 0).reshape(len(ids), -1).all(1)
        summary["final"]["feedback_all_negative"] = neg.tolist()
    if cfg.task.kind in WINDOW_TASKS and cfg.task.n_heldout > 0:
        acc = heldout_accuracy(trainer.net, state.weights, *build_heldout(cfg))
        summary["final"]["heldout_accuracy"] = acc.tolist()
        summary["median"]["heldout_accuracy"] = float(np.median(acc))
    _write_json(workdir / "summary.json", summary, indent=2)
    period_s = as_pattern(pattern_in).n_steps * trainer.net.neuron.dt
    hist = {"period_seconds": period_s, "layers": names, **history}
    _write_json(workdir / "history.json", hist)
    if len(vr):
        plots.seed_curves(
            np.asarray(history["period"]) * period_s,
            vr,
            workdir / "learning_curve.png",
            ylabel="van Rossum distance per period",
            xlabel="time (s)",
        )
    out = output_raster(trainer, state, pattern_in, 0)
    target = as_pattern(pattern_tgt).to_dense(np.int8)  # counts or window codes, never float
    np.savez_compressed(
        workdir / "final_output.npz",
        output=out,
        target=target,
        dt=trainer.net.neuron.dt,
        seed=ids[0],
    )
    plots.output_vs_target(
        out,
        target,
        trainer.net.neuron.dt,
        workdir / "raster.png",
        title=f"seed {ids[0]}: output (black) vs target (red)",
    )
    return summary
