"""Trial runs from a config (ssjax.experiment.trials): validation, the CLI end to end on a tiny
SHD-layout file, resume, best-checkpoint selection, and the runner against ssjax.trial directly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import jax
import numpy as np
import pytest
import yaml

from ssjax.data import epoch_key
from ssjax.experiment.checkpoint import Checkpointer
from ssjax.experiment.cli import main
from ssjax.experiment.config import (
    ConfigError,
    build_trial_optimizer,
    build_trial_sets,
    build_trial_spec,
    load_config,
    run_dtype,
)
from ssjax.experiment.load import describe, load_run
from ssjax.experiment.seeds import seed_ids
from ssjax.experiment.trials import epoch_metrics, init_run_state, seed_keys, train_trials
from ssjax.trial import evaluate_trials, init_trial_state, train_epoch

REPO = Path(__file__).resolve().parents[2]
N_IN, N_CLASSES, T_STEPS, DT = 12, 3, 30, 1e-3


def write_shd(path: Path, n_trials: int, seed: int) -> Path:
    """A tiny file in the SHD layout: class c fires units 4c..4c+3 early, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n_trials) % N_CLASSES
    times, units = [], []
    for c in labels:
        u = np.concatenate([np.repeat(np.arange(4 * c, 4 * c + 4), 3), rng.integers(0, N_IN, 6)])
        t = np.concatenate([rng.uniform(0, 0.01, 12), rng.uniform(0, 0.029, 6)])
        order = np.argsort(t)
        times.append(t[order].astype(np.float16))
        units.append(u[order].astype(np.uint16))
    with h5py.File(path, "w") as f:
        for name, data, dtype in (("times", times, np.float16), ("units", units, np.uint16)):
            d = f.create_dataset(f"spikes/{name}", (n_trials,), dtype=h5py.vlen_dtype(dtype))
            for i, x in enumerate(data):
                d[i] = x
        f.create_dataset("labels", data=labels.astype(np.uint8))
    return path


def config_dict(**over) -> dict:
    d = {
        "network": {"sizes": [N_IN, 16, N_CLASSES]},
        "neuron": {"dt": DT, "tau_ref": 0.0},
        "rule": {"name": "bptt"},
        "task": {
            "kind": "shd",
            "train_file": "train.h5",
            "test_file": "test.h5",
            "n_in": N_IN,
            "n_out": N_CLASSES,
            "trial_duration": T_STEPS * DT,
        },
        "readout": {"name": "max"},
        "optimizer": {"name": "adam", "learning_rate": 5e-3},
        "trials": {"batch_size": 8, "epochs": 4, "validation_fraction": 0.25, "eval_every": 1},
        "run": {"seeds": 2},
    }
    for key, v in over.items():
        sec, name = key.split("__")
        d.setdefault(sec, {})[name] = v
    return d


def write_config(folder: Path, **over) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "train.h5").exists():
        write_shd(folder / "train.h5", 48, 0)
        write_shd(folder / "test.h5", 15, 1)
    p = folder / "trials.yaml"
    p.write_text("# tiny SHD-layout trial run\n" + yaml.safe_dump(config_dict(**over)))
    return p


