"""Sweeps: grid/zip expansion, validation of every condition first, grouping by program, and a
condition in a group equal to the condition run alone (map: bit for bit; vmap: rounding)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssjax.experiment.config import ConfigError, build_task, build_trainer, load_config
from ssjax.experiment.seeds import init_states, make_segment_fn, seed_ids, seed_mesh
from ssjax.experiment.sweep import (
    conditions,
    expand,
    group_runs,
    groups,
    parse_sweep_items,
)

SMALL = """
network: {sizes: [40, 3, 1]}
task: {kind: timing, n_in: 40, n_out: 1, period: 0.2, target_times: [0.05, 0.12]}
optimizer: {burn_in: 0.2, drops: [[2.0, 0.1]]}
rule: {method: dense, feedback: symmetric}
run: {seeds: 2, duration: 3.0, block: 0.1, checkpoint_every: 5, log_every: 5, raster_every: 10}
"""


def _cfg(tmp_path, extra=""):
    p = tmp_path / "small.yaml"
    p.write_text(SMALL + extra)
    return p


def test_grid_and_zip_expand_in_order():
    pts = expand(
        {
            "grid": {"optimizer.r0": [1e-2, 1e-3], "optimizer.name": ["rmaxprop", "fixed"]},
            "zip": {"regularizer.rho": [0.0, 1.0], "regularizer.a": [4.0, 8.0]},
        }
    )
    assert len(pts) == 8
    assert pts[0] == {
        "optimizer.r0": 1e-2,
        "optimizer.name": "rmaxprop",
        "regularizer.rho": 0.0,
        "regularizer.a": 4.0,
    }
    assert pts[1]["regularizer.rho"] == 1.0 and pts[1]["regularizer.a"] == 8.0  # zipped: last
    assert pts[2]["optimizer.name"] == "fixed" and pts[4]["optimizer.r0"] == 1e-3


@pytest.mark.parametrize(
    "spec, key",
    [
        ({"grid": {"optimizer.r0": []}}, "sweep.grid.optimizer.r0"),
        ({"zip": {"a.b": [1, 2], "c.d": [1]}}, "sweep.zip"),
        ({"gird": {}}, "sweep.gird"),
        ({"grid": {"optimizer.r0": [1e-3, 1e-3]}}, "sweep"),
    ],
)
def test_malformed_sweep_names_the_key(spec, key):
    with pytest.raises(ConfigError) as e:
        expand(spec, "f.yaml")
    assert e.value.key == key


def test_cli_items_parse_as_yaml_with_list_values():
    g = parse_sweep_items(["optimizer.r0=1e-2,5e-3", "network.sizes=[40, 4, 1],[40, 8, 1]"])
    assert g == {"grid": {"optimizer.r0": [1e-2, 5e-3], "network.sizes": [[40, 4, 1], [40, 8, 1]]}}
    with pytest.raises(ConfigError, match="malformed"):
        parse_sweep_items(["r0=1"])


def test_every_condition_is_validated_first_and_errors_name_condition_and_key(tmp_path):
    path = _cfg(tmp_path, "sweep: {grid: {optimizer.r0: [1.0e-3, -1.0, 2.0e-3]}}\n")
    with pytest.raises(ConfigError) as e:
        conditions(path)
    assert str(e.value).startswith("sweep condition 1 (optimizer.r0=-1.0)")
    assert e.value.key == "optimizer.r0" and "> 0" in str(e.value)
    # a plain load refuses the section, pointing at --sweep
    with pytest.raises(ConfigError, match="--sweep") as e:
        load_config(path)
    assert e.value.key == "sweep"


def test_traced_conditions_share_a_group_structural_ones_do_not(tmp_path):
    path = _cfg(tmp_path)
    sweep = parse_sweep_items(
        [
            "optimizer.r0=1e-3,5e-3",
            "regularizer.rho=0.5,1.0",  # rho = 0 would skip the regulariser: structural
            "network.sizes=[40, 3, 1],[40, 5, 1]",
        ]
    )
    conds = conditions(path, sweep=sweep)
    assert len(conds) == 8
    gs = groups(conds)
    assert len(gs) == 2 and sorted(map(len, gs)) == [4, 4]
    for g in gs:  # one network size per group
        assert len({conds[i].cfg.network.sizes for i in g}) == 1


def _run_alone(cfg, blocks, batching):
    tr = build_trainer(cfg)
    x, y = (jnp.asarray(a) for a in build_task(cfg))
    state = init_states(tr, seed_ids(cfg), jnp.float32)
    fn = make_segment_fn(tr, x, y, seed_mesh(1), blocks, batching)
    return fn(state)


@pytest.mark.parametrize("batching", ["map", pytest.param("vmap", marks=pytest.mark.slow)])
def test_a_condition_in_a_sweep_equals_the_condition_run_alone(tmp_path, batching):
    path = _cfg(tmp_path)
    conds = conditions(path, sweep=parse_sweep_items(["optimizer.r0=1e-3,5e-3,2e-2"]))
    (g,) = groups(conds)
    runs = group_runs(conds, g, jnp.float32)
    assert runs.cond == [0, 0, 1, 1, 2, 2] and runs.ids == [0, 1] * 3
    x, y = (jnp.asarray(a) for a in build_task(conds[0].cfg))
    blocks = 6  # past the burn-in: the rates matter
    fn = make_segment_fn(
        runs.trainer, x, y, seed_mesh(1), blocks, batching, runs.hyper, per_run=True
    )
    swept, _ = fn(runs.state)
    finals = []
    for c, cond in enumerate(conds):
        alone, _ = _run_alone(cond.cfg, blocks, batching)
        mine = jax.tree.map(lambda a, c=c: a[2 * c : 2 * c + 2], swept)
        if batching == "map":
            jax.tree.map(np.testing.assert_array_equal, mine, alone)
        else:
            jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-7),
                         mine, alone)  # fmt: skip
        finals.append(np.asarray(mine.weights[0]))
    # negative control: the learning rate changes the weights, so equality is not vacuous
    assert not np.allclose(finals[0], finals[2])


# ------------------------------------------------------------------ the sweep as a training run

RUN = SMALL.replace("duration: 3.0", "duration: 1.0, seed_batching: map, keep_checkpoints: 5")


def _final(workdir, cfg):
    from ssjax.experiment.checkpoint import Checkpointer

    tr = build_trainer(cfg)
    template = init_states(tr, seed_ids(cfg), jnp.float32)
    return Checkpointer(workdir / "checkpoints").restore(template)[1]


@pytest.mark.slow  # long check (about 1 min together), run by .ci/run after the default suite
def test_train_sweep_equals_each_condition_run_alone_and_resumes(tmp_path):
    import json

    from ssjax.experiment.runner import prepare, train
    from ssjax.experiment.sweep import condition_dir, train_sweep

    path = tmp_path / "run.yaml"
    path.write_text(RUN)
    spec = parse_sweep_items(["optimizer.r0=1e-3,2e-2", "network.sizes=[40, 3, 1],[40, 2, 1]"])
    conds = conditions(path, sweep=spec)
    rows = train_sweep(conds, tmp_path / "sweep", progress=False)
    assert [r["condition"] for r in rows] == [c.name for c in conds] and len(rows) == 4
    assert (tmp_path / "sweep" / "sweep.md").read_text().count("\n") == 6
    # two groups (two network sizes), one checkpoint folder each
    assert len(list((tmp_path / "sweep").glob("group-*/checkpoints"))) == 2
    for i, c in enumerate(conds):
        alone = train(prepare(path, overrides=c.overrides), tmp_path / f"alone{i}", progress=False)
        mine = json.loads((tmp_path / "sweep" / condition_dir(i, c) / "summary.json").read_text())
        assert mine["final"] == alone["final"]  # map batching: bit for bit
        assert rows[i]["van_rossum"]["median"] == alone["median"]["van_rossum"]
    # TensorBoard: each condition is a run with its seeds and the HParams session summary
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    for i, c in enumerate(conds):
        tb = tmp_path / "sweep" / condition_dir(i, c) / "tb"
        events = [e for f in sorted(tb.iterdir()) for e in EventFileLoader(str(f)).Load()]
        plugins = {v.metadata.plugin_data.plugin_name for e in events for v in e.summary.value}
        tags = {v.tag for e in events for v in e.summary.value}
        assert "hparams" in plugins and {"van_rossum/seed0", "van_rossum/seed1"} <= tags
    # continuing the sweep for 1 s more (a resume from its checkpoints) equals a 2 s sweep
    longer = conditions(path, ["run.duration=2.0"], spec)
    resumed = train_sweep(longer, tmp_path / "sweep", progress=False, override_config=True)
    straight = train_sweep(longer, tmp_path / "straight", progress=False)
    assert resumed == straight
    assert resumed[0]["van_rossum"] != rows[0]["van_rossum"]  # it did train on


def test_a_sweep_folder_refuses_other_conditions(tmp_path):
    from ssjax.experiment.runner import RunError
    from ssjax.experiment.sweep import train_sweep

    path = tmp_path / "run.yaml"
    path.write_text(RUN.replace("duration: 1.0", "duration: 0.2"))
    train_sweep(conditions(path, sweep=parse_sweep_items(["optimizer.r0=1e-3"])), tmp_path / "s",
                progress=False)  # fmt: skip
    other = conditions(path, sweep=parse_sweep_items(["optimizer.r0=5e-3"]))
    with pytest.raises(RunError, match="holds a sweep of other conditions"):
        train_sweep(other, tmp_path / "s", progress=False)


@pytest.mark.slow  # long check (about 1 min together), run by .ci/run after the default suite
def test_cli_sweep_runs_and_bad_condition_exits_2(tmp_path):
    import os
    import subprocess
    import sys

    path = tmp_path / "run.yaml"
    path.write_text(RUN.replace("duration: 1.0", "duration: 0.3"))
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    cmd = [sys.executable, "-m", "ssjax.experiment.cli", "train", str(path), "--no-progress"]
    r = subprocess.run(
        [*cmd, "--workdir", str(tmp_path / "s"), "--sweep", "optimizer.r0=1e-3,-1"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 2 and "sweep condition 1 (optimizer.r0=-1)" in r.stderr
    assert not (tmp_path / "s").exists()  # validated before anything ran or was written
    r = subprocess.run(
        [*cmd, "--workdir", str(tmp_path / "s"), "--sweep", "optimizer.r0=1e-3,5e-3"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "| optimizer.r0=0.001 | 2 |" in r.stdout and (tmp_path / "s" / "sweep.md").is_file()


@pytest.mark.slow  # about 1.5 min on 2 cores (two sweeps of two groups)
def test_sigkilled_sweep_resumes_bit_identically(tmp_path):
    """``ssjax train CONFIG --sweep ...`` killed (SIGKILL) while its second group trains, after
    the first group finished and the second saved a checkpoint; the same command again resumes
    and ends with what an uninterrupted sweep gives, bit for bit."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    from ssjax.experiment.checkpoint import Checkpointer
    from ssjax.experiment.sweep import condition_dir

    path = tmp_path / "run.yaml"
    path.write_text(RUN.replace("duration: 1.0", "duration: 3.0"))
    axes = ["optimizer.r0=1e-3,2e-2", "network.sizes=[40, 3, 1],[40, 2, 1]"]
    env = dict(os.environ, JAX_PLATFORMS="cpu")

    def cmd(workdir):
        return [sys.executable, "-m", "ssjax.experiment.cli", "train", str(path), "--no-progress",
                "--workdir", str(workdir), "--sweep", *axes]  # fmt: skip

    ref, run = tmp_path / "ref", tmp_path / "run"
    r = subprocess.run(cmd(ref), env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    proc = subprocess.Popen(cmd(run), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, total = time.time() + 600, 30
    try:
        while time.time() < deadline:
            steps = sorted(Checkpointer(g).latest() or 0 for g in run.glob("group-*/checkpoints"))
            if len(steps) == 2 and steps[-1] == total and 0 < steps[0] < total:
                break  # the first group done, the second one part way
            assert proc.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.02)
        else:
            pytest.fail("no checkpoint of the second group in time")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    r = subprocess.run(cmd(run), env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("resuming") == 2  # the finished group too (nothing left to train)
    conds = conditions(path, sweep=parse_sweep_items(axes))
    table = [json.loads((w / "sweep.json").read_text())["table"] for w in (ref, run)]
    assert table[0] == table[1]
    for i, c in enumerate(conds):
        a, b = ref / condition_dir(i, c), run / condition_dir(i, c)
        for f in ("summary.json", "history.json"):
            x, y = (json.loads((d / f).read_text()) for d in (a, b))
            x.pop("wall_seconds", None), y.pop("wall_seconds", None)
            assert x == y, (c.name, f)
    for g in ref.glob("group-*/checkpoints"):
        other = run / g.relative_to(ref)
        tmpl = _group_template(conds, g)
        (sa, xa, _), (sb, xb, _) = (Checkpointer(d).restore(tmpl) for d in (g, other))
        assert sa == sb == total
        jax.tree.map(np.testing.assert_array_equal, xa, xb)


def _group_template(conds, checkpoints):
    """A fresh state of the group whose checkpoints are in ``checkpoints``."""
    import hashlib

    for idx in groups(conds):
        digest = hashlib.sha1("\n".join(conds[i].name for i in idx).encode()).hexdigest()
        if checkpoints.parent.name == f"group-{digest[:12]}":
            return group_runs(conds, idx, jnp.float32).state
    raise AssertionError(f"no group for {checkpoints}")
