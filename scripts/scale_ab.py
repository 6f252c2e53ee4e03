"""The scale benchmark's segment, this tree's SuperSpike event route against an earlier commit's,
compiled in one process and timed interleaved (A, B, A, B, ...): a ratio that a shared,
noisy machine does not bias.

Usage: ``python scripts/scale_ab.py --base REV [--blocks 20] [--rounds 3]``. The task, config
and program are those of :mod:`benchmarks.scale` (1000-256-500, 33.1 s period, one seed,
``method: event``, the CPU tuning of ``ssjax train``); only the rule's blocked route
(``ssjax/rules/superspike/dense.py`` and ``event.py``) is taken from ``REV``, loaded as separate
modules, so the two programs share everything else. Prints wall s per simulated s of each, per
round, and the ratio.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _old_route(rev: str, folder: Path):
    """``block_blocked`` of commit ``rev``: its event.py and dense.py as modules of their own."""
    mods = {}
    for name in ("event", "dense"):
        src = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{rev}:ssjax/rules/superspike/{name}.py"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        src = src.replace("from ssjax.rules.superspike.event import", "from _ab_event import")
        path = folder / f"_ab_{name}.py"
        path.write_text(src)
        spec = importlib.util.spec_from_file_location(f"_ab_{name}", path)
        assert spec is not None and spec.loader is not None
        mods[name] = importlib.util.module_from_spec(spec)
        sys.modules[f"_ab_{name}"] = mods[name]
        spec.loader.exec_module(mods[name])
    return mods["dense"].block_blocked


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="the commit whose event route is compared")
    ap.add_argument("--blocks", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)

    from ssjax.xla import configure_cpu_from_env

    configure_cpu_from_env()  # the settings `ssjax train` runs under
    import jax
    import jax.numpy as jnp

    import ssjax.rules.superspike.routes as routes
    from benchmarks.scale import SIZES, _config_text, write_task
    from ssjax.experiment.config import build_patterns, build_trainer, load_config
    from ssjax.experiment.seeds import init_states, make_segment_fn, seed_mesh, shard_state

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        inp, tgt = write_task(folder, 33.1, SIZES)
        (folder / "scale.yaml").write_text(_config_text(inp, tgt, 33.1, SIZES, args.blocks))
        cfg = load_config(folder / "scale.yaml")
        trainer = build_trainer(cfg)
        x, y = build_patterns(cfg, trainer.block_steps)
        state0 = shard_state(init_states(trainer, [0], jnp.float32), seed_mesh(1))
        this = routes.block_blocked
        fns = {}
        for name, route in ((args.base, _old_route(args.base, folder)), ("this tree", this)):
            routes.block_blocked = route  # read when the segment is traced
            try:
                fn = make_segment_fn(trainer, x, y, seed_mesh(1), args.blocks, "map")
                t = time.perf_counter()
                fns[name] = fn.lower(state0).compile()
            finally:
                routes.block_blocked = this
            print(f"{name}: compiled in {time.perf_counter() - t:.1f} s", flush=True)
    states = {n: jax.block_until_ready(f(state0))[0] for n, f in fns.items()}  # warm-up
    times: dict[str, list[float]] = {n: [] for n in fns}
    sim = args.blocks * trainer.t_b
    for _ in range(args.rounds):
        for n, f in fns.items():
            t = time.perf_counter()
            states[n] = jax.block_until_ready(f(states[n]))[0]
            times[n].append((time.perf_counter() - t) / sim)
    for n, v in times.items():
        print(f"{n}: wall s per simulated s, best {min(v):.3f}, rounds {[round(a, 3) for a in v]}")
    a, b = times.values()
    ratios = [round(p / q, 2) for p, q in zip(a, b, strict=True)]
    print(f"ratio {args.base} / this tree: best {min(a) / min(b):.2f}, rounds {ratios}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