def state_leaves(workdir: Path, step=None):
    cfg = load_config(workdir / "config.yaml")
    spec, tx = build_trial_spec(cfg), build_trial_optimizer(cfg)
    template = init_run_state(spec, tx, seed_ids(cfg), run_dtype(cfg), cfg.trials.batch_size)
    _, state, meta = Checkpointer(workdir / "checkpoints").restore(template, step)
    return state, meta


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One uninterrupted tiny run through the CLI: (config path, workdir)."""
    root = tmp_path_factory.mktemp("trials")
    cfg = write_config(root / "data")
    work = root / "run"
    assert main(["train", str(cfg), "--workdir", str(work), "--no-progress"]) == 0
    return cfg, work


# ------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("over", "key", "text"),
    [
        ({"optimizer__name": "adamm"}, "optimizer.name", "did you mean 'adam'"),
        ({"optimizer__kwargs": {"beta1": 0.9}}, "optimizer.kwargs", "'beta1'"),
        ({"optimizer__kwargs": {"learning_rate": 0.1}}, "optimizer.kwargs", "a schedule"),
        (
            {"optimizer__kwargs": {"learning_rate": {"schedule": "constant_schedule"}}},
            "optimizer.learning_rate",
            "not both",
        ),
        (
            {
                "optimizer__learning_rate": 1e-3,
                "optimizer__kwargs": {"learning_rate": {"schedule": "constant_schedule"}},
            },
            "optimizer.kwargs",
            "missing keyword argument 'value'",
        ),
        ({"trials__batch_size": 0}, "trials.batch_size", ">= 1"),
        ({"trials__validation_fraction": 1.0}, "trials.validation_fraction", "< 1"),
        ({"trials__validation_fraction": 0.01}, "trials.validation_fraction", "0 for valid"),
        ({"trials__drop_last": True, "trials__batch_size": 40}, "trials.batch_size", "no batch"),
        ({"trials__spikes": "many"}, "trials.spikes", "'count', 'binary'"),
        ({"readout__name": "maxx"}, "readout.name", "did you mean 'max'"),
        ({"readout__scale": -1.0}, "readout.scale", "> 0"),
        ({"rule__name": "superspike"}, "readout.name", "'count_ce'"),
        ({"rule__tau_rise": 1e-2}, "rule.tau_rise", "readout is the loss"),
        ({"run__duration": 10.0}, "run.duration", "a trial task"),
        ({"optimizer__r0": 0.1}, "optimizer.r0", "a trial task"),
        ({"task__n_out": 2, "network__sizes": [N_IN, 16, 2]}, "task.train_file", "labels"),
        ({"task__train_file": "missing.h5"}, "task.train_file", "missing.h5: no such file"),
        ({"task__train_file": None}, "task.train_file", "needs this path"),
        ({"task__trial_duration": 0.0105}, "task.trial_duration", "multiple of neuron.dt"),
    ],
)
def test_trial_config_errors_name_the_key(tmp_path, over, key, text):
    with pytest.raises(ConfigError) as info:
        load_config(write_config(tmp_path, **over))
    assert info.value.key == key, str(info.value)
    assert text in str(info.value)


def test_pattern_configs_refuse_trial_keys(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("trials: {epochs: 3}\n")
    with pytest.raises(ConfigError, match=r"trials.epochs: not a key of task.kind 'timing'"):
        load_config(p)
    p.write_text("optimizer: {name: adam}\n")
    with pytest.raises(ConfigError, match=r"optimizer.name: must be one of 'rmaxprop'"):
        load_config(p)


def test_missing_file_is_exit_2_naming_file_and_key(tmp_path, capsys):
    cfg = write_config(tmp_path, task__test_file="nothere.h5")
    assert main(["train", str(cfg), "--workdir", str(tmp_path / "w"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "task.test_file" in err and "nothere.h5: no such file" in err and str(cfg) in err
    assert not (tmp_path / "w").exists()


def test_optimizer_kwargs_reach_optax(tmp_path):
    cfg = load_config(write_config(tmp_path, optimizer__kwargs={"b1": 0.5}))
    assert cfg.optimizer.kwargs == {"b1": 0.5} and hash(cfg) == hash(cfg)
    tx = build_trial_optimizer(cfg)
    w = (np.ones(3, np.float32),)
    upd, _ = tx.update((np.ones(3, np.float32),), tx.init(w), w)
    assert np.allclose(upd[0], -5e-3)  # adam's first step: -lr sign(g)
    sched = {"schedule": "constant_schedule", "value": 2e-2}
    cfg = load_config(
        write_config(
            tmp_path, optimizer__learning_rate=1e-3, optimizer__kwargs={"learning_rate": sched}
        )
    )
    tx = build_trial_optimizer(cfg)
    upd, _ = tx.update((np.ones(3, np.float32),), tx.init(w), w)
    assert np.allclose(upd[0], -2e-2)  # the schedule's rate


# ---------------------------------------------------------------------------- end to end


def test_cli_run_writes_summary_history_checkpoints_tb(finished):
    _, work = finished
    for name in ("config.yaml", "summary.json", "history.json", "metrics.jsonl"):
        assert (work / name).is_file(), name
    assert sorted(p.name for p in (work / "checkpoints").glob("step_*"))[-1] == "step_00000004"
    assert list((work / "tb").glob("events.out.tfevents.*"))
    s = json.loads((work / "summary.json").read_text())
    h = json.loads((work / "history.json").read_text())
    assert s["mode"] == "trials" and s["seeds"] == [0, 1] and s["epochs"] == 4
    assert s["n_trials"] == {"train": 36, "validation": 12, "test": 15}
    assert h["epoch"] == [1, 2, 3, 4] and np.shape(h["train_loss"]) == (4, 2)
    assert s["final"]["val_accuracy"] == h["val_accuracy"][-1]
    assert all(0 <= a <= 1 for a in s["final"]["test_accuracy"])
    assert s["median"]["final.test_accuracy"] == np.median(s["final"]["test_accuracy"])
    lines = [json.loads(x) for x in (work / "metrics.jsonl").read_text().splitlines()]
    assert [x["block"] for x in lines] == [1, 2, 3, 4]
    assert lines[-1]["val_accuracy"] == h["val_accuracy"][-1]
    # it learns: the classes are separable by their early units
    assert np.mean(h["train_loss"][-1]) < np.mean(h["train_loss"][0])


def test_best_checkpoint_is_the_argmax_of_the_validation_history(finished):
    _, work = finished
    s = json.loads((work / "summary.json").read_text())
    h = json.loads((work / "history.json").read_text())
    acc = np.asarray(h["val_accuracy"])  # [evaluations, seeds]
    best = np.asarray(h["eval_epoch"])[np.argmax(acc, axis=0)]  # the first maximum
    assert s["best"]["epoch"] == best.tolist()
    assert s["best"]["val_accuracy"] == pytest.approx(acc.max(0).tolist(), abs=1e-7)
    # the kept weights score that accuracy on the validation split again
    cfg = load_config(work / "config.yaml")
    spec = build_trial_spec(cfg)
    _, val, test = build_trial_sets(cfg)
    state, _ = state_leaves(work)
    for k in range(2):
        w = tuple(x[k] for x in state.best_weights)
        out = evaluate_trials(spec, w, val.with_batch(8))
        assert float(out["accuracy"]) == pytest.approx(acc.max(0)[k], abs=1e-7)
        t = evaluate_trials(spec, w, test.with_batch(8))
        assert float(t["accuracy"]) == pytest.approx(s["best"]["test_accuracy"][k], abs=1e-7)


def test_runner_epochs_equal_train_epoch_called_directly(finished):
    """Independent route: ssjax.trial.train_epoch per seed, in a Python loop over seeds and
    epochs, with the keys the runner documents; same losses and the same final weights."""
    _, work = finished
    cfg = load_config(work / "config.yaml")
    spec, tx = build_trial_spec(cfg), build_trial_optimizer(cfg)
    train, _, _ = build_trial_sets(cfg)
    trials = train.with_batch(cfg.trials.batch_size)
    h = json.loads((work / "history.json").read_text())
    final, _ = state_leaves(work)
    init_keys, data_keys = seed_keys([0, 1])
    for k in range(2):
        st = init_trial_state(spec, tx, init_keys[k])
        for e in range(4):
            st, m = train_epoch(spec, tx, st, trials, epoch_key(data_keys[k], e))
            loss, acc = epoch_metrics(jax.tree.map(lambda a: np.asarray(a)[None], m))
            assert loss[0] == pytest.approx(h["train_loss"][e][k], rel=1e-5)
            assert acc[0] == pytest.approx(h["train_accuracy"][e][k], abs=1e-9)
        for a, b in zip(st.weights, final.train.weights, strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b[k]), rtol=1e-5, atol=1e-7)


def test_load_run_reads_a_trial_run(finished):
    _, work = finished
    run = load_run(work)
    assert run.trials and run.finished and run.block == 4 and run.seeds == (0, 1)
    assert run.summary["mode"] == "trials" and run.weights(1)[0].shape == (N_IN, 16)
    assert "4 epochs" in describe(run)


def test_resume_after_a_stop_equals_the_uninterrupted_run(finished, tmp_path):
    cfg_path, work = finished
    cfg = load_config(cfg_path)
    other = tmp_path / "resumed"
    with pytest.raises(SystemExit) as info:
        train_trials(cfg, other, progress=False, stop_after=2)
    assert info.value.code == 128 + signal.SIGTERM
    assert Checkpointer(other / "checkpoints").latest() == 2
    train_trials(cfg, other, progress=False)
    a, ma = state_leaves(work)
    b, mb = state_leaves(other)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert ma["history"] == mb["history"]
    lines = [json.loads(x)["block"] for x in (other / "metrics.jsonl").read_text().splitlines()]
    assert lines == [1, 2, 3, 4]


def test_shipped_shd_config_reads_data_rooted_paths(tmp_path, monkeypatch):
    root = tmp_path / "root"
    (root / "shd").mkdir(parents=True)
    write_shd(root / "shd" / "shd_train.h5", 30, 0)
    write_shd(root / "shd" / "shd_test.h5", 9, 1)
    monkeypatch.setenv("SSJAX_DATA", str(root))
    over = [f"network.sizes=[{N_IN}, 8, {N_CLASSES}]", f"task.n_in={N_IN}", "task.n_out=3"]
    over += ["task.trial_duration=0.03"]
    cfg = load_config(REPO / "configs" / "shd.yaml", over)
    assert cfg.task.train_file == str(root / "shd" / "shd_train.h5")
    train, val, test = build_trial_sets(cfg)
    assert (train.n_trials, val.n_trials, test.n_trials) == (27, 3, 9)


# ---------------------------------------------------------------------------------- slow


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killed_cli_run_resumes_bit_identical(tmp_path, sig):
    """A real signal to ``ssjax train`` after the first checkpoint, then a rerun, equals the
    uninterrupted run (SIGTERM: stops after saving; SIGKILL: dies, resumes from the newest
    checkpoint). 16 epochs, a checkpoint each, so that the signal lands mid-run."""
    cfg_path = write_config(tmp_path / "data", trials__epochs=16)
    work = tmp_path / "whole"
    train_trials(load_config(cfg_path), work, progress=False)
    other = tmp_path / "killed"
    cmd = [sys.executable, "-m", "ssjax.experiment.cli", "train", str(cfg_path)]
    cmd += ["--workdir", str(other), "--no-progress"]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if Checkpointer(other / "checkpoints").steps():
            proc.send_signal(sig)
            break
        time.sleep(0.05)
    proc.communicate(timeout=240)
    steps = Checkpointer(other / "checkpoints").steps()
    assert steps and steps[-1] < 16, "the run must be stopped before its end"
    assert subprocess.run(cmd, env=env, capture_output=True, timeout=240).returncode == 0
    a, ma = state_leaves(work)
    b, mb = state_leaves(other)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert ma["history"] == mb["history"]


def test_keep_best_takes_the_first_maximum_per_seed():
    """Negative control for the run above, where the best may be the last epoch: accuracies
    that rise, fall and tie pick each seed's first maximum, with that epoch's weights."""
    from ssjax.experiment.trials import TrialRunState, _keep_best

    accs = np.array([[0.5, 0.9], [0.8, 0.2], [0.7, 0.9], [0.8, 0.1]])
    w0 = (np.zeros((2, 3)),)
    run = TrialRunState(None, w0, np.full(2, -1.0), np.zeros(2, np.int32))
    for e, acc in enumerate(accs, start=1):
        train = type("T", (), {"weights": (np.full((2, 3), float(e)),)})()
        run = _keep_best(run._replace(train=train), acc, e)
    assert np.asarray(run.best_epoch).tolist() == [2, 1]
    assert np.asarray(run.best_accuracy).tolist() == pytest.approx([0.8, 0.9])
    np.testing.assert_array_equal(np.asarray(run.best_weights[0])[:, 0], [2.0, 1.0])


@pytest.mark.slow
def test_vmap_seed_batching_equals_map_to_rounding(tmp_path):
    """run.seed_batching vmap (the accelerators' default) against map (CPU's): the same run to
    float rounding."""
    hist = {}
    for mode in ("map", "vmap"):
        cfg_path = write_config(tmp_path / "data", run__seed_batching=mode, trials__epochs=2)
        train_trials(load_config(cfg_path), tmp_path / mode, progress=False)
        hist[mode] = json.loads((tmp_path / mode / "history.json").read_text())
    for key in ("train_loss", "val_loss"):
        np.testing.assert_allclose(hist["vmap"][key], hist["map"][key], rtol=1e-4)
    a, _ = state_leaves(tmp_path / "map")
    b, _ = state_leaves(tmp_path / "vmap")
    for x, y in zip(a.train.weights, b.train.weights, strict=True):
        np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=1e-4, atol=1e-6)
