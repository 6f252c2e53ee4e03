"""The training loop: ``ssjax train`` as segments, checkpoints, logs, resume and signals.

``ssjax train CONFIG`` ends up in :func:`train`. A run is ``n_blocks`` blocks of the online
trainer (:mod:`ssjax.train`) for all seeds at once (:mod:`ssjax.experiment.seeds`: ids,
``map`` or ``vmap``, the ``seeds`` mesh). The blocks are executed as ``lax.scan`` segments of a
fixed length, split only where logs, raster images or checkpoints are due; the state carried
between segments is the whole :class:`ssjax.train.TrainState`, and the partial pattern period is
part of the checkpoint (:class:`ssjax.metrics.PeriodAccumulator`), so a resumed run is
bit-identical to an uninterrupted one (CPU). At the end :mod:`ssjax.experiment.report` writes
the summary. With several processes (:mod:`ssjax.experiment.distributed`) every process runs
this loop on its share of the seeds; the primary alone holds the lock, restores (the others
receive the state), and writes checkpoints (of the state gathered to its host), logs and the
report; a SIGINT/SIGTERM to any process stops all of them at the same segment.

Reference: SUPERSPIKE.md; DESIGN.md (train, checkpoint, logging).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ssjax import plots
from ssjax.experiment.checkpoint import Checkpointer, CheckpointError
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
    run_dtype,
)
from ssjax.experiment.distributed import (
    PeerError,
    agree,
    allgather,
    broadcast,
    is_primary,
    multi_process,
    to_host,
)
from ssjax.experiment.paths import UnknownConfigError, find_config
from ssjax.experiment.report import layer_names, output_raster, run_warnings, write_report
from ssjax.experiment.seeds import init_states, make_segment_fn, seed_ids, seed_mesh, shard_state
from ssjax.experiment.tb import RunLogger
from ssjax.experiment.workdir import WorkdirError, config_differences, open_workdir
from ssjax.metrics import PeriodAccumulator, add_seed_blocks, period_record
from ssjax.tasks import registry
from ssjax.train import Hyper, TrainSpec, TrainState


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
    """Refuse a work directory whose ``config.yaml`` differs from ``cfg`` (unless ``override``).

    A saved config this version cannot read (an unknown key, a data file that moved, an empty
    file) is refused too, with ``--override-config`` as the way out: the new config then
    replaces it once the checkpoint has been restored."""
    saved = workdir / "config.yaml"
    if not saved.exists():
        return
    try:
        if saved.stat().st_size == 0:
            raise ConfigError(os.fspath(saved), None, "the file is empty")
        diff = diff_configs(load_config(saved), cfg)
    except ConfigError as exc:
        if override:
            warnings.warn(
                f"ignoring the saved config, which cannot be read ({exc}); --override-config: "
                "continuing with the new config",
                stacklevel=2,
            )
            return
        raise RunError(
            f"{saved} cannot be read by this version of ssjax:\n  {exc}\nuse another "
            "--workdir, or --override-config to continue the run with the new config"
        ) from None
    if diff and not override:
        raise RunError(_diff_message(f"{workdir} holds a run with a different config", diff, saved))


def _diff_message(head: str, diff, where) -> str:
    lines = "\n".join(f"  {k}: {a!r} (in {where}) -> {b!r}" for k, a, b in diff)
    return (
        f"{head}:\n{lines}\n"
        "use another --workdir, or --override-config to continue it with the new config"
    )


class _Stop:
    """SIGINT/SIGTERM during training: the first stops after the current segment (a checkpoint
    is saved), a second ends the process at once with ``128 + signal``.

    The second is ``os._exit``, as safe as ``kill -9`` (checkpoints and the JSON files are
    written atomically, a resume drops the log lines past the checkpoint): a KeyboardInterrupt
    could land in a callback (a garbage-collection hook of XLA's) and be swallowed."""

    def __init__(self):
        self.signum: int | None = None

    def __call__(self, signum, _frame):
        name = signal.Signals(signum).name
        if self.signum is not None:
            print(f"{name}: quitting at once; the last checkpoint is kept", file=sys.stderr)
            sys.stderr.flush()
            os._exit(128 + signum)
        self.signum = signum
        print(
            f"\n{name}: stopping after the current segment to save a checkpoint; "
            f"{name} again to quit at once (losing the blocks since the last checkpoint)",
            file=sys.stderr,
            flush=True,
        )


def _wait(tree) -> None:
    """Block until ``tree``'s arrays are computed, polling so that signal handlers run (a
    blocking device_get would defer them to the end of the segment)."""
    leaves = [x for x in jax.tree.leaves(tree) if isinstance(x, jax.Array)]
    while not all(x.is_ready() for x in leaves):  # type: ignore[attr-defined]
        time.sleep(0.005)


def train(
    cfg: Config, workdir, *, override_config=False, fallback=False, progress=True, inject_nan=None
) -> dict:
    """Run (or resume) the configured training in ``workdir``; returns the summary dict.

    A trial task (``task.kind`` of :mod:`ssjax.tasks.trials`) goes to
    :func:`ssjax.experiment.trials.train_trials` (epochs of labelled trials; its files are
    listed there); what follows is the pattern runs'.

    ``workdir`` receives ``config.yaml``, ``checkpoints/``, ``metrics.jsonl`` and ``tb/`` as the
    run goes, and at the end ``summary.json`` (final values per seed and medians; for randman
    and xor tasks ``final.heldout_accuracy``, for random feedback ``final.feedback_all_negative``;
    ``wall_seconds`` summed over every invocation that trained it, ``warnings``),
    ``history.json`` (per-period ``van_rossum`` and ``accuracy`` ``[periods][seeds]``,
    ``rate_hz`` ``[periods][layers][seeds]``, ``period_seconds``), ``final_output.npz`` (seed 0's
    output over one period from the final state, the target, ``dt``), ``learning_curve.png`` and
    ``raster.png``.

    The work directory is locked for the run (:func:`ssjax.experiment.workdir.open_workdir`); a
    second process is refused before it touches anything. A resumed run must match both the
    saved ``config.yaml`` and the config stored in the checkpoint, unless ``override_config``;
    ``config.yaml`` is (re)written only once the checkpoint has been restored.

    ``inject_nan``: ``(seed_index, block)`` sets that seed's first weight to NaN at the start of
    the segment that contains ``block`` (a hook for testing the numerical-fault handling).

    Raises ConfigError, RunError (a config that differs from the work directory's),
    WorkdirError (not a writable folder, or in use), CheckpointError, NumericalError. A
    second SIGINT/SIGTERM while it trains ends the process (see ``_Stop``).
    """
    if registry.get(cfg.task.kind).trials:  # labelled trials: epochs of the trial trainer
        from ssjax.experiment.trials import train_trials

        if inject_nan is not None:
            raise ValueError("inject_nan is a hook of the pattern runs")
        if jax.process_count() > 1:
            raise RunError(
                f"task.kind {cfg.task.kind!r}: trial runs use one process; start it without "
                "--distributed (its seeds run as one program on this host)"
            )
        return train_trials(
            cfg, workdir, override_config=override_config, fallback=fallback, progress=progress
        )
    workdir = Path(workdir)
    dtype = run_dtype(cfg)

    def start():
        lock = open_workdir(workdir)
        try:
            check_workdir(cfg, workdir, override_config)
        except BaseException:
            lock.release()
            raise
        return lock

    # several processes: only the primary locks and reads the folder (the others never touch it)
    with agree(start, exit_code) or contextlib.nullcontext():
        return _train_locked(cfg, workdir, dtype, override_config, fallback, progress, inject_nan)


def exit_code(exc: BaseException) -> int:
    """The CLI's exit code for ``exc``: 2 for a config, work directory or set-up error, 1 for a
    failed run, ``128 + signal`` for an interrupt (:class:`SystemExit`)."""
    if isinstance(exc, PeerError):
        return exc.code
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) and exc.code else 1
    if isinstance(exc, (ConfigError, RunError, WorkdirError)):
        return 2
    return 1


