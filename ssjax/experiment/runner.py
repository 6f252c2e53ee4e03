"""The training loop: ``ssjax train`` as segments, checkpoints, logs, resume and signals.

``ssjax train CONFIG`` ends up in :func:`train`. A run is ``n_blocks`` blocks of the online
trainer (:mod:`ssjax.train`) for all seeds at once (:mod:`ssjax.experiment.seeds`: ids,
``map`` or ``vmap``, the ``seeds`` mesh). The blocks are executed as ``lax.scan`` segments of a
fixed length, split only where logs, raster images or checkpoints are due; the state carried
between segments is the whole :class:`ssjax.train.TrainState`, and the partial pattern period is
part of the checkpoint (:class:`ssjax.metrics.PeriodAccumulator`), so a resumed run is
bit-identical to an uninterrupted one (CPU). At the end :mod:`ssjax.experiment.report` writes
the summary. Checkpoints are written by orbax from every process to a shared directory.

Reference: SUPERSPIKE.md; DESIGN.md (train, checkpoint, logging).
"""

from __future__ import annotations

import dataclasses
import math
import signal
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ssjax import plots
from ssjax.experiment.checkpoint import Checkpointer
from ssjax.experiment.config import (
    Config,
    ConfigError,
    build_patterns,
    build_trainer,
    config_to_dict,
    diff_configs,
    dump_config,
    load_config,
    n_blocks,
)
from ssjax.experiment.paths import UnknownConfigError, find_config
from ssjax.experiment.report import layer_names, output_raster, write_report
from ssjax.experiment.seeds import init_states, make_segment_fn, seed_ids, seed_mesh, shard_state
from ssjax.experiment.tb import RunLogger
from ssjax.metrics import PeriodAccumulator, add_seed_blocks, period_record


class RunError(RuntimeError):
    """A run cannot start or continue (config mismatch with the work directory, ...)."""


class NumericalError(RuntimeError):
    """A seed produced NaN or Inf; the message names seed, block and the first bad leaf."""


def first_nonfinite(state, metrics, ids, start_block: int, t_b: float) -> str | None:
    """Message for the first seed/block whose state became non-finite, or None."""
    finite = np.asarray(metrics.finite)  # [S, blocks]
    if finite.all():
        return None
    s, b = map(int, np.argwhere(~finite)[0])
    leaves = jax.tree_util.tree_flatten_with_path(state)[0]
    bad = [
        jax.tree_util.keystr(p)
        for p, x in leaves
        if not np.all(np.isfinite(np.asarray(x[s]) if np.asarray(x).ndim else x))
        and np.issubdtype(np.asarray(x).dtype, np.floating)
    ]
    leaf = bad[0] if bad else "unknown leaf"
    return (
        f"non-finite values in seed {ids[s]} (index {s}) at block {start_block + b} "
        f"(t = {(start_block + b) * t_b:g} s); first bad leaf: {leaf}"
    )


def prepare(config_path, *, seeds=None, overrides=()) -> Config:
    """Load and validate the config (no side effects); ConfigError on any problem.

    ``config_path`` is a YAML file or the name of a shipped config (``default``; see
    :func:`ssjax.experiment.paths.find_config`)."""
    try:
        path = find_config(config_path)
    except UnknownConfigError as exc:  # say which name, and list the shipped ones
        raise ConfigError(config_path, None, exc.reason) from None
    overrides = list(overrides) + ([f"run.seeds={seeds}"] if seeds is not None else [])
    return load_config(path, overrides)


def check_workdir(cfg: Config, workdir: Path, override: bool) -> None:
    """Refuse a work directory made with another config (unless ``override``)."""
    saved = workdir / "config.yaml"
    if not saved.exists():
        return
    diff = diff_configs(load_config(saved), cfg)
    if diff and not override:
        lines = "\n".join(f"  {k}: {a!r} (in {saved}) -> {b!r}" for k, a, b in diff)
        raise RunError(
            f"{workdir} holds a run with a different config:\n{lines}\n"
            "use another --workdir, or --override-config to continue it with the new config"
        )


