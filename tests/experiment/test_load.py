"""Reading runs back (ssjax.load_run) and evaluating them (ssjax.evaluate)."""

import json
from pathlib import Path

import jax
import numpy as np
import pytest

import ssjax
from ssjax.experiment.checkpoint import Checkpointer
from ssjax.experiment.config import build_task, build_trainer, load_config
from ssjax.experiment.load import LoadError, evaluate, load_run
from ssjax.experiment.runner import prepare, train
from ssjax.experiment.seeds import init_states
from ssjax.experiment.sweep import condition_dir, conditions, parse_sweep_items, train_sweep
from ssjax.losses import van_rossum_distance
from ssjax.metrics import heldout_accuracy
from ssjax.network import simulate

SMALL = """
network: {sizes: [30, 3, 1], w0: 1.0}
task: {kind: timing, n_in: 30, n_out: 1, period: 0.2, rate_hz: 20.0, target_times: [0.05, 0.12]}
optimizer: {burn_in: 0.2}
rule: {method: dense, feedback: symmetric}
run: {seeds: 2, duration: 1.0, block: 0.1, checkpoint_every: 5, keep_checkpoints: 10,
      log_every: 5, raster_every: 10, seed_batching: map}
"""


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("load")
    (tmp / "small.yaml").write_text(SMALL)
    cfg = prepare(tmp / "small.yaml")
    train(cfg, tmp / "run", progress=False)
    return cfg, tmp / "run"


def _restored(workdir: Path, cfg, step=None):
    """The checkpoint read the runner's way: a fresh state as the template."""
    tr = build_trainer(cfg)
    template = init_states(tr, [cfg.run.seed + k for k in range(cfg.run.seeds)], np.float32)
    return Checkpointer(workdir / "checkpoints").restore(template, step)