@dataclasses.dataclass
class Part:
    """A slice of the runs with its own work directory, config, logs and report (a run's seeds;
    in a sweep, one condition's seeds)."""

    workdir: Path
    runs: slice
    cfg: Config
    trainer: TrainSpec


@dataclasses.dataclass
class Runs:
    """``R`` runs trained as one program: a run's seeds, or a sweep group's condition x seed
    runs (:mod:`ssjax.experiment.sweep`), with the checkpoint that holds them all.

    ``hyper`` is per run (a leading ``[R]`` axis, ``make_segment_fn(per_run=True)``) or None for
    the trainer's own; ``config`` is stored in the checkpoint meta, and ``diff(saved)`` lists
    ``(key, saved, new)`` against a saved one."""

    cfg: Config  # the shared run settings (run.*, task, structure)
    trainer: TrainSpec
    ids: list[int]
    template: TrainState
    hyper: Hyper | None
    parts: list[Part]
    checkpoints: Path
    config: dict
    diff: Callable[[dict], list]


def _train_locked(cfg, workdir, dtype, override_config, fallback, progress, inject_nan) -> dict:
    trainer = dataclasses.replace(build_trainer(cfg), on_nonfinite=cfg.run.on_nonfinite)
    ids = seed_ids(cfg)
    config = config_to_dict(cfg)
    runs = Runs(
        cfg=cfg,
        trainer=trainer,
        ids=ids,
        template=init_states(trainer, ids, dtype),
        hyper=None,
        parts=[Part(workdir, slice(0, len(ids)), cfg, trainer)],
        checkpoints=workdir / "checkpoints",
        config=config,
        diff=lambda saved: config_differences(saved, config),
    )
    return train_runs(runs, override_config, fallback, progress, inject_nan)[0]


