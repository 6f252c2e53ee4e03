"""Scale: a 1000-256-500 pattern task with a 33.1 s period, generated here (issue 15).

The task: 1000 inputs at 5 Hz and 500 targets at 5 Hz (frozen Poisson trains), one period of
33.1 s, written as ``.ras`` files and trained as ``task.kind: ras`` through the config layer
(``load_config`` parses and checks the files, ``build_patterns`` makes the event patterns,
``make_segment_fn`` compiles the segment ``ssjax train`` runs): SuperSpike, symmetric feedback,
the event route, one seed, blocks of 0.5 s at dt = 0.1 ms.

Each measurement runs in a fresh subprocess, so its whole-process peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``: the interpreter, JAX, XLA's compiled program and
every buffer) belongs to it alone:

- ``speed``: compile, one warm-up segment, then the best of N timed segments of ``blocks``
  blocks: wall s per simulated s after compilation, and the peak RSS;
- ``memory``: the same program for periods of 5, 10, 33.1 and 100 s (two blocks run), peak RSS:
  with the patterns held as events it should not grow with the period beyond the events' size.

    python -m benchmarks.scale [--quick]     # prints the records as JSON lines

``python -m benchmarks.run --suites scale`` writes them into results.md and results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PERIODS = (5.0, 10.0, 33.1, 100.0)
SIZES = (1000, 256, 500)
RATE_HZ = 5.0
DT = 1e-4


def write_task(folder: Path, period: float, sizes=SIZES, seed: int = 0) -> tuple[Path, Path]:
    """Frozen Poisson input and target trains of one period as ``.ras`` files (numpy: the
    generator is not what is measured)."""
    import numpy as np

    from ssjax.tasks.raster import SpikeEvents, write_ras

    rng = np.random.default_rng(seed)
    steps = int(round(period / DT))
    paths = []
    for name, n in (("input", sizes[0]), ("target", sizes[-1])):
        count = rng.binomial(steps * n, RATE_HZ * DT)
        flat = np.unique(rng.integers(0, steps * n, count))  # at most one spike per bin
        t, i = np.divmod(flat, n)
        path = folder / f"{name}.ras"
        write_ras(path, SpikeEvents(t * DT, i))
        paths.append(path)
    return paths[0], paths[1]


def _config_text(inp: Path, tgt: Path, period: float, sizes, blocks: int) -> str:
    return f"""
network: {{sizes: {list(sizes)}}}
rule: {{method: event, feedback: symmetric}}
task: {{kind: ras, input: {inp}, target: {tgt}, n_in: {sizes[0]}, n_out: {sizes[-1]},
        period: {period}}}