def _equal(a, b):
    return all(
        np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def test_finished_run_reads_back_its_state_config_and_summary(finished):
    cfg, workdir = finished
    run = ssjax.load_run(workdir)  # the public name
    step, state, _ = _restored(workdir, cfg)
    assert run.block == step == 10 and run.finished and run.total_blocks == 10
    assert _equal(run.state, state)
    assert run.seeds == (0, 1) and run.network.sizes == (30, 3, 1)
    assert run.summary == json.loads((workdir / "summary.json").read_text())
    assert len(run.history["van_rossum"]) == run.summary["periods"]
    assert all(np.array_equal(w, s[1]) for w, s in zip(run.weights(1), state.weights, strict=True))
    with pytest.raises(IndexError, match="2 seeds"):
        run.weights(2)


def test_an_earlier_checkpoint_reads_as_an_unfinished_run(finished):
    cfg, workdir = finished
    run = load_run(workdir, step=5)
    _, state, _ = _restored(workdir, cfg, 5)
    assert run.block == 5 and not run.finished and run.summary is None
    assert _equal(run.state, state)
    assert not _equal(run.state.weights, load_run(workdir).state.weights)  # control: it trained
    assert run.simulated_seconds == pytest.approx(0.5)


def test_evaluate_equals_simulating_each_seed_and_the_distance_by_hand(finished):
    cfg, workdir = finished
    run = load_run(workdir)
    x, tgt = (np.asarray(a) for a in build_task(cfg))  # one period [P, N]
    ev = evaluate(run, x, targets=tgt)
    dt = run.network.neuron.dt
    for k in range(2):
        _, rec = simulate(run.network, run.weights(k), x)
        for layer, s in enumerate(rec.spikes):
            assert np.array_equal(ev.spikes[layer][k], s)
            assert ev.rate_hz[layer][k] == pytest.approx(float(s.mean()) / dt)
        d = van_rossum_distance(tgt, rec.spikes[-1], dt)  # 5 ms / 10 ms: the rule's filter
        np.testing.assert_allclose(ev.van_rossum[k], d, rtol=1e-6)
    assert ev.output.shape == (2, len(x), 1)
    # a batch [T, B, N_in] and a seed subset
    xb = np.stack([x, np.zeros_like(x)], axis=1)
    evb = evaluate(run, xb, seeds=[1])
    assert evb.output.shape == (1, len(x), 2, 1)
    assert np.array_equal(evb.output[0, :, 0], ev.output[1])
    assert not evb.output[0, :, 1].any()  # no input, no output spikes
    # negative control: another seed's weights answer differently
    assert not np.array_equal(ev.spikes[0][0], ev.spikes[0][1])


def test_window_accuracy_equals_the_heldout_route_and_a_count_by_hand(finished):
    _, workdir = finished
    run = load_run(workdir)
    x = np.asarray(build_task(run.config)[0])
    n_win = 8
    code = np.zeros((len(x), 1), np.int8)  # alternate windows: fire / stay silent
    for k, sl in enumerate(np.array_split(np.arange(len(x)), n_win)):
        code[sl] = 1 if k % 2 == 0 else -1
        code[sl[-1]] *= 2
    ev = evaluate(run, x, window_code=code)
    out = np.asarray(ev.output)[..., 0]  # [S, T]
    by_hand = [
        np.mean(
            [
                out[k, sl].any() == (i % 2 == 0)
                for i, sl in enumerate(np.array_split(np.arange(len(x)), n_win))
            ]
        )
        for k in range(2)
    ]
    np.testing.assert_array_equal(ev.accuracy, by_hand)
    np.testing.assert_array_equal(
        ev.accuracy, heldout_accuracy(run.network, run.state.weights, x, code)
    )
    assert ev.van_rossum is None


def test_bad_inputs_and_folders_are_clear_errors(finished, tmp_path):
    cfg, workdir = finished
    run = load_run(workdir)
    with pytest.raises(ValueError, match=r"\[T, \*B, 30\]"):
        evaluate(run, np.zeros((10, 31)))
    with pytest.raises(ValueError, match="targets must be"):
        evaluate(run, np.zeros((10, 30)), targets=np.zeros((10, 2)))
    with pytest.raises(IndexError, match="out of range"):
        evaluate(run, np.zeros((10, 30)), seeds=[2])
    with pytest.raises(LoadError, match="no config.yaml"):
        load_run(tmp_path)
    # config.yaml edited after the run: refused, naming the key
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "checkpoints").symlink_to(workdir / "checkpoints")
    text = (workdir / "config.yaml").read_text().replace("r0: 0.001", "r0: 0.002")
    assert text != (workdir / "config.yaml").read_text()
    (copy / "config.yaml").write_text(text)
    with pytest.raises(LoadError, match="optimizer.r0"):
        load_run(copy)


@pytest.mark.slow  # 16 s: a two-condition sweep
def test_a_sweep_condition_reads_its_runs_from_the_group_checkpoint(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(SMALL.replace("duration: 1.0", "duration: 0.5"))
    conds = conditions(path, sweep=parse_sweep_items(["optimizer.r0=1e-3,2e-2"]))
    root = tmp_path / "sweep"
    train_sweep(conds, root, progress=False)
    with pytest.raises(LoadError, match="sweep's folder"):
        load_run(root)
    runs = [load_run(root / condition_dir(i, c)) for i, c in enumerate(conds)]
    # the group checkpoint holds [condition x seed] runs, condition-major
    (group,) = root.glob("group-*/checkpoints")
    tr = build_trainer(conds[0].cfg)
    _, state, _ = Checkpointer(group).restore(init_states(tr, [0, 1, 2, 3], np.float32))
    for i, run in enumerate(runs):
        assert run.finished and run.seeds == (0, 1)
        assert run.config.optimizer.r0 == conds[i].cfg.optimizer.r0
        part = jax.tree.map(lambda a, i=i: a[2 * i : 2 * i + 2], state)
        assert _equal(run.state, part)
        assert np.asarray(run.history["van_rossum"]).shape[1] == 2
    assert not _equal(runs[0].state.weights, runs[1].state.weights)
    assert load_config(root / condition_dir(1, conds[1]) / "config.yaml") == runs[1].config
