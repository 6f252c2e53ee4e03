"""The training program: many seeds as one compiled run, segments, checkpoints, logs, resume.

``ssjax train CONFIG`` ends up in :func:`train`. A run is ``n_blocks`` blocks of the online
trainer (:mod:`ssjax.train`), ``vmap``ped over seeds (or ``lax.map``ped on CPU, where that is
faster: ``run.seed_batching``) and, with several devices, sharded over a ``seeds`` mesh axis.
The blocks are executed as ``lax.scan`` segments of a fixed length, split only where logs,
raster images or checkpoints are due; the state carried between segments is the whole
:class:`ssjax.train.TrainState`, so a resumed run is bit-identical to an uninterrupted one (CPU).

Seeds: seed ``k`` of a run with ``run.seed = r`` has id ``r + k`` and draws everything (weights,
feedback matrices) from ``jax.random.PRNGKey(r + k)``; a single-seed run with ``run.seed = r + k``
reproduces it bit for bit with ``map`` batching (the CPU default); with ``vmap`` to float
rounding (see :func:`make_segment_fn`).

Multi-host: start each process with ``jax.distributed.initialize()``; ``jax.devices()`` then
lists every host's devices, the ``seeds`` mesh spans them all, and each process feeds and reads
its addressable shards (the seed count must divide evenly). Checkpoints are written by orbax
from every process to a shared directory.

Reference: SUPERSPIKE.md; DESIGN.md (train, checkpoint, logging).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import signal
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ssjax import plots
from ssjax.experiment.checkpoint import Checkpointer
from ssjax.experiment.config import (
    WINDOW_TASKS,
    Config,
    ConfigError,
    build_heldout,
    build_task,
    build_trainer,
    config_to_dict,
    diff_configs,
    dump_config,
    load_config,
    n_blocks,
)
from ssjax.experiment.paths import UnknownConfigError, find_config
from ssjax.experiment.tb import RunLogger
from ssjax.metrics import PeriodAccumulator, add_seed_blocks, heldout_accuracy, period_record
from ssjax.network import simulate
from ssjax.train import Hyper, TrainSpec, TrainState, init_train_state, run_blocks, shared_leaves


class RunError(RuntimeError):
    """A run cannot start or continue (config mismatch with the work directory, ...)."""


class NumericalError(RuntimeError):
    """A seed produced NaN or Inf; the message names seed, block and the first bad leaf."""


def seed_ids(cfg: Config) -> list[int]:
    """Seed ids of a run: ``run.seed, run.seed + 1, ...``."""
    return [cfg.run.seed + k for k in range(cfg.run.seeds)]


def init_states(trainer: TrainSpec, ids, dtype) -> TrainState:
    """Fresh states with a leading seed axis, seed ``k`` from ``PRNGKey(ids[k])``."""
    keys = jnp.stack([jax.random.PRNGKey(i) for i in ids])
    return jax.vmap(lambda k: init_train_state(trainer, k, dtype))(keys)


def seed_mesh(n_seeds: int) -> Mesh:
    """A 1-D ``seeds`` mesh over the largest number of devices that divides ``n_seeds``."""
    devs = jax.devices()
    n = max(d for d in range(1, len(devs) + 1) if n_seeds % d == 0)
    return Mesh(np.asarray(devs[:n]), ("seeds",))


def make_segment_fn(
    trainer: TrainSpec,
    pattern_in,
    pattern_tgt,
    mesh: Mesh,
    length: int,
    batching: str = "vmap",
    hyper: Hyper | None = None,
):
    """Jitted ``state -> (state, metrics)`` running ``length`` blocks for all seeds.

    ``trainer`` is compiled in as its :meth:`~ssjax.train.TrainSpec.structure`; the float
    hyper-parameters ``hyper`` (default :meth:`~ssjax.train.TrainSpec.hyper` in the state's
    float type) are passed as values, so specs that differ only in them share the program.

    ``batching``: ``vmap`` runs a device's seeds as one batched program (what accelerators
    need); ``map`` runs them one after another with ``lax.map``; ``auto`` picks ``map`` on CPU.
    With several devices each runs the same program on its own seeds under ``shard_map``.

    Under ``vmap`` the position in the pattern is passed unbatched (all seeds are always at the
    same step), so the block's inputs and everything that depends on them alone (the input
    layer's PSP trace, the product of that trace with all seeds' post-side signals) are computed
    once for all seeds: on CPU, 64 seeds of 100-4-1 run about 4x faster than under ``map``.
    Bit-exactness: ``map`` computes every seed with the one-seed program, so a seed's result
    never depends on the others (bit-identical to a single-seed run); under ``vmap`` the shared
    products have a seed-count-dependent shape, and BPTT's autodiff reductions are vectorised
    differently for some batch sizes, so seeds agree with single-seed runs to float rounding.
    A given config (seed count included) is bit-reproducible either way.
    """
    if batching == "auto":
        batching = "map" if mesh.devices.flat[0].platform == "cpu" else "vmap"
    spec = PartitionSpec("seeds")
    static = trainer.structure()

    def one(s, h):
        return run_blocks(static, pattern_in, pattern_tgt, s, length, h)

    def one_shared(s, h):
        return run_blocks(static, pattern_in, pattern_tgt, s, length, h, shared_inputs=True)

    def local(state, h):
        if state.pos.shape[0] == 1:  # one seed: the one-seed program, without a seed axis
            new, metrics = one(jax.tree.map(lambda a: a[0], state), h)
            return jax.tree.map(lambda a: a[None], (new, metrics))
        if batching == "map":
            return jax.lax.map(lambda s: one(s, h), state)
        shared = shared_leaves(static, state)
        axes = jax.tree.map(lambda keep: None if keep else 0, shared)
        unbatched = jax.tree.map(lambda a, keep: a[0] if keep else a, state, shared)
        new, metrics = jax.vmap(one_shared, in_axes=(axes, None), out_axes=(axes, 0))(unbatched, h)
        n = state.pos.shape[0]
        new = jax.tree.map(
            lambda a, keep: jnp.broadcast_to(a, (n, *a.shape)) if keep else a, new, shared
        )
        return new, metrics

    if mesh.devices.size == 1:
        fn = jax.jit(local)
    else:
        # shard_map runs exactly the one-device program on each device's seeds (an
        # automatically partitioned program may fuse and sum differently)
        fn = jax.jit(
            jax.shard_map(
                local,
                mesh=mesh,
                in_specs=(spec, PartitionSpec()),
                out_specs=spec,
                check_vma=False,
            )
        )

    return SegmentFn(fn, trainer, hyper)


class SegmentFn:
    """``state -> (state, metrics)`` of :func:`make_segment_fn`: the jitted program with the
    hyper-parameters bound as its second argument (default: the spec's, in the state's float
    type). ``lower(state).compile()`` gives the compiled program, callable on ``state`` alone."""

    def __init__(self, jitted, trainer: TrainSpec, hyper: Hyper | None):
        self.jitted, self.trainer, self.hyper = jitted, trainer, hyper

    def hyper_for(self, state) -> Hyper:
        """The hyper-parameters passed with ``state``."""
        return self.trainer.hyper(state.ema.dtype) if self.hyper is None else self.hyper

    def __call__(self, state):
        return self.jitted(state, self.hyper_for(state))

    def lower(self, state):
        h = self.hyper_for(state)
        return _Bound(self.jitted.lower(state, h), h)


class _Bound:
    """A lowered or compiled program with the hyper-parameters bound (delegates the rest)."""

    def __init__(self, inner, hyper):
        self.inner, self.hyper = inner, hyper

    def compile(self):
        return _Bound(self.inner.compile(), self.hyper)

    def __call__(self, state):
        return self.inner(state, self.hyper)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def shard_state(state, mesh: Mesh):
    """Place every leaf's leading (seed) axis on the ``seeds`` mesh axis."""
    return jax.device_put(state, NamedSharding(mesh, PartitionSpec("seeds")))


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