def train(
    cfg: Config, workdir, *, override_config=False, fallback=False, progress=True, inject_nan=None
) -> dict:
    """Run (or resume) the configured training in ``workdir``; returns the summary dict.

    ``workdir`` receives ``config.yaml``, ``checkpoints/``, ``metrics.jsonl`` and ``tb/`` as the
    run goes, and at the end ``summary.json`` (final values per seed and medians; for randman
    and xor tasks ``final.heldout_accuracy``, for random feedback ``final.feedback_all_negative``),
    ``history.json`` (per-period ``van_rossum`` and ``accuracy`` ``[periods][seeds]``,
    ``rate_hz`` ``[periods][layers][seeds]``, ``period_seconds``), ``final_output.npz`` (seed 0's
    output over one period from the final state, the target, ``dt``), ``learning_curve.png`` and
    ``raster.png``.

    ``inject_nan``: ``(seed_index, block)`` sets that seed's first weight to NaN at the start of
    the segment that contains ``block`` (a hook for testing the numerical-fault handling).
    """
    workdir = Path(workdir)
    check_workdir(cfg, workdir, override_config)
    trainer = dataclasses.replace(build_trainer(cfg), on_nonfinite=cfg.run.on_nonfinite)
    # patterns as events (ssjax.pattern): the trainer gathers each block's spikes on the device
    pattern_in, pattern_tgt = build_patterns(cfg, trainer.block_steps)
    dtype = jnp.float64 if cfg.run.dtype == "float64" else jnp.float32
    total = n_blocks(cfg)
    ids = seed_ids(cfg)
    workdir.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, workdir / "config.yaml")

    template = init_states(trainer, ids, dtype)
    ckpt = Checkpointer(workdir / "checkpoints", keep=cfg.run.keep_checkpoints)
    classify = trainer.classify
    history: dict[str, list] = {"period": [], "van_rossum": [], "rate_hz": [], "accuracy": []}
    partial = None
    if ckpt.latest() is not None:
        start, state, meta = ckpt.restore(template, fallback=fallback)
        history, partial = meta["history"], meta["partial"]
        history.setdefault("accuracy", [])
        print(f"resuming {workdir} from block {start}")
    else:
        start, state = 0, template
    mesh = seed_mesh(len(ids))
    state = shard_state(state, mesh)
    period_steps, dt = pattern_in.n_steps, trainer.net.neuron.dt
    acc = PeriodAccumulator(period_steps, partial)
    names = layer_names(trainer)
    logger = RunLogger(
        workdir,
        seeds=ids,
        layer_names=names,
        total_blocks=total,
        start_block=start,
        block_seconds=trainer.t_b,
        progress=progress,
    )
    seg_len = math.gcd(cfg.run.log_every, cfg.run.checkpoint_every, cfg.run.raster_every)
    fns = {}
    stop = {"signal": None}

    def _on_signal(signum, _frame):
        stop["signal"] = signum

    old_handlers = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    t_wall, block = time.perf_counter(), start
    try:
        while block < total and stop["signal"] is None:
            n = min(seg_len - block % seg_len, total - block)
            if n not in fns:
                fns[n] = make_segment_fn(
                    trainer, pattern_in, pattern_tgt, mesh, n, cfg.run.seed_batching
                )
            if inject_nan is not None and block <= inject_nan[1] < block + n:
                s = inject_nan[0]
                state = state._replace(
                    weights=(state.weights[0].at[s, 0, 0].set(jnp.nan), *state.weights[1:])
                )
            new_state, m = fns[n](state)
            m = jax.device_get(m)
            bad = first_nonfinite(new_state, m, ids, block, trainer.t_b)
            if bad and cfg.run.on_nonfinite == "halt":
                raise NumericalError(bad + f"; the last good checkpoint is block {ckpt.latest()}")
            state, block = new_state, block + n
            for p, tot in add_seed_blocks(acc, m):
                history["period"].append(p)
                rec = period_record(tot, trainer.net.sizes, period_steps, dt, classify)
                for key, value in rec.items():
                    history[key].append(value)
            logger.advance(n, cost=_median_last(history))
            if block % cfg.run.log_every == 0 or block == total:
                logger.log(block, _values(history, m, names))
            if block % cfg.run.raster_every == 0 or block == total:
                png = plots.output_vs_target(
                    output_raster(trainer, state, pattern_in, 0),
                    pattern_tgt.to_dense(np.int8),
                    trainer.net.neuron.dt,
                    workdir / "raster.png",
                    title=f"seed {ids[0]}, block {block}",
                )
                logger.image(block, "raster/seed0", Path(png).read_bytes())
            if block % cfg.run.checkpoint_every == 0 or block == total or stop["signal"]:
                ckpt.save(
                    block,
                    state,
                    {
                        "config": config_to_dict(cfg),
                        "block": block,
                        "history": history,
                        "partial": acc.state(),
                    },
                )
    finally:
        for s, h in old_handlers.items():
            signal.signal(s, h)
        logger.close()
    wall = time.perf_counter() - t_wall
    if stop["signal"] is not None:
        name = signal.Signals(stop["signal"]).name
        print(f"{name}: stopped at block {block}; checkpoint saved; run again to resume")
        raise SystemExit(128 + stop["signal"])
    return write_report(cfg, trainer, workdir, ids, history, state, pattern_in, pattern_tgt, wall)


def _median_last(history):
    return float(np.median(history["van_rossum"][-1])) if history["van_rossum"] else None


def _values(history, m, layer_names):
    vals = {
        "weight_norm/" + n: np.asarray(m.weight_norm)[:, -1, i] for i, n in enumerate(layer_names)
    }
    vals.update(
        {"update_norm/" + n: np.asarray(m.update_norm)[:, -1, i] for i, n in enumerate(layer_names)}
    )
    vals["ema_cost"] = np.asarray(m.ema)[:, -1]
    if history["accuracy"]:
        vals["accuracy"] = np.asarray(history["accuracy"][-1])
    if history["van_rossum"]:
        vals["van_rossum"] = np.asarray(history["van_rossum"][-1])
        for i, n in enumerate(layer_names):
            vals["rate_hz/" + n] = np.asarray(history["rate_hz"][-1][i])
    return vals


__all__ = [
    "ConfigError",
    "NumericalError",
    "RunError",
    "check_workdir",
    "first_nonfinite",
    "prepare",
    "train",
]
