"""Trial runs: ``ssjax train`` on labelled trials, epochs as segments, checkpoints and resume.

A config whose ``task.kind`` is a trial kind (:mod:`ssjax.tasks.trials`: ``shd``,
``ras_folder``, ``randman_trials``) ends up in :func:`train_trials`. It trains ``run.seeds``
seeds as one program for ``trials.epochs`` epochs of :func:`ssjax.trial.train_epoch`, with the
same guarantees as the pattern runs (:mod:`ssjax.experiment.runner`): the work directory is
locked and holds ``config.yaml``; every ``trials.checkpoint_every`` epochs (and after the last,
and on SIGINT/SIGTERM) the whole :class:`TrialRunState` is saved by orbax
(:mod:`ssjax.experiment.checkpoint`) with the history in its meta, so a resumed run is
bit-identical to an uninterrupted one (CPU).

Seeds and keys: seed ``k`` has id ``run.seed + k``; ``PRNGKey(id)`` splits into the key of the
weights and SuperSpike's feedback (:func:`ssjax.trial.init_trial_state`) and the run's data key,
whose ``epoch_key(data_key, e)`` (:func:`ssjax.data.epoch_key`) orders epoch ``e`` (0-based).
The validation split is the config's (``trials.split_seed``), the same for every seed. One
epoch of all seeds is one jitted call: ``vmap`` over the seeds' states and keys, or ``lax.map``
(``run.seed_batching``, ``auto``: map on CPU; :mod:`ssjax.experiment.seeds`), the trials
passed once, unbatched.

Every ``trials.eval_every`` epochs (and after the last) the validation split is scored
(:func:`ssjax.trial.evaluate_trials`, all seeds at once); a seed's best weights are those of its
highest validation accuracy (the first such epoch), kept in the state. At the end the test set
is scored with the final and the best weights, and the work directory receives
``summary.json``, ``history.json`` and ``learning_curve.png``; during the run ``metrics.jsonl``
and TensorBoard scalars ``train_loss``, ``train_accuracy``, ``val_loss``, ``val_accuracy``
(:class:`ssjax.experiment.tb.RunLogger`, step = epoch, in its ``block`` field) and a progress
bar over epochs.

Reference: Zenke & Vogels (2021), Neural Computation 33(4); Cramer et al. (2022), IEEE TNNLS
33(7) (trial training on randman and SHD).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ssjax import plots
from ssjax._types import Array, Weights
from ssjax.data.batches import epoch_key
from ssjax.data.trials import TrialSet
from ssjax.experiment.checkpoint import Checkpointer
from ssjax.experiment.config import (
    Config,
    build_trial_optimizer,
    build_trial_sets,
    build_trial_spec,
    config_to_dict,
    dump_config,
    run_dtype,
)
from ssjax.experiment.report import _write_json, seed_stats
from ssjax.experiment.seeds import seed_ids
from ssjax.experiment.tb import RunLogger
from ssjax.experiment.workdir import config_differences, open_workdir
from ssjax.trial import TrialSpec, TrialState, evaluate_trials, init_trial_state, train_epoch

__all__ = [
    "TrialRun",
    "TrialRunState",
    "epoch_metrics",
    "init_run_state",
    "seed_keys",
    "train_trials",
]


class TrialRunState(NamedTuple):
    """What a trial run checkpoints, every leaf with a leading seed axis ``[S, ...]``: the
    trainer's :class:`ssjax.trial.TrialState`, the best validation accuracy's weights, that
    accuracy (-1 before the first evaluation) and its epoch (0: none yet)."""

    train: TrialState
    best_weights: Weights
    best_accuracy: Array
    best_epoch: Array

    @property
    def weights(self) -> Weights:
        """The trained (latest) weights ``[S, N_l, N_{l+1}]``."""
        return self.train.weights


def seed_keys(ids) -> tuple[Array, Array]:
    """``(init_keys, data_keys)`` ``[S, 2]``: ``jax.random.split(PRNGKey(id))`` per seed id."""
    keys = jnp.stack([jax.random.split(jax.random.PRNGKey(i)) for i in ids])
    return keys[:, 0], keys[:, 1]


def init_run_state(
    spec: TrialSpec, tx: optax.GradientTransformation, ids, dtype, batch_size: int
) -> TrialRunState:
    """Fresh state of the seeds ``ids`` (:func:`ssjax.trial.init_trial_state` from each seed's
    init key, :func:`seed_keys`)."""
    init_keys, _ = seed_keys(ids)
    batch = batch_size if spec.carry_state else None
    state = jax.vmap(lambda k: init_trial_state(spec, tx, k, dtype, batch_size=batch))(init_keys)
    n = len(ids)
    return TrialRunState(
        state, state.weights, jnp.full((n,), -1.0, dtype), jnp.zeros((n,), jnp.int32)
    )


def _batched(fn, batching: str, n_seeds: int, n_batched: int):
    """Jitted ``fn`` over a leading seed axis of its first ``n_batched`` arguments, the rest
    passed unbatched: one seed runs the one-seed program (no axis), several ``lax.map`` or
    ``vmap`` (``auto``: map on CPU), as :func:`ssjax.experiment.seeds.make_segment_fn`."""
    if batching == "auto":
        batching = "map" if jax.devices()[0].platform == "cpu" else "vmap"

    def run(*args):
        per_seed, shared = args[:n_batched], args[n_batched:]
        if n_seeds == 1:
            out = fn(*jax.tree.map(lambda x: x[0], per_seed), *shared)
            return jax.tree.map(lambda x: x[None], out)
        if batching == "map":
            return jax.lax.map(lambda a: fn(*a, *shared), per_seed)
        axes = (0,) * n_batched + (None,) * len(shared)
        return jax.vmap(fn, in_axes=axes)(*per_seed, *shared)

    return jax.jit(run)


class TrialRun:
    """The compiled programs of a trial config: an epoch of all seeds and their evaluation."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.spec = build_trial_spec(cfg)
        self.tx = build_trial_optimizer(cfg)
        self.train_set, self.val_set, self.test_set = build_trial_sets(cfg)
        self.ids = seed_ids(cfg)
        self.dtype = run_dtype(cfg)
        t = cfg.trials
        self.batch_size = t.batch_size
        spec, tx, spikes, drop_last = self.spec, self.tx, t.spikes, t.drop_last

        def one_epoch(state, key, epoch, trials):
            return train_epoch(
                spec, tx, state, trials, epoch_key(key, epoch), drop_last=drop_last, spikes=spikes
            )

        def one_eval(weights, trials):
            out = evaluate_trials(spec, weights, trials, spikes=spikes)
            return out["loss"], out["accuracy"]

        n, batching = len(self.ids), cfg.run.seed_batching
        self._epoch = _batched(one_epoch, batching, n, 2)
        self._eval = _batched(one_eval, batching, n, 1)
        self._placed: dict[int, TrialSet] = {}

    def trials(self, which: TrialSet) -> TrialSet:
        """``which`` with its batch capacity, on the device (once per set)."""
        key = id(which)
        if key not in self._placed:
            self._placed[key] = jax.device_put(which.with_batch(self.batch_size))
        return self._placed[key]

    def init(self) -> TrialRunState:
        return init_run_state(self.spec, self.tx, self.ids, self.dtype, self.batch_size)

    def epoch(self, state: TrialState, epoch: int):
        """Epoch ``epoch`` (0-based) of every seed: ``(state, TrialMetrics [S, n_batches])``."""
        _, data_keys = seed_keys(self.ids)
        return self._epoch(state, data_keys, jnp.int32(epoch), self.trials(self.train_set))

    def evaluate(self, weights: Weights, trials: TrialSet) -> tuple[np.ndarray, np.ndarray]:
        """Mean loss and accuracy ``[S]`` of every seed's ``weights`` on ``trials``."""
        loss, acc = self._eval(weights, self.trials(trials))
        return np.asarray(loss, np.float64), np.asarray(acc, np.float64)


