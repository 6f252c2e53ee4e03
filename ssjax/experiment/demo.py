"""A short demonstration run: BPTT on the paper's 5-spike precise-timing task.

The paper's 100-input network (100 -> 1 by default, or with a hidden layer) is driven by a frozen
Poisson pattern replayed without reset, and trained once per 0.5 s pattern period with the
surrogate gradient of the van Rossum loss and the paper's per-parameter learning rate
(RMaxProp). It is the library's online trainer (:func:`ssjax.train.run_blocks`, BPTT rule, one
block per period) in jitted chunks so that progress can be shown, with the per-period distance
of :mod:`ssjax.metrics` (the numbers ``ssjax train`` reports). It writes a raster over trials and
a learning curve.

Reference: Zenke & Ganguli (2018), Fig. 2.
"""

from __future__ import annotations

import os
import time

import jax
import numpy as np
from tqdm import tqdm

from ssjax import plots
from ssjax.metrics import PeriodAccumulator, block_values, period_metrics
from ssjax.network import Network
from ssjax.optim import Optimizer
from ssjax.rules.bptt import BPTTConfig
from ssjax.tasks.timing import timing_task
from ssjax.train import TrainSpec, init_train_state, run_blocks, unpack_output


def run_demo(
    out_dir: str = "runs/demo",
    n_periods: int = 1000,
    hidden: int = 0,
    seed: int = 0,
    r0: float = 1e-3,
    drop_at: int = 600,
    chunk: int = 20,
) -> dict:
    """Train with BPTT for ``n_periods`` pattern periods; returns a small summary dict.

    The learning rate ``r0`` drops tenfold after ``drop_at`` periods (reference-code schedule).
    """
    key_task, key_run = jax.random.split(jax.random.PRNGKey(seed))
    task = timing_task(key_task)
    sizes = (100, hidden, 1) if hidden else (100, 1)
    period = task.inputs.shape[0]
    trainer = TrainSpec(
        Network(sizes),
        rule=BPTTConfig(),
        optimizer=Optimizer(r0=r0, burn_in=0.0, drops=((drop_at * 0.5, 0.1),)),
        block=period * task.dt,
        record_output=True,
    )
    state = init_train_state(trainer, key_run)
    run_chunk = jax.jit(lambda s: run_blocks(trainer, task.inputs, task.targets, s, chunk))
    periods = PeriodAccumulator(period)

    dist_chunks: list[np.ndarray] = []
    raster_chunks: list[np.ndarray] = []
    t0 = time.perf_counter()
    n_chunks = -(-n_periods // chunk)
    with tqdm(total=n_chunks * chunk, unit="period", desc=f"BPTT {sizes}") as bar:
        for _ in range(n_chunks):
            state, m = run_chunk(state)
            done = periods.add(m.period0, m.steps_seg, block_values(m))
            d = period_metrics(done, sizes, period, task.dt).van_rossum.mean(-1)
            dist_chunks.append(d)
            raster_chunks.append(unpack_output(m.out_bits, period)[..., 0])
            bar.update(chunk)
            bar.set_postfix(van_rossum=f"{float(d[-1]):.3f}", sim_s=f"{bar.n * 0.5:.0f}")
    wall = time.perf_counter() - t0
    dists = np.concatenate(dist_chunks)
    rasters = np.concatenate(raster_chunks)
    os.makedirs(out_dir, exist_ok=True)
    every = max(1, len(rasters) // 100)
    raster_png = plots.trial_raster(
        rasters[::every],
        task.dt,
        os.path.join(out_dir, "raster.png"),
        target=np.asarray(task.targets[:, 0]),
        trial_ids=np.arange(len(rasters))[::every],
        title=f"BPTT, network {sizes}: output over trials (red: target)",
    )
    curve_png = plots.learning_curve(dists, os.path.join(out_dir, "learning_curve.png"))
    summary = {
        "sizes": sizes,
        "periods": len(dists),
        "simulated_seconds": len(dists) * period * task.dt,
        "wall_seconds": wall,
        "final_van_rossum": float(np.mean(dists[-max(1, len(dists) // 10) :])),
        "raster_png": raster_png,
        "curve_png": curve_png,
    }
    return summary
