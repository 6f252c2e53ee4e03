"""Seed scaling and checkpoint/logging overhead of the training program (issue: trainer).

Usage: ``python scripts/bench_seeds.py [--blocks 40]``. Times the compiled, vmapped run of the
100-4-1 task (``configs/fig4_hidden.yaml``) for 1, 4, 16 and 64 seeds, and the whole ``train``
of ``configs/default.yaml`` with its default log/checkpoint intervals against the same run with
neither (intervals = the whole run), in one process.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from ssjax.experiment.config import build_task, build_trainer
from ssjax.experiment.runner import prepare, train
from ssjax.experiment.seeds import init_states, make_segment_fn, seed_mesh

ROOT = Path(__file__).resolve().parents[1]


def seed_scaling(blocks: int) -> None:
    cfg = prepare(ROOT / "ssjax" / "configs" / "fig4_hidden.yaml")
    tr = build_trainer(cfg)
    x, y = (jnp.asarray(a) for a in build_task(cfg))
    print(f"100-4-1, {blocks} blocks of 0.5 s ({blocks * 0.5:g} s simulated) per seed")
    print(f"{'batching':>8} {'seeds':>6} {'wall s':>8} {'s per seed':>11} {'x one seed':>11}")
    for batching in ("vmap", "map"):
        base = None
        for s in (1, 4, 16, 64):
            st = init_states(tr, list(range(s)), jnp.float32)
            f = make_segment_fn(tr, x, y, seed_mesh(s), blocks, batching)
            jax.block_until_ready(f(st))  # compile
            t = time.perf_counter()
            jax.block_until_ready(f(st))
            wall = time.perf_counter() - t
            base = base or wall
            print(f"{batching:>8} {s:>6} {wall:>8.3f} {wall / s:>11.4f} {wall / base:>11.2f}")


def overhead() -> None:
    path = ROOT / "ssjax" / "configs" / "default.yaml"
    walls = {}
    for name, sets in (
        ("default intervals", []),
        (
            "no logs/checkpoints",
            ["run.log_every=1000", "run.raster_every=1000", "run.checkpoint_every=1000"],
        ),
    ):
        cfg = prepare(path, overrides=sets)
        with tempfile.TemporaryDirectory() as d:
            train(cfg, Path(d) / "warm", progress=False)  # compile caches, warm disk
            t = time.perf_counter()
            train(cfg, Path(d) / "run", progress=False)
            walls[name] = time.perf_counter() - t
    a, b = walls["default intervals"], walls["no logs/checkpoints"]
    r = prepare(path).run
    print(
        f"default.yaml (4 seeds x 500 s): {a:.2f} s with logs every {r.log_every} blocks, "
        f"rasters every {r.raster_every} and checkpoints every {r.checkpoint_every}; {b:.2f} s "
        f"with one of each at the end; overhead {100 * (a - b) / b:.1f}%"
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=40)
    args = ap.parse_args(argv)
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {len(jax.devices())} device(s)")
    seed_scaling(args.blocks)
    overhead()


if __name__ == "__main__":
    from ssjax.xla import configure_cpu_from_env

    configure_cpu_from_env()  # before JAX starts: the settings `ssjax train` runs under
    main()