def epoch_metrics(metrics) -> tuple[np.ndarray, np.ndarray]:
    """An epoch's mean loss and accuracy per seed ``[S]`` from its per-batch
    :class:`ssjax.trial.TrialMetrics` ``[S, n_batches]``, weighted by the valid trials."""
    n = np.asarray(metrics.n, np.float64)
    total = np.maximum(n.sum(-1), 1)
    loss = (np.asarray(metrics.loss, np.float64) * n).sum(-1) / total
    acc = (np.asarray(metrics.accuracy, np.float64) * n).sum(-1) / total
    return loss, acc


def _keep_best(run: TrialRunState, acc: np.ndarray, epoch: int) -> TrialRunState:
    """Take each seed's weights where its validation accuracy beats its best so far."""
    # compared in the stored float type, so that a tie stays a tie (the first maximum wins)
    acc = np.asarray(acc).astype(np.asarray(run.best_accuracy).dtype)
    better = jnp.asarray(acc > np.asarray(run.best_accuracy))
    best = jax.tree.map(
        lambda w, b: jnp.where(better.reshape((-1,) + (1,) * (w.ndim - 1)), w, b),
        run.train.weights,
        run.best_weights,
    )
    return TrialRunState(
        run.train,
        best,
        jnp.where(better, jnp.asarray(acc), run.best_accuracy),
        jnp.where(better, jnp.int32(epoch), run.best_epoch),
    )