@functools.lru_cache(maxsize=8)
def _output_sim(trainer: TrainSpec):
    # compiled once per run: an eager simulate would re-trace its scans at every raster
    def run(weights, x, net_state):
        return simulate(trainer.net, weights, x, net_state)[1].spikes[-1]

    return jax.jit(run)


def _output_raster(trainer: TrainSpec, state, pattern_in, seed: int):
    """One pattern period of seed ``seed``'s output from its current state, in pattern time."""
    st = jax.tree.map(lambda a: a[seed], state)
    period = pattern_in.shape[0]
    idx = (st.pos + jnp.arange(period)) % period
    x = pattern_in[idx].astype(st.ema.dtype)
    spikes = _output_sim(trainer)(st.weights, x, trainer.make_rule().network_state(st.rule))
    out = np.zeros((period, trainer.net.sizes[-1]), np.float32)
    out[np.asarray(idx)] = np.asarray(spikes)
    return out


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
    pattern_in, pattern_tgt = (jnp.asarray(a) for a in build_task(cfg))
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
    period_steps, dt = pattern_in.shape[0], trainer.net.neuron.dt
    acc = PeriodAccumulator(period_steps, partial)
    layer_names = [f"hidden{l}" for l in range(trainer.net.n_layers - 1)] + ["output"]
    logger = RunLogger(
        workdir,
        seeds=ids,
        layer_names=layer_names,
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
                logger.log(block, _values(history, m, layer_names))
            if block % cfg.run.raster_every == 0 or block == total:
                png = plots.output_vs_target(
                    _output_raster(trainer, state, pattern_in, 0),
                    np.asarray(pattern_tgt),
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
    return _finish(cfg, trainer, workdir, ids, history, state, pattern_in, pattern_tgt, wall)


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


def _finish(cfg, trainer, workdir, ids, history, state, pattern_in, pattern_tgt, wall):
    vr = np.asarray(history["van_rossum"], np.float64).reshape(-1, len(ids))
    tail = max(1, len(vr) // 10)
    final_vr = vr[-tail:].mean(0) if len(vr) else np.full(len(ids), np.nan)
    rates = np.asarray(history["rate_hz"], np.float64)  # [periods, layers, seeds]
    layer_names = [f"hidden{l}" for l in range(trainer.net.n_layers - 1)] + ["output"]
    final_rates = {
        n: (rates[-tail:, i].mean(0).tolist() if len(rates) else [])
        for i, n in enumerate(layer_names)
    }
    has_feedback = cfg.rule.name == "superspike" and trainer.net.n_layers > 1
    summary = {
        "config": cfg.source,
        "rule": cfg.rule.name,
        "feedback": cfg.feedback.kind if has_feedback else None,
        "seeds": ids,
        "simulated_seconds": n_blocks(cfg) * trainer.t_b,
        "wall_seconds": wall,
        "final": {"van_rossum": final_vr.tolist(), "rate_hz": final_rates},
        "median": {
            "van_rossum": float(np.median(final_vr)),
            "rate_hz": {n: float(np.median(v)) if v else None for n, v in final_rates.items()},
        },
        "periods": len(vr),
    }
    if history["accuracy"]:
        accs = np.asarray(history["accuracy"], np.float64)[-tail:].mean(0)
        summary["final"]["accuracy"] = accs.tolist()
        summary["median"]["accuracy"] = float(np.median(accs))
    if has_feedback and cfg.feedback.kind == "random":
        # the paper's Fig. 4: random feedback fails only when all feedback weights are negative
        neg = np.ones(len(ids), bool)
        for f in state.rule.feedback:
            neg &= np.asarray(f < 0).reshape(len(ids), -1).all(1)
        summary["final"]["feedback_all_negative"] = neg.tolist()
    if cfg.task.kind in WINDOW_TASKS and cfg.task.n_heldout > 0:
        acc = heldout_accuracy(trainer.net, state.weights, *build_heldout(cfg))
        summary["final"]["heldout_accuracy"] = acc.tolist()
        summary["median"]["heldout_accuracy"] = float(np.median(acc))
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2))
    period_s = pattern_in.shape[0] * trainer.net.neuron.dt
    hist = {"period_seconds": period_s, "layers": layer_names, **history}
    (workdir / "history.json").write_text(json.dumps(hist))
    if len(vr):
        plots.seed_curves(
            np.asarray(history["period"]) * period_s,
            vr,
            workdir / "learning_curve.png",
            ylabel="van Rossum distance per period",
            xlabel="time (s)",
        )
    out = _output_raster(trainer, state, pattern_in, 0)
    np.savez_compressed(
        workdir / "final_output.npz",
        output=out.astype(np.uint8),
        target=np.asarray(pattern_tgt).astype(np.int8),
        dt=trainer.net.neuron.dt,
        seed=ids[0],
    )
    plots.output_vs_target(
        out,
        np.asarray(pattern_tgt),
        trainer.net.neuron.dt,
        workdir / "raster.png",
        title=f"seed {ids[0]}: output (black) vs target (red)",
    )
    return summary


__all__ = [
    "ConfigError",
    "NumericalError",
    "RunError",
    "check_workdir",
    "prepare",
    "train",
]
