"""Suites ``superspike``, ``memory`` and ``seeds``: online training as the ``ssjax train`` program
runs it (``ssjax.experiment.seeds.make_segment_fn`` over ``ssjax.train.TrainSpec`` blocks,
seeds vmapped).

Task: frozen Poisson inputs (5 Hz, ``ssjax.tasks.raster.frozen_poisson``) and a frozen Poisson
target raster (5 Hz), one 0.5 s pattern replayed in a loop; dt = 0.1 ms; blocks of 5000 steps
(0.5 s); symmetric feedback; RMaxProp. Initial weights are the reference initialisation times 3
(clipped), so that every layer spikes (the event route's cost depends on presynaptic spikes);
the measured firing rates are stored with each record.

Figures: ``wall_per_sim_s`` is wall seconds per simulated second of one network (all seeds
counted: ``wall / (seeds * sim_s)``), ``sim_s_per_wall_s`` its inverse; ``wall_s`` the wall time
of the whole segment (``blocks`` blocks of every seed).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.timing import memory_only, time_jax
from ssjax.experiment.seeds import init_states, make_segment_fn, seed_mesh, shard_state
from ssjax.network import Network
from ssjax.rules.bptt import BPTTConfig
from ssjax.rules.superspike import SuperSpikeConfig
from ssjax.tasks.raster import frozen_poisson
from ssjax.train import TrainSpec

DT = 1e-4
PERIOD = 0.5  # s, pattern length
BLOCK = 5000  # steps (0.5 s)
NETWORKS = ((100, 1), (100, 4, 1), (100, 256, 100), (200, 256, 200))
METHODS = ("dense", "event", "stepwise", "bptt")
METHOD = SuperSpikeConfig().method  # the default route, used by the seeds suite
AURYN = {  # published cost of the reference C++ (Auryn) code, not measured here
    "suite": "superspike",
    "impl": "auryn-cpp",
    "method": "stepwise",
    "network": "200-256-200",
    "seeds": 1,
    "wall_per_sim_s": 3.3,
    "sim_s_per_wall_s": 1 / 3.3,
    "dt": DT,
    "source": "published, not measured here (reference C++ code, single core)",
}


def net_name(sizes) -> str:
    return "-".join(map(str, sizes))


def trainer_for(sizes, method: str, block_steps: int = BLOCK) -> TrainSpec:
    """The online trainer of ``sizes`` with SuperSpike ``method`` or ``"bptt"``."""
    net = Network(tuple(sizes))
    if method == "bptt":
        return TrainSpec(net, rule=BPTTConfig(), block=block_steps * net.neuron.dt)
    cfg = SuperSpikeConfig(method=method)
    return TrainSpec(net, rule=cfg, block=block_steps * net.neuron.dt)


def task(sizes, seed: int = 0):
    """Frozen 5 Hz Poisson inputs ``[P, N_in]`` and a 5 Hz Poisson target raster ``[P, N_out]``."""
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    x = frozen_poisson(k1, sizes[0], 5.0, PERIOD, DT)
    y = frozen_poisson(k2, sizes[-1], 5.0, PERIOD, DT)
    return x, y


def states(trainer: TrainSpec, seeds: int):
    """Fresh states of ``seeds`` seeds, weights scaled x3 (clipped) so that every layer spikes."""
    st = init_states(trainer, list(range(seeds)), jnp.float32)
    net = trainer.net
    w = tuple(jnp.clip(3.0 * a, net.w_min, net.w_max) for a in st.weights)
    return st._replace(weights=w)


def _rates(metrics, sizes, seeds: int, sim_s: float) -> list[float]:
    """Mean firing rate (Hz) per layer over the run, from the per-block spike counts."""
    return [
        float(np.asarray(s).sum() / (n * seeds * sim_s))
        for s, n in zip(metrics.spikes_seg, sizes[1:], strict=True)
    ]


def time_run(
    sizes, method: str, seeds: int, blocks: int, repeats: int, batching: str = "vmap"
) -> dict:
    """Compile and time ``blocks`` blocks of ``seeds`` seeds; a record's figures."""
    trainer = trainer_for(sizes, method)
    x, y = task(sizes)
    mesh = seed_mesh(seeds)  # as in ssjax train: seeds sharded over the CPU devices (cores)
    st = shard_state(states(trainer, seeds), mesh)
    fn = make_segment_fn(trainer, x, y, mesh, blocks, batching)
    r = time_jax(fn, (st,), repeats, jitted=True)
    _, metrics = fn(st)
    sim_s = blocks * trainer.t_b
    return {
        "sizes": list(sizes),
        "seeds": seeds,
        "batching": batching,
        "devices": int(mesh.devices.size),
        "blocks": blocks,
        "block_steps": BLOCK,
        "dt": DT,
        "sim_s": sim_s,
        "wall_s": r["best_s"],
        "compile_s": r["compile_s"],
        "peak_mb": r["peak_mb"],
        "wall_per_sim_s": r["best_s"] / (seeds * sim_s),
        "sim_s_per_wall_s": seeds * sim_s / r["best_s"],
        "rate_hz": _rates(metrics, sizes, seeds, sim_s),
    }