def _empty_history() -> dict[str, list]:
    return {
        "epoch": [],
        "train_loss": [],
        "train_accuracy": [],
        "eval_epoch": [],
        "val_loss": [],
        "val_accuracy": [],
    }


def train_trials(
    cfg: Config,
    workdir,
    *,
    override_config=False,
    fallback=False,
    progress=True,
    stop_after: int | None = None,
) -> dict:
    """Run (or resume) a trial config in ``workdir``; returns the summary dict.

    ``workdir`` receives ``config.yaml``, ``checkpoints/``, ``metrics.jsonl`` and ``tb/`` as the
    run goes and at the end ``summary.json`` (per seed and as :func:`seed_stats` over seeds:
    final train loss and accuracy, final validation and test accuracy and loss, the best
    validation accuracy, its epoch and its weights' test accuracy), ``history.json`` (per epoch
    ``train_loss``, ``train_accuracy`` ``[epochs][seeds]``; per evaluation ``eval_epoch``,
    ``val_loss``, ``val_accuracy``) and ``learning_curve.png``.

    ``stop_after``: behave as if SIGTERM arrived during epoch ``stop_after`` (1-based): a
    checkpoint is saved and SystemExit(143) raised (a hook for testing resume).

    Raises as :func:`ssjax.experiment.runner.train` (ConfigError, RunError, WorkdirError,
    CheckpointError, NumericalError; SystemExit on a signal).
    """
    workdir = Path(workdir)
    run_dtype(cfg)
    with open_workdir(workdir):
        return _train_locked(cfg, workdir, override_config, fallback, progress, stop_after)


def _train_locked(cfg, workdir, override_config, fallback, progress, stop_after) -> dict:
    from ssjax.experiment.runner import (
        NumericalError,
        RunError,
        _diff_message,
        _Stop,
        _wait,
        check_workdir,
    )

    check_workdir(cfg, workdir, override_config)
    run = TrialRun(cfg)
    t, ids = cfg.trials, run.ids
    config = config_to_dict(cfg)
    ckpt = Checkpointer(workdir / "checkpoints", keep=cfg.run.keep_checkpoints)
    template = run.init()
    history, wall_before = _empty_history(), 0.0
    latest = ckpt.latest()
    if latest is not None:
        start, state, meta = ckpt.restore(template, fallback=fallback)
        diff = config_differences(meta.get("config", {}), config)
        if diff and not override_config:
            head = f"checkpoint step {start} in {ckpt.directory} was saved with a different config"
            raise RunError(_diff_message(head, diff, f"step {start}"))
        history, wall_before = meta["history"], float(meta.get("wall_seconds", 0.0))
        print(f"resuming {workdir} from epoch {start}")
    else:
        start, state = 0, template
    workdir.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, workdir / "config.yaml")  # only now: a refused resume changes nothing

    logger = RunLogger(
        workdir,
        seeds=ids,
        layer_names=[],
        total_blocks=t.epochs,
        start_block=start,
        block_seconds=0.0,
        progress=progress,
        unit="epoch",
    )
    stop = _Stop()
    old_handlers = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    t_wall, epoch = time.perf_counter(), start
    try:
        while epoch < t.epochs and stop.signum is None:
            new_train, m = run.epoch(state.train, epoch)
            _wait((new_train, m))
            loss, acc = epoch_metrics(jax.device_get(m))
            epoch += 1
            if not np.all(np.isfinite(loss)):
                s = int(np.argmax(~np.isfinite(loss)))
                raise NumericalError(
                    f"non-finite training loss in seed {ids[s]} (index {s}) at epoch {epoch}; "
                    f"the last good checkpoint is epoch {ckpt.latest()}"
                )
            state = state._replace(train=new_train)
            history["epoch"].append(epoch)
            history["train_loss"].append(loss.tolist())
            history["train_accuracy"].append(acc.tolist())
            values = {"train_loss": loss, "train_accuracy": acc}
            if run.val_set is not None and (epoch % t.eval_every == 0 or epoch == t.epochs):
                v_loss, v_acc = run.evaluate(state.train.weights, run.val_set)
                state = _keep_best(state, v_acc, epoch)
                history["eval_epoch"].append(epoch)
                history["val_loss"].append(v_loss.tolist())
                history["val_accuracy"].append(v_acc.tolist())
                values.update(val_loss=v_loss, val_accuracy=v_acc)
            logger.log(epoch, values)
            logger.advance(1, cost=float(np.median(loss)))
            if stop_after is not None and epoch == stop_after:
                stop.signum = signal.SIGTERM
            if epoch % t.checkpoint_every == 0 or epoch == t.epochs or stop.signum:
                meta = {
                    "config": config,
                    "epoch": epoch,
                    "history": history,
                    "wall_seconds": wall_before + time.perf_counter() - t_wall,
                }
                ckpt.save(epoch, state, meta)
    finally:
        for s, h in old_handlers.items():
            signal.signal(s, h)
        logger.close()
    wall = wall_before + time.perf_counter() - t_wall
    if stop.signum is not None:
        name = signal.Signals(stop.signum).name
        print(f"{name}: stopped at epoch {epoch}; checkpoint saved; run again to resume")
        raise SystemExit(128 + stop.signum)
    return write_trial_report(cfg, run, workdir, state, history, wall)


