"""Sweeps as one program against the same conditions run one after another (issue 16).

(a) The paper's Fig. 1 grid (RMaxProp, RMSprop, fixed rate x 5 values of r0 = 15 conditions on
100-4-1, symmetric feedback, the SSBM poisson task; ``ssjax reproduce fig1``'s conditions) for
``seeds`` seeds and ``blocks`` blocks each: sequentially (one program per condition, as before
sweeps) against :mod:`ssjax.experiment.sweep` (3 programs: r0 is traced, the optimiser's name is
structure), both with ``map`` and ``vmap`` seed batching. Wall time includes compilation, as a
user sees it; ``run`` is the best of ``repeats`` executions of the compiled programs.

(b) Scaling: 1, 4, 16, 64 conditions (r0 values) x 16 seeds of 100-4-1 as one ``vmap`` program.

    python -m benchmarks.sweep [--quick]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from ssjax.experiment.config import build_task, build_trainer
from ssjax.experiment.figures import get_figure
from ssjax.experiment.paths import find_config
from ssjax.experiment.seeds import init_states, make_segment_fn, seed_ids, seed_mesh
from ssjax.experiment.sweep import Condition, conditions, group_runs, groups


def _block(x):
    jax.block_until_ready(x)
    return x


def _fig1_conditions(seeds: int, blocks: int) -> list[Condition]:
    fig = get_figure("fig1")
    path = find_config("fig1")
    extra = [f"run.seeds={seeds}", f"run.duration={blocks * 0.5}"]
    points = {
        "grid": {},
        "zip": {
            "optimizer.name": [
                dict(o.split("=") for o in c.overrides)["optimizer.name"] for c in fig.conditions
            ],  # fmt: skip
            "optimizer.r0": [
                float(dict(o.split("=") for o in c.overrides)["optimizer.r0"])
                for c in fig.conditions
            ],  # fmt: skip
        },
    }
    return conditions(path, extra, points)


def _sequential(conds, blocks, batching, repeats):
    t0 = time.perf_counter()
    fns = []
    for c in conds:
        tr = build_trainer(c.cfg)
        x, y = (jnp.asarray(a) for a in build_task(c.cfg))
        state = init_states(tr, seed_ids(c.cfg), jnp.float32)
        fn = make_segment_fn(tr, x, y, seed_mesh(1), blocks, batching)
        _block(fn(state))
        fns.append((fn, state))
    wall = time.perf_counter() - t0
    run = min(_timed(lambda: [_block(f(s)) for f, s in fns]) for _ in range(repeats))
    return wall, run


def _swept(conds, blocks, batching, repeats):
    t0 = time.perf_counter()
    fns = []
    x, y = (jnp.asarray(a) for a in build_task(conds[0].cfg))
    for idx in groups(conds):
        g = group_runs(conds, idx, jnp.float32)
        fn = make_segment_fn(g.trainer, x, y, seed_mesh(1), blocks, batching, g.hyper,
                             per_run=True)  # fmt: skip
        _block(fn(g.state))
        fns.append((fn, g.state))
    wall = time.perf_counter() - t0
    run = min(_timed(lambda: [_block(f(s)) for f, s in fns]) for _ in range(repeats))
    return wall, run, len(fns)


def _timed(f) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def run(quick: bool, repeats: int, log) -> list[dict]:
    """The records of both parts (suite ``sweep`` of benchmarks.run)."""
    seeds, blocks = (4, 4) if quick else (20, 10)
    conds = _fig1_conditions(seeds, blocks)
    recs = []
    for batching in ("map", "vmap"):
        w_seq, r_seq = _sequential(conds, blocks, batching, repeats)
        w_sw, r_sw, n_prog = _swept(conds, blocks, batching, repeats)
        rec = {
            "suite": "sweep", "kind": "fig1", "batching": batching, "conditions": len(conds),
            "seeds": seeds, "blocks": blocks, "programs": n_prog,
            "sequential_wall_s": w_seq, "sequential_run_s": r_seq,
            "sweep_wall_s": w_sw, "sweep_run_s": r_sw,
            "wall_ratio": w_seq / w_sw, "run_ratio": r_seq / r_sw,
        }  # fmt: skip
        log(
            f"sweep fig1 {batching}: sequential {w_seq:.1f} s (run {r_seq:.3f}), sweep "
            f"{w_sw:.1f} s (run {r_sw:.3f}): {rec['wall_ratio']:.1f}x wall"
        )
        recs.append(rec)
    path = find_config("default")
    for n in (1, 4) if quick else (1, 4, 16, 64):
        r0 = np.geomspace(1e-4, 1e-2, n).tolist()
        cs = conditions(
            path, ["run.seeds=16", "run.seed_batching=vmap"], {"grid": {"optimizer.r0": r0}}
        )
        w, r, _ = _swept(cs, 10, "vmap", repeats)
        recs.append({"suite": "sweep", "kind": "scaling", "conditions": n, "seeds": 16,
                     "blocks": 10, "wall_s": w, "run_s": r, "run_ms_per_run_block":
                     1e3 * r / (n * 16 * 10)})  # fmt: skip
        log(f"sweep scaling {n} x 16: run {r:.3f} s per 10 blocks, wall {w:.1f} s")
    return recs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.sweep", description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    for r in run(
        args.quick, args.repeats, lambda m: print(f"[{time.perf_counter() - t0:6.1f}] {m}")
    ):
        print(r)
    return 0


if __name__ == "__main__":
    from ssjax.xla import configure_cpu_from_env

    configure_cpu_from_env()
    raise SystemExit(main())