def _plan(quick: bool):
    """``(sizes, method, seeds, blocks, repeats, batching)``.

    Blocks per timed run: 10 (5 s), so that the fixed cost of a call (fresh buffers, about
    15 ms at 200-256-200) weighs as little as in a long run's segments; 4 for the per-step form
    (its blocks take 0.5 s each) and for 16 seeds of 256 hidden units, where the per-step form
    runs 1 block once. With several seeds the dense and event routes are timed under both
    batchings (``map`` is what ``ssjax train`` runs on CPU).
    """
    seeds_list = (1,) if quick else (1, 16)
    nets = NETWORKS[:2] if quick else NETWORKS
    for sizes in nets:
        for seeds in seeds_list:
            for method in METHODS:
                heavy = len(sizes) > 2 and sizes[1] > 100 and seeds > 1
                stepwise = method == "stepwise"
                if quick:
                    blocks = 1
                elif stepwise:
                    blocks = 1 if heavy else 4
                else:
                    blocks = 4 if heavy else 10
                repeats = 1 if heavy and stepwise else None
                multi = seeds > 1 and method in ("dense", "event")
                for batching in ("vmap", "map") if multi else ("vmap",):
                    yield sizes, method, seeds, blocks, repeats, batching


def run(quick: bool, repeats: int, log=print) -> list[dict]:
    """Suite ``superspike``: every network x seeds x method, plus the published C++ figure."""
    records = []
    for sizes, method, seeds, blocks, rep, batching in _plan(quick):
        fig = time_run(sizes, method, seeds, blocks, rep or repeats, batching)
        records.append(
            {
                "suite": "superspike",
                "impl": "ssjax",
                "method": method,
                "network": net_name(sizes),
                **fig,
            }
        )
        log(
            f"superspike {net_name(sizes)} {method} x{seeds} {batching}: "
            f"{fig['sim_s_per_wall_s']:.3g} sim-s/wall-s"
        )
    records.append(dict(AURYN))
    return records


def run_memory(quick: bool, log=print) -> list[dict]:
    """Suite ``memory``: compiled peak memory of one block of 0.5-32 s on 100-4-1 (no run),
    and of a 32 s run made of 0.5 s blocks (scanned blocks share one block's buffers)."""
    sizes = (100, 4, 1)
    x, y = task(sizes)
    lengths = (0.5, 2.0) if quick else (0.5, 2.0, 8.0, 32.0)
    records = []
    for method in ("dense", "event", "stepwise", "bptt"):
        cases = [(s, 1) for s in lengths] + [(PERIOD, int(round(lengths[-1] / PERIOD)))]
        for block_s, blocks in cases:
            k = int(round(block_s / DT))
            trainer = trainer_for(sizes, method, block_steps=k)
            fn = make_segment_fn(trainer, x, y, seed_mesh(1), blocks)
            fig = memory_only(fn, (states(trainer, 1),), jitted=True)
            records.append(
                {
                    "suite": "memory",
                    "impl": "ssjax",
                    "method": method,
                    "network": net_name(sizes),
                    "sizes": list(sizes),
                    "seeds": 1,
                    "block_s": block_s,
                    "block_steps": k,
                    "blocks": blocks,
                    "run_s": block_s * blocks,
                    "dt": DT,
                    **fig,
                }
            )
            log(f"memory {method} {blocks} x {block_s:g} s: {fig['peak_mb']:.1f} MB")
    return records


def run_seeds(quick: bool, repeats: int, log=print) -> list[dict]:
    """Suite ``seeds``: wall time per seed for 1, 4, 16, 64 seeds of 100-4-1 (default route),
    vmapped, and the largest count also one seed after another (``map``) for comparison."""
    sizes, blocks = (100, 4, 1), (2 if quick else 10)
    counts = (1, 4, 16) if quick else (1, 4, 16, 64)
    records = []
    for seeds, batching in [(n, "vmap") for n in counts] + [(counts[-1], "map")]:
        fig = time_run(sizes, METHOD, seeds, blocks, repeats, batching)
        fig["wall_per_seed_s"] = fig["wall_s"] / seeds
        records.append(
            {
                "suite": "seeds",
                "impl": "ssjax",
                "method": METHOD,
                "network": net_name(sizes),
                **fig,
            }
        )
        log(
            f"seeds x{seeds} ({batching}): {1e3 * fig['wall_per_seed_s']:.1f} ms per seed "
            f"({blocks} blocks)"
        )
    return records
