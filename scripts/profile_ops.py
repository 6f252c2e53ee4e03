"""Where a training segment's time goes, per compiled XLA operation (CPU), from a profiler trace.

Usage: ``python scripts/profile_ops.py [--sizes 200 256 200] [--seeds 1] [--method event]
[--blocks 10] [--top 30]``. Runs ``--blocks`` SuperSpike blocks of 0.5 s (the benchmark task:
frozen 5 Hz Poisson inputs and targets, weights x3) as the training program runs them
(:func:`ssjax.experiment.seeds.make_segment_fn`), once to compile, once to warm up and once under
``jax.profiler`` with XLA's per-kernel trace events (``--xla_cpu_enable_xprof_traceme``), then
prints the operations that took longest, in ms per block, with their HLO shapes. Loops compiled
as one function show up as ``call.N``; ``wrapped_broadcast`` rows are the zero fills of scan
outputs; ``ynn_fusion``/``dot`` rows are matrix products (products run on a thread pool may be
under-reported: compare the total with the block time).
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import os
import re
import sys
import tempfile
from pathlib import Path

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_cpu_enable_xprof_traceme=true"
).strip()
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402

from benchmarks.superspike import states, task, trainer_for  # noqa: E402
from ssjax.experiment.seeds import make_segment_fn, seed_mesh  # noqa: E402


def _events(trace_dir: Path) -> list[dict]:
    path = next(trace_dir.rglob("*.trace.json.gz"))
    data = json.load(gzip.open(path))
    return data["traceEvents"] if isinstance(data, dict) else data


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[200, 256, 200])
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--method", default="event", choices=("dense", "event", "stepwise", "bptt"))
    ap.add_argument("--blocks", type=int, default=10)
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args(argv)
    tr = trainer_for(tuple(args.sizes), args.method)
    x, y = task(tuple(args.sizes))
    st = states(tr, args.seeds)
    fn = make_segment_fn(tr, x, y, seed_mesh(args.seeds), args.blocks)
    jax.block_until_ready(fn(st))
    jax.block_until_ready(fn(st))
    with tempfile.TemporaryDirectory() as d:
        with jax.profiler.trace(d, create_perfetto_trace=True):
            jax.block_until_ready(fn(st))
        events = _events(Path(d))
    total, count = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("ph") == "X" and not e["name"].startswith(("$", "Thunk", "Pjit", "Common")):
            total[e["name"]] += e["dur"]
            count[e["name"]] += 1
    hlo = fn.lower(st).compile().as_text()
    shapes = {}
    for line in hlo.splitlines():
        m = re.match(r"\s*(?:ROOT )?%([\w.\-]+) = (\S+)", line)
        if m:
            shapes.setdefault(m.group(1), m.group(2)[:60])
    per = args.blocks
    print(
        f"{'-'.join(map(str, args.sizes))}, {args.seeds} seed(s), {args.method}: "
        f"{sum(total.values()) / 1e3 / per:.1f} ms of kernels per block"
    )
    for name, us in total.most_common(args.top):
        print(
            f"{us / 1e3 / per:9.3f} ms  {count[name] // per:3d}x  {name:<40} {shapes.get(name, '')}"
        )


if __name__ == "__main__":
    from ssjax.xla import configure_cpu_from_env

    configure_cpu_from_env()  # before JAX starts: the settings `ssjax train` runs under
    main()