optimizer: {{name: rmaxprop, r0: 1.0e-3, burn_in: 0.0, drops: []}}
run: {{seeds: 1, duration: {blocks * 0.5}, block: 0.5}}
"""


def measure(config: Path, blocks: int, repeats: int) -> dict:
    """In this process: load, build, compile, run; the timings and the peak RSS (MB)."""
    import jax
    import jax.numpy as jnp

    from ssjax.experiment.config import build_patterns, build_trainer, load_config
    from ssjax.experiment.seeds import init_states, make_segment_fn, seed_mesh, shard_state

    t0 = time.perf_counter()
    cfg = load_config(config)
    trainer = build_trainer(cfg)
    x, y = build_patterns(cfg, trainer.block_steps)
    load_s = time.perf_counter() - t0
    state = shard_state(init_states(trainer, [0], jnp.float32), seed_mesh(1))
    fn = make_segment_fn(trainer, x, y, seed_mesh(1), blocks, "map")
    t1 = time.perf_counter()
    compiled = fn.lower(state).compile()
    compile_s = time.perf_counter() - t1
    state, m = jax.block_until_ready(compiled(state))  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        state, m = jax.block_until_ready(compiled(state))
        best = min(best, time.perf_counter() - t)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    sim_s = blocks * trainer.t_b
    sizes = trainer.net.sizes[1:]
    rates = [float(jnp.sum(s)) / (n * sim_s) for s, n in zip(m.spikes_seg, sizes, strict=True)]
    return {
        "period_s": cfg.task.period,
        "blocks": blocks,
        "wall_per_sim_s": best / (blocks * trainer.t_b),
        "compile_s": compile_s,
        "load_s": load_s,
        "peak_rss_mb": rss,
        "input_events": x.n_events,
        "target_events": y.n_events,
        "capacity": x.capacity,
        "rates_hz": rates,
    }


def profile(config: Path, repeats: int = 5) -> dict:
    """Where one block's time goes (ms per block, best of ``repeats``, after compilation): the
    gather of the input and target windows from the events, the rule's update on a fixed block
    (the event route: simulation, traces, sums), and the whole ``block_step`` (the gather, the
    rule, the optimiser and the metrics)."""
    import jax
    import jax.numpy as jnp

    from ssjax.experiment.config import build_patterns, build_trainer, load_config
    from ssjax.rules.base import Block
    from ssjax.train import block_step, init_train_state

    cfg = load_config(config)
    tr = build_trainer(cfg)
    k = tr.block_steps
    x, y = build_patterns(cfg, k)
    st = init_train_state(tr, jax.random.PRNGKey(0))
    rule = tr.make_rule()

    def best(f, *a):
        jax.block_until_ready(f(*a))
        out = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            jax.block_until_ready(f(*a))
            out = min(out, time.perf_counter() - t)
        return 1e3 * out

    pos = jnp.int32(12345)
    gather = jax.jit(lambda p: (x.window(p, k, jnp.float32), y.window(p, k)))
    xb, yb = gather(pos)
    upd = jax.jit(lambda w, s, xb, yb: rule.update(w, s, Block(xb, yb)))
    step = jax.jit(lambda s: block_step(tr, x, y, s))
    return {
        "gather_ms": best(gather, pos),
        "rule_update_ms": best(upd, st.weights, st.rule, xb, yb),
        "block_step_ms": best(step, st),
        "block_s": tr.t_b,
    }


def _child(folder: Path, period: float, blocks: int, repeats: int, sizes, what="measure"):
    """One measurement (``measure`` or ``profile``) in a fresh interpreter (its own peak RSS)."""
    inp, tgt = write_task(folder, period, sizes)
    cfg = folder / "scale.yaml"
    cfg.write_text(_config_text(inp, tgt, period, sizes, blocks))
    call = (
        f"measure(sys.argv[1], {blocks}, {repeats})"
        if what == "measure"
        else (f"profile(sys.argv[1], {repeats})")
    )
    code = (
        "import json, sys; from ssjax.xla import configure_cpu_from_env; "
        f"configure_cpu_from_env(); from benchmarks.scale import {what}; "
        f"print('RESULT ' + json.dumps({call}))"
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(cfg)], capture_output=True, text=True, env=env, cwd=root
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"scale benchmark child failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


def _command_rss(folder: Path, period: float, sizes, args: list[str], blocks: int) -> dict:
    """Peak RSS (MB) and wall s of one ``ssjax`` command on the task (``validate``, or
    ``train`` of ``blocks`` blocks with its logs, raster, checkpoint and report), run as the only
    child of a fresh interpreter (``RUSAGE_CHILDREN``: the high-water mark of that child)."""
    inp, tgt = write_task(folder, period, sizes)
    cfg = folder / "scale.yaml"
    cfg.write_text(
        _config_text(inp, tgt, period, sizes, blocks).replace(
            "block: 0.5}", f"block: 0.5, log_every: {blocks}, raster_every: {blocks}, "
            f"checkpoint_every: {blocks}}}"
        )
    )  # fmt: skip
    cmd = [sys.executable, "-m", "ssjax.experiment.cli", *args, str(cfg)]
    if args[0] == "train":
        cmd += ["--workdir", str(folder / "run"), "--no-progress"]
    code = (
        "import json, resource, subprocess, sys, time; t = time.perf_counter(); "
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "print('RESULT ' + json.dumps({'rc': p.returncode, 'err': p.stderr[-2000:], "
        "'wall_s': time.perf_counter() - t, "
        "'peak_rss_mb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))"
    )
    proc = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True, text=True)
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    r = json.loads(line[7:])
    if r.pop("rc") != 0:
        raise RuntimeError(f"ssjax {args[0]} failed:\n{r['err']}")
    r.pop("err")
    return {"command": f"ssjax {args[0]}", "period_s": period, "blocks": blocks, **r}


def run(quick: bool, repeats: int, log) -> list[dict]:
    """The records of the ``scale`` suite (see the module docstring)."""
    sizes = (200, 64, 100) if quick else SIZES
    periods = (5.0, 10.0) if quick else PERIODS
    recs = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        speed = _child(folder, 5.0 if quick else 33.1, 4 if quick else 20, repeats, sizes)
        speed.update(suite="scale", impl="ssjax", kind="speed", network="-".join(map(str, sizes)))
        log(f"scale speed {speed['network']}: {speed['wall_per_sim_s']:.3g} wall s/sim s, "
            f"{speed['peak_rss_mb']:.0f} MB")  # fmt: skip
        recs.append(speed)
        prof = _child(folder, 5.0 if quick else 33.1, 2, repeats, sizes, "profile")
        prof.update(suite="scale", impl="ssjax", kind="profile", network=speed["network"])
        log(f"scale profile: {prof}")
        recs.append(prof)
        for args in (["validate"], ["train"]):
            c = _command_rss(folder, 5.0 if quick else 33.1, sizes, args, 4)
            c.update(suite="scale", impl="ssjax", kind="command", network=speed["network"])
            log(f"scale {c['command']}: {c['peak_rss_mb']:.0f} MB, {c['wall_s']:.1f} s")
            recs.append(c)
        for p in periods:
            r = _child(folder, p, 2, 1, sizes)
            r.update(suite="scale", impl="ssjax", kind="memory", network="-".join(map(str, sizes)))
            log(f"scale memory period {p:g} s: {r['peak_rss_mb']:.0f} MB")
            recs.append(r)
    return recs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.scale", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--quick", action="store_true", help="200-64-100, periods 5 and 10 s")
    ap.add_argument("--repeats", type=int, default=None, help="timed segments (default 3; 1 quick)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t0:6.1f} s] {msg}", file=sys.stderr, flush=True)

    for r in run(args.quick, args.repeats or (1 if args.quick else 3), log):
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
