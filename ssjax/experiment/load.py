"""Read a finished or killed run back, and evaluate its trained networks on new input.

A work directory written by ``ssjax train`` (or one condition's folder of a sweep) holds the
validated ``config.yaml`` and orbax checkpoints of the whole training state
(:mod:`ssjax.experiment.checkpoint`). :func:`load_run` rebuilds the run's library objects from
the config, restores the newest checkpoint that verifies (or a chosen one) and returns a
:class:`LoadedRun`; :func:`evaluate` simulates its networks, every seed at once (``vmap``), on
input the caller gives::

    run = ssjax.load_run("runs/default")
    ev = ssjax.evaluate(run, inputs, targets=targets)  # inputs [T, N_in] or [T, B, N_in]
    ev.van_rossum  # [S, *B, N_out]

A trial run (``task.kind`` of :mod:`ssjax.tasks.trials`) is read the same way: its
``trainer`` is the :class:`ssjax.trial.TrialSpec`, its ``state`` the
:class:`ssjax.experiment.trials.TrialRunState` (``state.weights`` the trained weights,
``state.best_weights`` the best validation accuracy's), ``block`` the epochs trained.

Nothing in the work directory is written, locked or cleaned: a run still training in another
process can be read (its checkpoints are committed atomically), and a killed run is read from
its last complete checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ssjax.experiment.checkpoint import Checkpointer, CheckpointError
from ssjax.experiment.config import (
    Config,
    build_trainer,
    build_trial_optimizer,
    build_trial_spec,
    config_to_dict,
    load_config,
    n_blocks,
    run_dtype,
)
from ssjax.experiment.seeds import init_states, seed_ids
from ssjax.experiment.workdir import config_differences
from ssjax.losses import van_rossum_distance
from ssjax.metrics import window_correct
from ssjax.network import Network, simulate
from ssjax.pattern import EventPattern
from ssjax.tasks import registry
from ssjax.train import TrainSpec
from ssjax.trial import TrialSpec

__all__ = ["Evaluation", "LoadError", "LoadedRun", "evaluate", "load_run"]


class LoadError(RuntimeError):
    """A work directory cannot be read back; the message names the folder or file and why."""


@dataclasses.dataclass(frozen=True)
class LoadedRun:
    """A run read back from its work directory: config, library objects and trained state.

    Attributes:
      workdir: the run's folder (for a sweep condition, the condition's folder).
      config: the validated :class:`~ssjax.experiment.config.Config` of ``config.yaml``.
      trainer: the :class:`~ssjax.train.TrainSpec` built from it (network, rule, optimiser).
      state: the whole :class:`~ssjax.train.TrainState` with a leading seed axis ``[S, ...]``
        (weights ``[S, N_l, N_{l+1}]`` in V, optimiser and rule state, pattern position).
      seeds: the seed ids ``[S]`` (seed ``k`` drew from ``PRNGKey(seeds[k])``).
      block: blocks trained (the checkpoint's step); ``block * trainer.t_b`` simulated seconds.
      total_blocks: blocks the config asks for; ``finished`` when ``block == total_blocks``.
      history: per-period ``van_rossum`` ``[periods][S]``, ``rate_hz`` ``[periods][layers][S]``
        and ``accuracy`` up to ``block``, as stored with the checkpoint.
      summary: ``summary.json`` of a finished run, else None.
    """

    workdir: Path
    config: Config
    trainer: TrainSpec | TrialSpec
    state: Any  # TrainState, or a trial run's TrialRunState
    seeds: tuple[int, ...]
    block: int
    total_blocks: int
    history: dict
    summary: dict | None

    @property
    def network(self) -> Network:
        """The static network description (sizes, neuron model, delays)."""
        return self.trainer.net

    @property
    def finished(self) -> bool:
        """Whether the run trained every block its config asks for."""
        return self.block >= self.total_blocks

    @property
    def trials(self) -> bool:
        """Whether this is a trial run (``block`` counts epochs, ``trainer`` is a TrialSpec)."""
        return isinstance(self.trainer, TrialSpec)

    @property
    def simulated_seconds(self) -> float:
        """Simulated time trained so far (s); a trial run: 0 (it counts epochs)."""
        return 0.0 if isinstance(self.trainer, TrialSpec) else self.block * self.trainer.t_b

    def weights(self, seed: int = 0) -> tuple:
        """The trained weights of seed index ``seed`` (0 ... S-1): ``[N_l, N_{l+1}]`` arrays (V)."""
        if not 0 <= seed < len(self.seeds):
            raise IndexError(f"seed index {seed} out of range: the run has {len(self.seeds)} seeds")
        return tuple(w[seed] for w in self.state.weights)


class Evaluation(NamedTuple):
    """What :func:`evaluate` returns; ``S`` seeds, time-major per seed.

    spikes: per layer (hidden..., output) ``[S, T, *B, N_l]`` spikes (0/1).
    rate_hz: per layer ``[S, *B]`` mean firing rate over units and time (Hz).
    van_rossum: ``[S, *B, N_out]`` normalised van Rossum distance to ``targets`` (about 1 per
      unmatched spike, the rule's filter), or None without targets.
    accuracy: ``[S]`` fraction of the windows of ``window_code`` answered correctly, or None.
    """

    spikes: tuple
    rate_hz: tuple
    van_rossum: jax.Array | None
    accuracy: np.ndarray | None

    @property
    def output(self) -> jax.Array:
        """The output layer's spikes ``[S, T, *B, N_out]``."""
        return self.spikes[-1]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise LoadError(f"{path}: cannot be read: {e}") from None


def _locate(workdir: Path) -> tuple[Path, str | None]:
    """The checkpoint folder of ``workdir``, and for a sweep condition its name in the group."""
    own = workdir / "checkpoints"
    if own.is_dir():
        return own, None
    listing = workdir.parent / "sweep.json"
    if listing.is_file():
        conds = _read_json(listing).get("conditions", [])
        name = next((c["name"] for c in conds if c.get("dir") == workdir.name), None)
        if name is not None:
            for ckpts in sorted(workdir.parent.glob("group-*/checkpoints")):
                try:
                    meta = Checkpointer(ckpts).read_meta()
                except CheckpointError:
                    continue
                if name in meta.get("config", {}):
                    return ckpts, name
            raise LoadError(f"{workdir}: no group checkpoint of sweep condition {name!r} yet")
    raise LoadError(f"{workdir}: no checkpoints/ folder (not an ssjax run, or it never started)")


def load_run(workdir, *, step: int | None = None, fallback: bool = False) -> LoadedRun:
    """Read the run in ``workdir`` (finished or killed) back from its newest checkpoint.

    Args:
      workdir: a folder written by ``ssjax train``, or one condition's folder of a sweep (whose
        runs live in the sweep's group checkpoint).
      step: the checkpoint (block) to read; the newest by default.
      fallback: if that checkpoint is corrupt, read the newest older one that verifies.

    The state is restored against the config's template (shapes, dtypes, paths), and the config
    stored in the checkpoint must equal ``config.yaml`` (a run resumed with
    ``--override-config`` stores the new one in both). Raises :class:`LoadError` (no run there,
    inconsistent files), :class:`~ssjax.experiment.config.ConfigError` (``config.yaml`` invalid
    for this version) or :class:`~ssjax.experiment.checkpoint.CheckpointError` (corrupt, or the
    step does not exist). A float64 run needs ``jax_enable_x64``.
    """
    workdir = Path(workdir)
    if (workdir / "sweep.json").is_file():
        names = [c.get("dir") for c in _read_json(workdir / "sweep.json").get("conditions", [])]
        raise LoadError(
            f"{workdir} is a sweep's folder: load one condition's folder, one of "
            + ", ".join(str(workdir / n) for n in names)
        )
    if not (workdir / "config.yaml").is_file():
        raise LoadError(f"{workdir}: no config.yaml (not an ssjax run folder)")
    cfg = load_config(workdir / "config.yaml")
    if registry.get(cfg.task.kind).trials:
        return _load_trial_run(workdir, cfg, step, fallback)
    trainer = build_trainer(cfg)
    ids = seed_ids(cfg)
    dtype = run_dtype(cfg)
    ckpts, name = _locate(workdir)
    ckpt = Checkpointer(ckpts)
    meta = ckpt.read_meta(step)
    saved = meta.get("config", {})
    runs = slice(0, len(ids))
    if name is not None:  # the group's runs are its conditions' seeds, condition-major
        names = list(saved)
        pos = sum(_n_seeds(saved[n]) for n in names[: names.index(name)])
        total = sum(_n_seeds(c) for c in saved.values())
        runs, saved = slice(pos, pos + len(ids)), saved[name]
    else:
        total = len(ids)
    _check_saved_config(workdir, saved, cfg)
    # shapes only: every run of a group shares the structure, so seed ids do not matter here
    template = jax.eval_shape(lambda: init_states(trainer, list(range(total)), dtype))
    block, state, meta = ckpt.restore(template, step, fallback=fallback)
    state = jax.tree.map(lambda a: a[runs], state)
    summary = _summary(workdir, block >= n_blocks(cfg))
    history = meta.get("history", {})
    if name is not None:
        history = _slice_history(history, runs)
    return LoadedRun(
        workdir=workdir,
        config=cfg,
        trainer=trainer,
        state=state,
        seeds=tuple(ids),
        block=block,
        total_blocks=n_blocks(cfg),
        history=history,
        summary=summary,
    )


def _check_saved_config(workdir: Path, saved: dict, cfg: Config) -> None:
    """LoadError unless the checkpoint's config ``saved`` equals ``config.yaml``'s ``cfg``."""
    diff = config_differences(saved, config_to_dict(cfg))
    if diff:
        lines = "; ".join(f"{k}: {a!r} (checkpoint) vs {b!r} (config.yaml)" for k, a, b in diff)
        raise LoadError(f"{workdir}: config.yaml differs from the checkpoint's config: {lines}")


def _summary(workdir: Path, finished: bool) -> dict | None:
    """``summary.json`` of a finished run, else None."""
    path = workdir / "summary.json"
    return _read_json(path) if finished and path.is_file() else None


def _load_trial_run(workdir: Path, cfg: Config, step, fallback) -> LoadedRun:
    """:func:`load_run` of a trial run (:mod:`ssjax.experiment.trials`)."""
    from ssjax.experiment.trials import init_run_state

    spec, tx = build_trial_spec(cfg), build_trial_optimizer(cfg)
    ids, dtype = seed_ids(cfg), run_dtype(cfg)
    if not (workdir / "checkpoints").is_dir():
        raise LoadError(f"{workdir}: no checkpoints/ folder (the run never saved one)")
    ckpt = Checkpointer(workdir / "checkpoints")
    _check_saved_config(workdir, ckpt.read_meta(step).get("config", {}), cfg)
    template = jax.eval_shape(lambda: init_run_state(spec, tx, ids, dtype, cfg.trials.batch_size))
    epoch, state, meta = ckpt.restore(template, step, fallback=fallback)
    return LoadedRun(
        workdir=workdir,
        config=cfg,
        trainer=spec,
        state=state,
        seeds=tuple(ids),
        block=epoch,
        total_blocks=cfg.trials.epochs,
        history=meta.get("history", {}),
        summary=_summary(workdir, epoch >= cfg.trials.epochs),
    )


def _n_seeds(config: dict) -> int:
    return int(config["run"]["seeds"])


def _slice_history(history: dict, sl: slice) -> dict:
    out = dict(history)
    for key in ("van_rossum", "accuracy"):
        out[key] = [row[sl] for row in history.get(key, [])]
    out["rate_hz"] = [[layer[sl] for layer in row] for row in history.get("rate_hz", [])]
    return out


def _dense_inputs(inputs, dtype) -> jax.Array:
    if isinstance(inputs, EventPattern):
        inputs = inputs.to_dense(np.uint8)
    return jnp.asarray(inputs, dtype)


def evaluate(
    run: LoadedRun,
    inputs,
    *,
    targets=None,
    window_code=None,
    seeds=None,
) -> Evaluation:
    """Simulate the run's trained networks on ``inputs``, from rest, without learning.

    Args:
      run: from :func:`load_run`.
      inputs: ``[T, N_in]`` or ``[T, *B, N_in]`` spikes per step of ``dt = neuron.dt`` (0/1),
        or an :class:`~ssjax.pattern.EventPattern` (one period).
      targets: optional target spike counts ``[T, *B, N_out]``: the distance
        ``D_i = sum_t e_i[t]^2 dt / sum_k alpha_k^2 dt``, ``e = alpha * (S^ - S)`` with the
        rule's van Rossum filter (:func:`ssjax.losses.van_rossum_distance`).
      window_code: optional window annotation ``[T, N_out]`` of a window task (xor, randman;
        :func:`ssjax.metrics.window_correct`): the accuracy per seed. Needs unbatched inputs.
      seeds: seed indices (0 ... S-1) to evaluate; all by default.

    All selected seeds run as one ``vmap``ped simulation (:func:`ssjax.network.simulate`).
    """
    net = run.network
    dtype = run.state.weights[0].dtype
    x = _dense_inputs(inputs, dtype)
    if x.ndim < 2 or x.shape[-1] != net.sizes[0]:
        raise ValueError(
            f"inputs must be [T, *B, {net.sizes[0]}] (the network's N_in), got {tuple(x.shape)}"
        )
    idx = np.arange(len(run.seeds)) if seeds is None else np.asarray(seeds, int).reshape(-1)
    if idx.size == 0 or idx.min() < 0 or idx.max() >= len(run.seeds):
        raise IndexError(f"seeds {idx.tolist()} out of range: the run has {len(run.seeds)} seeds")
    weights = tuple(w[idx] for w in run.state.weights)
    spikes = jax.jit(jax.vmap(lambda w: simulate(net, w, x)[1].spikes))(weights)
    dt = net.neuron.dt
    rates = tuple(s.mean(axis=(1, -1)) / dt for s in spikes)
    vr = None
    if targets is not None:
        tgt = jnp.asarray(targets, dtype)
        if tgt.shape != x.shape[:-1] + (net.sizes[-1],):
            raise ValueError(
                f"targets must be {x.shape[:-1] + (net.sizes[-1],)} ([T, *B, N_out]), "
                f"got {tuple(tgt.shape)}"
            )
        if isinstance(run.trainer, TrialSpec):
            raise ValueError("targets: a trial run has a classification readout, not targets")
        loss = run.trainer.make_rule().loss
        vr = jax.vmap(
            lambda s: van_rossum_distance(
                tgt, s, dt, tau_rise=loss.tau_rise, tau_decay=loss.tau_decay
            )
        )(spikes[-1])
    acc = None
    if window_code is not None:
        if x.ndim != 2:
            raise ValueError("window_code needs unbatched inputs [T, N_in]")
        code = np.asarray(window_code)
        ok = np.asarray(jax.vmap(lambda s: window_correct(s, code))(spikes[-1]), np.float64)
        acc = np.asarray(ok.mean(-1)) if ok.shape[-1] else np.full(len(idx), np.nan)
    return Evaluation(spikes=spikes, rate_hz=rates, van_rossum=vr, accuracy=acc)


def describe(run: LoadedRun) -> str:
    """One line about ``run``: folder, sizes, seeds, blocks trained and whether it finished."""
    unit = "epoch" if run.trials else "block"
    state = "finished" if run.finished else f"stopped at {unit} {run.block} of {run.total_blocks}"
    return (
        f"{os.fspath(run.workdir)}: {run.config.rule.name} on {list(run.network.sizes)}, "
        f"{len(run.seeds)} seeds, "
        + (f"{run.block} epochs" if run.trials else f"{run.simulated_seconds:g} s simulated")
        + f" ({state})"
    )