def write_trial_report(cfg, run: TrialRun, workdir: Path, state: TrialRunState, history, wall):
    """``summary.json``, ``history.json`` and ``learning_curve.png`` of a finished trial run
    (see :func:`train_trials`); returns the summary."""
    ids = run.ids
    final: dict[str, list] = {
        "train_loss": history["train_loss"][-1],
        "train_accuracy": history["train_accuracy"][-1],
    }
    best: dict[str, list] | None = None
    if run.val_set is not None:
        final["val_loss"] = history["val_loss"][-1]
        final["val_accuracy"] = history["val_accuracy"][-1]
        best = {
            "epoch": np.asarray(state.best_epoch).tolist(),
            "val_accuracy": np.asarray(state.best_accuracy, np.float64).tolist(),
        }
    if run.test_set is not None:
        loss, acc = run.evaluate(state.train.weights, run.test_set)
        final["test_loss"], final["test_accuracy"] = loss.tolist(), acc.tolist()
        if best is not None:
            _, b_acc = run.evaluate(state.best_weights, run.test_set)
            best["test_accuracy"] = b_acc.tolist()
    sizes = {
        "train": run.train_set.n_trials,
        "validation": 0 if run.val_set is None else run.val_set.n_trials,
        "test": 0 if run.test_set is None else run.test_set.n_trials,
    }
    stats = {f"final.{k}": seed_stats(v) for k, v in final.items()}
    if best is not None:
        stats.update({f"best.{k}": seed_stats(v) for k, v in best.items() if k != "epoch"})
    summary = {
        "mode": "trials",
        "config": cfg.source,
        "task": cfg.task.kind,
        "rule": cfg.rule.name,
        "readout": cfg.readout.name,
        "optimizer": cfg.optimizer.name,
        "seeds": ids,
        "epochs": cfg.trials.epochs,
        "n_trials": sizes,
        "wall_seconds": wall,
        "final": final,
        "best": best,
        "median": {k: s["median"] for k, s in stats.items()},
        "stats": stats,
    }
    _write_json(workdir / "summary.json", summary, indent=2)
    _write_json(workdir / "history.json", {"seeds": ids, **history})
    curve = history["val_accuracy"] or history["train_accuracy"]
    x = history["eval_epoch"] if history["val_accuracy"] else history["epoch"]
    plots.seed_curves(
        np.asarray(x),
        np.asarray(curve, np.float64),
        workdir / "learning_curve.png",
        ylabel="validation accuracy" if history["val_accuracy"] else "training accuracy",
        xlabel="epoch",
    )
    return summary