def train_runs(runs: Runs, override_config, fallback, progress, inject_nan=None) -> list[dict]:
    """Train (or resume) ``runs`` in their work directories (already locked and checked by the
    caller); returns each part's summary (:func:`ssjax.experiment.report.write_report`).

    With several processes each calls it with the same ``runs``; the primary returns the
    summaries, the others (which write nothing) empty dicts."""
    cfg, trainer, ids = runs.cfg, runs.trainer, runs.ids
    primary = is_primary()
    try:
        mesh = seed_mesh(len(ids))
    except ValueError as e:  # several processes and a run count they cannot share
        raise RunError(str(e)) from None
    # patterns as events (ssjax.pattern): the trainer gathers each block's spikes on the device
    pattern_in, pattern_tgt = build_patterns(cfg, trainer.block_steps)
    total = n_blocks(cfg)
    warns = run_warnings(cfg, trainer, pattern_in.n_steps)
    for w in warns if primary else ():
        print(f"warning: {w}", file=sys.stderr)

    ckpt = Checkpointer(runs.checkpoints, keep=cfg.run.keep_checkpoints)
    classify = trainer.classify
    history: dict[str, list] = {"period": [], "van_rossum": [], "rate_hz": [], "accuracy": []}
    partial, wall_before = None, 0.0

    def check(meta: dict, step: int) -> None:
        diff = runs.diff(meta.get("config", {}))
        if diff and not override_config:
            head = f"checkpoint step {step} in {ckpt.directory} was saved with a different config"
            raise RunError(_diff_message(head, diff, f"step {step}"))

    def restore():
        latest, out = ckpt.latest(), (0, runs.template, None)
        if latest is not None:
            with contextlib.suppress(CheckpointError):  # a corrupt newest step: restore says so
                check(ckpt.read_meta(latest), latest)
            out = ckpt.restore(runs.template, fallback=fallback)
            check(out[2], out[0])
            print(f"resuming {runs.checkpoints.parent} from block {out[0]}")
        # only now: a refused resume must leave the saved configs as they were
        for part in runs.parts:
            part.workdir.mkdir(parents=True, exist_ok=True)
            dump_config(part.cfg, part.workdir / "config.yaml")
        return out

    restored = agree(restore, exit_code)  # the primary's; None on the other processes
    start, state, meta = restored if restored is not None else (0, runs.template, None)
    if meta is not None:
        history, partial = meta["history"], meta["partial"]
        history.setdefault("accuracy", [])
        wall_before = float(meta.get("wall_seconds", 0.0))
    if multi_process():  # the primary's block and state (the others have a fresh template)
        start, state = broadcast((np.int32(start), jax.tree.map(np.asarray, state)))
        start = int(start)
    state = shard_state(state, mesh)
    hyper = None if runs.hyper is None else shard_state(runs.hyper, mesh)
    period_steps, dt = pattern_in.n_steps, trainer.net.neuron.dt
    acc = PeriodAccumulator(period_steps, partial)
    names = layer_names(trainer)
    loggers = [  # the primary's alone
        RunLogger(
            part.workdir,
            seeds=ids[part.runs],
            layer_names=names,
            total_blocks=total,
            start_block=start,
            block_seconds=trainer.t_b,
            progress=progress and k == 0,
        )
        for k, part in enumerate(runs.parts if primary else ())
    ]
    seg_len = math.gcd(cfg.run.log_every, cfg.run.checkpoint_every, cfg.run.raster_every)
    target = pattern_tgt.to_dense(np.int8)  # counts or window codes, for the raster plots
    fns = {}
    stop = _Stop()
    old_handlers = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    t_wall, block, host, stopping = time.perf_counter(), start, None, 0
    try:
        while block < total and not stopping:
            n = min(seg_len - block % seg_len, total - block)
            if n not in fns:
                fns[n] = make_segment_fn(
                    trainer, pattern_in, pattern_tgt, mesh, n, cfg.run.seed_batching,
                    hyper, per_run=hyper is not None,
                )  # fmt: skip
            if inject_nan is not None and block <= inject_nan[1] < block + n:
                s = inject_nan[0]
                state = state._replace(
                    weights=(state.weights[0].at[s, 0, 0].set(jnp.nan), *state.weights[1:])
                )
            new_state, m = fns[n](state)
            _wait((new_state, m))
            m = jax.device_get(to_host(m))  # whole on every process (all gather)
            block += n
            stopping = _agreed_stop(stop)
            due_raster = block % cfg.run.raster_every == 0 or block == total
            due_ckpt = block % cfg.run.checkpoint_every == 0 or block == total or stopping
            # the state's host copy: a collective with several processes, so every process
            # takes it at the same blocks
            finite = bool(np.asarray(m.finite).all())
            host = to_host(new_state) if due_raster or due_ckpt or not finite else new_state
            bad = None if finite else first_nonfinite(host, m, ids, block - n, trainer.t_b)
            if bad and cfg.run.on_nonfinite == "halt":
                last = ckpt.latest() if primary else None
                raise NumericalError(bad + f"; the last good checkpoint is block {last}")
            state = new_state
            for p, tot in add_seed_blocks(acc, m):
                history["period"].append(p)
                rec = period_record(tot, trainer.net.sizes, period_steps, dt, classify)
                for key, value in rec.items():
                    history[key].append(value)
            if not primary:
                continue
            loggers[0].advance(n, cost=_median_last(history))
            if block % cfg.run.log_every == 0 or block == total:
                values = _values(history, m, names)
                for part, logger in zip(runs.parts, loggers, strict=True):
                    logger.log(block, {k: v[part.runs] for k, v in values.items()})
            if due_raster:
                for part, logger in zip(runs.parts, loggers, strict=True):
                    first = part.runs.start
                    png = plots.output_vs_target(
                        output_raster(trainer, host, pattern_in, first),
                        target,
                        trainer.net.neuron.dt,
                        part.workdir / "raster.png",
                        title=f"seed {ids[first]}, block {block}",
                    )
                    logger.image(block, "raster/seed0", Path(png).read_bytes())
            if due_ckpt:
                ckpt.save(
                    block,
                    host,
                    {
                        "config": runs.config,
                        "block": block,
                        "history": history,
                        "partial": acc.state(),
                        "wall_seconds": wall_before + time.perf_counter() - t_wall,
                    },
                )
    finally:
        for s, h in old_handlers.items():
            signal.signal(s, h)
        for logger in loggers:
            logger.close()
    wall = wall_before + time.perf_counter() - t_wall
    if stopping:
        name = signal.Signals(stopping).name
        print(f"{name}: stopped at block {block}; checkpoint saved; run again to resume")
        raise SystemExit(128 + stopping)
    if host is None:  # nothing left to train (a finished run resumed)
        host = to_host(state)
    if not primary:
        return [{} for _ in runs.parts]
    out = []
    for part in runs.parts:
        sl = part.runs
        out.append(
            write_report(
                part.cfg,
                part.trainer,
                part.workdir,
                ids[sl],
                slice_history(history, sl),
                jax.tree.map(lambda a, sl=sl: a[sl], host),
                pattern_in,
                pattern_tgt,
                wall,
                warns,
            )  # fmt: skip
        )
    return out


def slice_history(history: dict, sl: slice) -> dict:
    """The runs ``sl`` of a history: ``[periods][runs]``, rate_hz ``[periods][layers][runs]``."""
    out = {"period": list(history["period"])}
    for key in ("van_rossum", "accuracy"):
        out[key] = [row[sl] for row in history[key]]
    out["rate_hz"] = [[layer[sl] for layer in row] for row in history["rate_hz"]]
    return out


def _agreed_stop(stop: _Stop) -> int:
    """The signal that stops the run after this segment (0: none). With several processes a
    signal that reached any of them stops all of them, at the same segment."""
    mine = stop.signum or 0
    return int(allgather(np.int32(mine)).max()) if multi_process() else mine


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
    "Part",
    "Runs",
    "RunError",
    "WorkdirError",
    "check_workdir",
    "first_nonfinite",
    "prepare",
    "slice_history",
    "train",
    "train_runs",
]
