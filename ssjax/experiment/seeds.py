"""Seeds as one compiled program: seed ids, the ``seeds`` mesh, sharding, ``map`` or ``vmap``.

Seed ``k`` of a run with ``run.seed = r`` has id ``r + k`` and draws everything (weights,
feedback matrices) from ``jax.random.PRNGKey(r + k)``; a single-seed run with ``run.seed = r + k``
reproduces it bit for bit with ``map`` batching (the CPU default); with ``vmap`` to float
rounding (see :func:`make_segment_fn`). With several devices the seeds are sharded over a
``seeds`` mesh axis and every device runs the one-device program on its own seeds.

Several processes (``ssjax train --distributed``, :mod:`ssjax.experiment.distributed`): each
calls ``jax.distributed.initialize`` first and has its own CPU devices; ``jax.devices()`` then
lists every process's devices, the ``seeds`` mesh takes the same number from each (the run
count must be a multiple of the process count), every process places the same whole state
with :func:`shard_state` and computes its own shards, and the runner gathers the results
(``process_allgather``). With ``map`` batching the results are bit-identical to one process's
(tested with 2 processes in ``tests/experiment/test_distributed.py``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ssjax.experiment.config import Config
from ssjax.train import Hyper, TrainSpec, TrainState, init_train_state, run_blocks, shared_leaves

__all__ = [
    "SegmentFn",
    "init_states",
    "make_segment_fn",
    "seed_ids",
    "seed_mesh",
    "shard_state",
]


def seed_ids(cfg: Config) -> list[int]:
    """Seed ids of a run: ``run.seed, run.seed + 1, ...``."""
    return [cfg.run.seed + k for k in range(cfg.run.seeds)]


def init_states(trainer: TrainSpec, ids, dtype) -> TrainState:
    """Fresh states with a leading seed axis, seed ``k`` from ``PRNGKey(ids[k])``."""
    keys = jnp.stack([jax.random.PRNGKey(i) for i in ids])
    return jax.vmap(lambda k: init_train_state(trainer, k, dtype))(keys)


def seed_mesh(n_seeds: int) -> Mesh:
    """A 1-D ``seeds`` mesh over the largest number of devices that divides ``n_seeds``.

    With several processes (:mod:`ssjax.experiment.distributed`) it takes the same number of
    devices from each, in process order, so process ``p`` of ``P`` computes the ``p``-th
    ``1/P`` of the seeds; raises ValueError when ``n_seeds`` is not a multiple of ``P``."""
    n_proc = jax.process_count()
    if n_proc == 1:
        devs = jax.devices()
        n = max(d for d in range(1, len(devs) + 1) if n_seeds % d == 0)
        return Mesh(np.asarray(devs[:n]), ("seeds",))
    if n_seeds % n_proc:
        raise ValueError(
            f"{n_seeds} runs cannot be shared evenly by {n_proc} processes; use a multiple of "
            f"{n_proc} seeds (run.seeds; in a sweep, conditions x seeds per group)"
        )
    by_proc: dict[int, list] = {}
    for d in sorted(jax.devices(), key=lambda d: (d.process_index, d.id)):
        by_proc.setdefault(d.process_index, []).append(d)
    local = min(len(v) for v in by_proc.values())
    k = max(d for d in range(1, local + 1) if n_seeds % (d * n_proc) == 0)
    return Mesh(np.asarray([d for p in sorted(by_proc) for d in by_proc[p][:k]]), ("seeds",))


def make_segment_fn(
    trainer: TrainSpec,
    pattern_in,
    pattern_tgt,
    mesh: Mesh,
    length: int,
    batching: str = "vmap",
    hyper: Hyper | None = None,
    *,
    per_run: bool = False,
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

    ``per_run``: ``hyper`` (required) has a leading axis over the runs, like the state, and run
    ``r`` trains with ``hyper[r]`` (a sweep's condition x seed runs in one program,
    :mod:`ssjax.experiment.sweep`); with ``map`` each run is then bit-identical to its condition
    run alone, with ``vmap`` equal to float rounding.
    """
    if per_run and hyper is None:
        raise ValueError("make_segment_fn(per_run=True) needs hyper with a leading run axis")
    if batching == "auto":
        batching = "map" if mesh.devices.flat[0].platform == "cpu" else "vmap"
    spec = PartitionSpec("seeds")
    static = trainer.structure()

    def one(s, h):
        return run_blocks(static, pattern_in, pattern_tgt, s, length, h)

    def one_shared(s, h):
        return run_blocks(static, pattern_in, pattern_tgt, s, length, h, shared_inputs=True)

    h_axis = 0 if per_run else None

    def local(state, h):
        if state.pos.shape[0] == 1:  # one seed: the one-seed program, without a seed axis
            h1 = jax.tree.map(lambda a: a[0], h) if per_run else h
            new, metrics = one(jax.tree.map(lambda a: a[0], state), h1)
            return jax.tree.map(lambda a: a[None], (new, metrics))
        if batching == "map":
            if per_run:
                return jax.lax.map(lambda sh: one(*sh), (state, h))
            return jax.lax.map(lambda s: one(s, h), state)
        shared = shared_leaves(static, state)
        axes = jax.tree.map(lambda keep: None if keep else 0, shared)
        unbatched = jax.tree.map(lambda a, keep: a[0] if keep else a, state, shared)
        new, metrics = jax.vmap(one_shared, in_axes=(axes, h_axis), out_axes=(axes, 0))(
            unbatched, h
        )
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
                in_specs=(spec, spec if per_run else PartitionSpec()),
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
    """Place every leaf's leading (seed) axis on the ``seeds`` mesh axis.

    With several processes every process passes the same whole ``state`` (from the same seeds,
    or :func:`ssjax.experiment.distributed.broadcast`) and keeps its own shards."""
    sharding = NamedSharding(mesh, PartitionSpec("seeds"))
    if jax.process_count() > 1:  # from host memory: a local device's array is not global
        state = jax.tree.map(np.asarray, state)
    return jax.device_put(state, sharding)
