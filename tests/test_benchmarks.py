"""The benchmark suite (``benchmarks/``): a quick end-to-end run and the fairness of its BPTT
comparison (ssjax and the hand-written JAX step implement the same model)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import bptt  # noqa: E402
from ssjax.experiment.seeds import seed_mesh  # noqa: E402

SIZE_KEYS = {
    "bptt": ("workload", "T", "batch", "n_in", "hidden", "n_out"),
    "seeds": ("network", "sizes", "seeds", "blocks", "block_steps", "sim_s"),
}
FIGURES = {
    "bptt": ("ms_per_step", "peak_mb"),
    "seeds": ("wall_s", "wall_per_sim_s", "sim_s_per_wall_s", "peak_mb", "compile_s"),
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.run",
        "--quick",
        "--suites",
        "bptt",
        "seeds",
        "--out",
        str(out),
    ]
    env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


@pytest.mark.slow  # the quick suite takes 40 s: run by .ci/run after the default suite
def test_quick_run_writes_records(quick_run):
    records = json.loads((quick_run / "results.json").read_text())
    assert isinstance(records, list) and records
    assert {r["suite"] for r in records} == {"bptt", "seeds"}
    for r in records:
        assert isinstance(r["impl"], str) and r["impl"]
        for k in SIZE_KEYS[r["suite"]]:
            assert k in r, (k, r)
        if r["suite"] == "bptt" and "ms_per_step" not in r:  # an optional peer
            assert r["impl"] in ("spyx", "snntorch", "norse"), r
            assert r["status"].startswith("not installed"), r  # installed peers must run
            continue
        for k in FIGURES[r["suite"]]:
            assert isinstance(r[k], float) and r[k] > 0, (k, r)
    impls = {r["impl"] for r in records if r["suite"] == "bptt" and "ms_per_step" in r}
    assert {"ssjax", "plain-jax", "matmul-bound"} <= impls
    for r in records:
        if r["suite"] == "bptt" and r["impl"] in ("ssjax", "plain-jax"):
            assert r["compile_s"] > 0 and r["hidden_rate"] > 0
    seeds = sorted(r["seeds"] for r in records if r["suite"] == "seeds")
    assert seeds[0] == 1 and len(seeds) >= 3
    for r in records:
        if r["suite"] == "seeds":
            assert r["wall_per_seed_s"] == pytest.approx(r["wall_s"] / r["seeds"])
            # seeds sharded as ssjax train shards them (one CPU device per core)
            assert r["devices"] == seed_mesh(r["seeds"]).devices.size


@pytest.mark.slow
def test_quick_run_writes_report(quick_run):
    md = (quick_run / "results.md").read_text()
    assert "machine:" in md and "load average" in md and "jax 0." in md
    assert "## (a) BPTT" in md and "## (d) Seed scaling" in md
    assert "| ssjax |" in md and "| plain-jax |" in md


def test_plain_jax_and_ssjax_steps_compute_the_same_loss():
    wl = bptt.Workload(steps=30, batch=8, hidden=64)
    x, y, params = bptt.make_data(wl, seed=3)
    losses, grads = {}, {}
    for impl, fn in bptt.LOSSES.items():
        (loss, rate), g = jax.jit(
            jax.value_and_grad(lambda p, fn=fn: fn(p, x, y, wl), has_aux=True)
        )(params)
        assert float(rate) > 0.005  # the hidden layer spikes: the comparison is not trivial
        losses[impl], grads[impl] = float(loss), g
    assert losses["ssjax"] == pytest.approx(losses["plain-jax"], rel=1e-6)
    for a, b in zip(grads["ssjax"], grads["plain-jax"], strict=True):
        np.testing.assert_allclose(
            np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6 * float(np.abs(np.asarray(b)).max())
        )


def test_training_steps_agree_after_updates():
    wl = bptt.Workload(steps=20, batch=4, hidden=32)
    x, y, params = bptt.make_data(wl, seed=1)
    out = {}
    for impl, fn in bptt.LOSSES.items():
        step, opt = bptt.make_step(fn, wl)
        p, s = params, opt.init(params)
        for _ in range(3):
            p, s, loss, _ = jax.jit(step)(p, s, x, y)
        out[impl] = float(loss)
    assert out["ssjax"] == pytest.approx(out["plain-jax"], rel=1e-5)


def test_scale_task_and_section(tmp_path):
    """The scale benchmark's generated task: 5 Hz trains that the ras loader reads back as
    events of the requested sizes; its section renders every record kind."""
    from benchmarks import run, scale
    from ssjax.tasks.raster import read_ras

    inp, tgt = scale.write_task(tmp_path, 2.0, sizes=(50, 8, 20))
    for path, n in ((inp, 50), (tgt, 20)):
        ev = read_ras(path, n=n)
        rate = len(ev) / (n * 2.0)
        assert 4.0 < rate < 6.0 and ev.times.max() < 2.0
    recs = [
        {"suite": "scale", "kind": "speed", "network": "50-8-20", "period_s": 2.0, "blocks": 4,
         "wall_per_sim_s": 0.2, "peak_rss_mb": 700.0, "compile_s": 3.0, "load_s": 0.1,
         "input_events": 500, "capacity": 140, "rates_hz": [3.0, 2.0]},
        {"suite": "scale", "kind": "profile", "network": "50-8-20", "gather_ms": 1.0,
         "rule_update_ms": 9.0, "block_step_ms": 10.0},
        {"suite": "scale", "kind": "command", "network": "50-8-20", "command": "ssjax validate",
         "period_s": 2.0, "blocks": 4, "peak_rss_mb": 250.0, "wall_s": 3.0},
        {"suite": "scale", "kind": "memory", "network": "50-8-20", "period_s": 2.0,
         "peak_rss_mb": 700.0, "input_events": 500, "target_events": 200, "compile_s": 3.0},
    ]  # fmt: skip
    text = "\n".join(run._scale_md(recs))
    assert "| 2 | 4 | 0.2 | 700 |" in text and "ssjax validate" in text
    assert "The gather is 10%" in text and "not reached: 0.2" in text
    recs[0] = {**recs[0], "wall_per_sim_s": 0.1}
    text = "\n".join(run._scale_md(recs))
    assert "is met: 0.1 wall s" in text and "not reached" not in text


@pytest.mark.slow  # about 1-2 min: 15 conditions compiled one by one, then as 3 programs
def test_sweep_suite_quick_run(tmp_path):
    """The sweep benchmark measures both routes of Fig. 1's grid and the scaling, and its
    section renders; the sweep uses 3 programs (one per optimiser) for 15 conditions."""
    from benchmarks import run, sweep

    recs = sweep.run(True, 1, lambda m: None)
    fig = [r for r in recs if r["kind"] == "fig1"]
    assert {r["batching"] for r in fig} == {"map", "vmap"}
    for r in fig:
        assert r["conditions"] == 15 and r["programs"] == 3
        assert r["sequential_wall_s"] > 0 and r["sweep_run_s"] > 0
    assert [r["conditions"] for r in recs if r["kind"] == "scaling"] == [1, 4]
    text = "\n".join(run._sweep_md(recs))
    assert "## (f) Hyper-parameter sweeps" in text and "| map | 15 x 4 |" in text


@pytest.mark.slow  # ~15 s: one condition of the trials suite, quick sizes
def test_trials_suite_records_one_condition(tmp_path):
    from benchmarks import trials

    rec = trials.measure("randman", "bptt", quick=True, folder=tmp_path)
    assert rec["seeds"] == trials.SEEDS and len(rec["test_accuracy"]) == trials.SEEDS
    assert all(0.0 <= a <= 1.0 for a in rec["test_accuracy"])
    assert rec["epoch_s"] > 0 and rec["peak_mb"] > 0 and rec["train_trials"] == 600
    table = trials.markdown([rec])
    assert "| randman | bptt | 20-100-10 | 600 / 200 |" in table
