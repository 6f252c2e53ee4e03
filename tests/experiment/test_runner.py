"""The training program: seeds, sharding, resume after SIGKILL/SIGTERM, faults, outputs."""

import json
import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssjax.experiment.checkpoint import Checkpointer, CheckpointError
from ssjax.experiment.config import build_heldout, build_task, build_trainer, load_config
from ssjax.experiment.runner import NumericalError, RunError, prepare, train
from ssjax.experiment.seeds import init_states, make_segment_fn, seed_mesh
from ssjax.metrics import heldout_accuracy
from ssjax.train import run_blocks

SMALL = """
network: {sizes: [40, 3, 1]}
task: {kind: timing, n_in: 40, n_out: 1, period: 0.2, target_times: [0.05, 0.12]}
optimizer: {burn_in: 0.4, drops: [[2.0, 0.1]]}
rule: {method: dense, feedback: random}
run: {seeds: 3, duration: 3.0, block: 0.1, checkpoint_every: 5, keep_checkpoints: 10,
      log_every: 5, raster_every: 10}
"""


def _cfg(tmp_path, text=SMALL, name="small.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def _final_state(workdir, cfg):
    tr = build_trainer(cfg)
    ids = [cfg.run.seed + k for k in range(cfg.run.seeds)]
    template = init_states(tr, ids, np.float32)
    ck = Checkpointer(Path(workdir) / "checkpoints")
    step, state, _ = ck.restore(template)
    return step, state


def _cli(*args, env=None, **kw):
    e = dict(os.environ, JAX_PLATFORMS="cpu", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "ssjax.experiment.cli", *args],
        env=e,
        capture_output=True,
        text=True,
        **kw,
    )


def _spawn_train(path, workdir, **kw):
    """``ssjax train`` in a child process (to be killed or signalled)."""
    cmd = [
        sys.executable,
        "-m",
        "ssjax.experiment.cli",
        "train",
        str(path),
        "--workdir",
        str(workdir),
        "--no-progress",
    ]
    return subprocess.Popen(cmd, env=dict(os.environ, JAX_PLATFORMS="cpu"), **kw)


# map: 12 s, run by .ci/run after the default suite
@pytest.mark.parametrize(
    "batching", [pytest.param(b, marks=pytest.mark.slow) for b in ("vmap", "map")]
)
def test_seeds_vmapped_equal_single_seed_runs(tmp_path, batching):
    path = _cfg(tmp_path, SMALL.replace("seeds: 3,", f"seeds: 3, seed_batching: {batching},"))
    if batching == "map":  # every seed runs the one-seed program: bit for bit
        check = np.testing.assert_array_equal
    else:  # shared-input products over all seeds at once: the same to float rounding
        check = partial(np.testing.assert_allclose, rtol=1e-4, atol=1e-7)
    cfg = prepare(path)
    train(cfg, tmp_path / "all", progress=False)
    _, all_state = _final_state(tmp_path / "all", cfg)
    for k in range(3):
        one = prepare(path, seeds=1, overrides=[f"run.seed={k}"])
        train(one, tmp_path / f"one{k}", progress=False)
        _, st = _final_state(tmp_path / f"one{k}", one)
        jax.tree.map(lambda a, b, k=k: check(a[k], b[0]), all_state, st)
    assert not np.array_equal(all_state.weights[0][0], all_state.weights[0][1])


def test_outputs_summary_logs_and_plots(tmp_path):
    cfg = prepare(_cfg(tmp_path))
    summary = train(cfg, tmp_path / "run", progress=False)
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["seeds"] == [0, 1, 2] and saved["rule"] == "superspike"
    assert saved["feedback"] == "random"
    assert saved["simulated_seconds"] == pytest.approx(3.0)
    assert len(saved["final"]["van_rossum"]) == 3
    assert set(saved["final"]["rate_hz"]) == {"hidden0", "output"}
    assert saved["median"]["van_rossum"] == pytest.approx(np.median(saved["final"]["van_rossum"]))
    assert summary["periods"] == 15
    for f in ("learning_curve.png", "raster.png", "config.yaml", "metrics.jsonl"):
        assert (tmp_path / "run" / f).stat().st_size > 0
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [x["block"] for x in lines] == [5, 10, 15, 20, 25, 30]
    assert any(p.name.startswith("events") for p in (tmp_path / "run" / "tb").rglob("*"))
    # per-period history, seed 0's final output, the feedback signs (random feedback)
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    assert hist["period"] == list(range(15)) and hist["period_seconds"] == pytest.approx(0.2)
    assert np.asarray(hist["van_rossum"]).shape == (15, 3)
    assert hist["layers"] == ["hidden0", "output"]
    np.testing.assert_allclose(np.mean(hist["van_rossum"][-1:], 0), saved["final"]["van_rossum"])
    npz = np.load(tmp_path / "run" / "final_output.npz")
    assert npz["output"].shape == npz["target"].shape == (2000, 1) and npz["target"].sum() == 2
    _, state = _final_state(tmp_path / "run", cfg)
    negative = [bool(np.all(np.asarray(state.rule.feedback[0][k]) < 0)) for k in range(3)]
    assert saved["final"]["feedback_all_negative"] == negative


@pytest.mark.slow  # 45 s (three training processes): run by .ci/run after the default suite
def test_sigkill_then_resume_is_bit_identical(tmp_path):
    path = _cfg(tmp_path, SMALL.replace("duration: 3.0", "duration: 30.0"))
    ref = tmp_path / "ref"
    assert _cli("train", str(path), "--workdir", str(ref), "--no-progress").returncode == 0
    run = tmp_path / "killed"
    proc = _spawn_train(path, run, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        steps = Checkpointer(run / "checkpoints").steps() if (run / "checkpoints").exists() else []
        if steps and steps[-1] >= 50:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = Checkpointer(run / "checkpoints").latest()
    assert killed_at is not None and killed_at < 300
    r = _cli("train", str(path), "--workdir", str(run), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stdout
    cfg = prepare(path)
    s_ref, a = _final_state(ref, cfg)
    s_run, b = _final_state(run, cfg)
    assert s_ref == s_run == 300
    jax.tree.map(np.testing.assert_array_equal, a, b)
    ref_sum = json.loads((ref / "summary.json").read_text())
    run_sum = json.loads((run / "summary.json").read_text())
    assert ref_sum["final"] == run_sum["final"]
    blocks = [json.loads(x)["block"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert blocks == sorted(set(blocks)) and blocks[-1] == 300


def test_sigterm_saves_checkpoint_and_exits(tmp_path):
    path = _cfg(tmp_path, SMALL.replace("duration: 3.0", "duration: 500.0"))
    run = tmp_path / "term"
    proc = _spawn_train(path, run, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "checkpoints").exists():
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM
    assert "checkpoint saved" in out
    ck = Checkpointer(run / "checkpoints")
    last = ck.latest()
    assert last is not None and 0 < last < 5000  # stopped early, with a checkpoint
    assert ck.read_meta(last)["block"] == last
    assert f"stopped at block {last}" in out


@pytest.mark.slow  # long check, run by .ci/run after the default suite
def test_config_mismatch_refused_then_overridden(tmp_path):
    path = _cfg(tmp_path)
    run = tmp_path / "run"
    assert _cli("train", str(path), "--workdir", str(run), "--no-progress").returncode == 0
    r = _cli("train", str(path), "--workdir", str(run), "--set", "optimizer.r0=0.002")
    assert r.returncode == 2
    assert "optimizer.r0" in r.stderr and "--override-config" in r.stderr
    r = _cli(
        "train",
        str(path),
        "--workdir",
        str(run),
        "--no-progress",
        "--override-config",
        "--set",
        "run.duration=4.0",
    )
    assert r.returncode == 0, r.stderr
    assert Checkpointer(run / "checkpoints").latest() == 40


def test_bad_config_exits_2_without_workdir(tmp_path):
    path = _cfg(tmp_path, SMALL.replace("block: 0.1", "blok: 0.1"))
    run = tmp_path / "never"
    r = _cli("train", str(path), "--workdir", str(run))
    assert r.returncode == 2 and "run.blok" in r.stderr and "block" in r.stderr
    assert not run.exists()
    r = _cli("validate", str(_cfg(tmp_path, SMALL, "ok.yaml")))
    assert r.returncode == 0 and "valid" in r.stdout


@pytest.mark.slow  # long check, run by .ci/run after the default suite
def test_corrupt_newest_checkpoint_error_and_fallback(tmp_path):
    path = _cfg(tmp_path)
    run = tmp_path / "run"
    cfg = prepare(path)
    train(cfg, run, progress=False)
    ck = Checkpointer(run / "checkpoints")
    newest = ck.latest()
    # the arrays' data files (a damaged file that restore does not read is harmless)
    files = sorted(p for p in (ck.path(newest) / "state").rglob("*") if "/d/" in str(p))
    for f in files:
        data = bytearray(f.read_bytes())
        data[len(data) // 2] ^= 0xFF
        f.write_bytes(bytes(data))
    longer = ["--set", "run.duration=4.0", "--override-config", "--no-progress"]
    r = _cli("train", str(path), "--workdir", str(run), *longer)
    assert r.returncode == 1 and str(newest) in r.stderr and "fallback" in r.stderr
    r = _cli("train", str(path), "--workdir", str(run), *longer, "--fallback-checkpoint")
    assert r.returncode == 0, r.stderr
    assert f"skipped corrupt checkpoint step(s) {newest}" in r.stderr
    assert Checkpointer(run / "checkpoints").latest() == 40
    # the corrupt checkpoint was kept (moved aside when the resumed run saved that step again)
    kept = list((run / "checkpoints").glob(f"corrupt-step_{newest:08d}-*"))
    assert len(kept) == 1 and (kept[0] / files[0].relative_to(ck.path(newest))).exists()


@pytest.mark.slow  # 18 s end to end; tests/test_checkpoint.py covers these paths by default
def test_workdir_with_brackets_and_backslash_saves_retains_resumes(tmp_path):
    # issue: with --workdir 'runs/lr[1e-3]' every checkpoint was unreadable (exit 0, thousands of
    # "Event loop is closed" lines), retention kept them all, and the rerun said "corrupt"
    path = _cfg(tmp_path)
    run = tmp_path / "runs" / "lr[1e-3]\\b"
    keep = ["--set", "run.keep_checkpoints=2", "--no-progress"]
    r = _cli("train", str(path), "--workdir", str(run), *keep)
    assert r.returncode == 0 and "Event loop" not in r.stderr and "WARNING" not in r.stderr
    ck = Checkpointer(run / "checkpoints")
    assert ck.steps() == [25, 30] and ck.read_meta()["block"] == 30
    r = _cli("train", str(path), "--workdir", str(run), *keep, "--override-config",
             "--set", "run.duration=4.0")  # fmt: skip
    assert r.returncode == 0 and "Event loop" not in r.stderr and "WARNING" not in r.stderr
    assert f"resuming {run} from block 30" in r.stdout
    assert ck.steps() == [35, 40] and os.listdir(tmp_path / "runs") == [run.name]


def test_nan_in_one_seed_halts_naming_seed_block_and_leaf(tmp_path):
    cfg = prepare(_cfg(tmp_path))
    with pytest.raises(NumericalError) as err:
        train(cfg, tmp_path / "nan", progress=False, inject_nan=(1, 10))
    msg = str(err.value)
    assert "seed 1" in msg and "block 10" in msg and ".weights[0]" in msg
    ck = Checkpointer(tmp_path / "nan" / "checkpoints")
    assert ck.latest() == 10
    _, st = _final_state(tmp_path / "nan", cfg)
    assert all(np.isfinite(np.asarray(w)).all() for w in st.weights)


def test_nan_skip_policy_keeps_training(tmp_path):
    cfg = load_config(_cfg(tmp_path), ["run.on_nonfinite=skip"])
    train(cfg, tmp_path / "skip", progress=False, inject_nan=(1, 10))
    _, st = _final_state(tmp_path / "skip", cfg)
    w = np.asarray(st.weights[0])
    assert np.isfinite(w[0]).all() and np.isfinite(w[2]).all()


@pytest.mark.parametrize("n_dev", [4])
@pytest.mark.slow  # 21 s (a 4-device subprocess): run by .ci/run after the default suite
def test_seed_sharding_matches_one_device(tmp_path, n_dev):
    # map: each device runs the one-seed program on its seeds, so the results are bit-identical
    path = _cfg(tmp_path, SMALL.replace("seeds: 3,", "seeds: 4, seed_batching: map,"))
    runs = {}
    for name, flags in (("one", ""), ("many", f"--xla_force_host_platform_device_count={n_dev}")):
        code = (
            "import jax, sys; from ssjax.experiment.runner import prepare, train;"
            "from ssjax.experiment.seeds import seed_mesh;"
            f"cfg = prepare({str(path)!r}); print('devices', seed_mesh(4).devices.size);"
            f"train(cfg, {str(tmp_path / name)!r}, progress=False)"
        )
        r = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env=dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=flags, SSJAX_CPU_DEVICES="1"),
        )
        assert r.returncode == 0, r.stderr
        runs[name] = r.stdout
    assert "devices 1" in runs["one"] and f"devices {n_dev}" in runs["many"]
    cfg = prepare(path)
    _, a = _final_state(tmp_path / "one", cfg)
    _, b = _final_state(tmp_path / "many", cfg)
    jax.tree.map(np.testing.assert_array_equal, a, b)


@pytest.mark.slow  # 14 s: run by .ci/run after the default suite
def test_xor_classification_run_reports_accuracy(tmp_path):
    text = """
network: {sizes: [30, 3, 2]}
task: {kind: xor, n_in: 30, n_out: 2, n_patterns: 8}
optimizer: {burn_in: 0.5, drops: []}
run: {seeds: 2, duration: 4.0, block: 0.5, checkpoint_every: 4, log_every: 2, raster_every: 8}
"""
    cfg = prepare(_cfg(tmp_path, text, "xor.yaml"))
    summary = train(cfg, tmp_path / "xor", progress=False)
    acc = summary["final"]["accuracy"]
    assert len(acc) == 2 and all(0.0 <= a <= 1.0 for a in acc)
    lines = (tmp_path / "xor" / "metrics.jsonl").read_text().splitlines()
    assert any("accuracy" in json.loads(x) for x in lines)
    with pytest.raises(Exception, match="window"):
        train(load_config(_cfg(tmp_path, text, "x2.yaml"), ["rule.name=bptt"]), tmp_path / "b")


@pytest.mark.slow  # 12 s: run by .ci/run after the default suite
def test_randman_run_reports_heldout_accuracy(tmp_path):
    text = """
network: {sizes: [8, 4, 3]}
task: {kind: randman, n_in: 8, n_out: 3, n_samples: 2, n_heldout: 3}
optimizer: {burn_in: 0.0, drops: []}
run: {seeds: 2, duration: 1.5, block: 0.5, checkpoint_every: 3, log_every: 3, raster_every: 3}
"""
    cfg = prepare(_cfg(tmp_path, text, "randman.yaml"))
    summary = train(cfg, tmp_path / "rm", progress=False)
    acc = summary["final"]["heldout_accuracy"]
    _, state = _final_state(tmp_path / "rm", cfg)
    want = heldout_accuracy(build_trainer(cfg).net, state.weights, *build_heldout(cfg))
    np.testing.assert_array_equal(acc, want)
    assert len(acc) == 2  # 3 classes x 3 held-out samples: multiples of 1/9
    np.testing.assert_allclose(np.asarray(acc) * 9, np.round(np.asarray(acc) * 9), atol=1e-9)
    assert summary["median"]["heldout_accuracy"] == pytest.approx(np.median(acc))


def _scan_out_shapes(jaxpr) -> list:
    """Output shapes of every ``scan`` in a (closed) jaxpr, nested ones included."""
    out = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "scan":
            out += [tuple(v.aval.shape) for v in eqn.outvars]
        for p in eqn.params.values():
            for sub in p if isinstance(p, (tuple, list)) else (p,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    out += _scan_out_shapes(inner)
    return out


def test_vmapped_seeds_share_the_input_layer_trace(tmp_path):
    """Under vmap the input layer's PSP trace is one scan for all seeds (no seed axis); under
    map (control) each seed computes its own, and the vmapped block's trace would carry the
    seed axis if the pattern position were batched."""
    cfg = prepare(_cfg(tmp_path))
    tr = build_trainer(cfg)
    x, y = (jnp.asarray(a) for a in build_task(cfg))
    k, n_in, seeds = tr.block_steps, tr.net.sizes[0], 3
    st = init_states(tr, [0, 1, 2], jnp.float32)
    shapes = {}
    for batching in ("vmap", "map"):
        fn = make_segment_fn(tr, x, y, seed_mesh(seeds), 2, batching)
        shapes[batching] = _scan_out_shapes(jax.make_jaxpr(fn)(st).jaxpr)
    trace, per_seed = (k, n_in + 2), (k, seeds, n_in + 2)
    assert trace in shapes["vmap"] and per_seed not in shapes["vmap"]
    # negative control: the same check on a seed-batched position finds the per-seed trace
    batched = jax.vmap(lambda s: run_blocks(tr, x, y, s, 2))
    assert per_seed in _scan_out_shapes(jax.make_jaxpr(batched)(st).jaxpr)
    assert trace in shapes["map"]  # map: the one-seed program, run per seed


@pytest.mark.parametrize(
    "method,skip",
    [pytest.param("dense", False, marks=pytest.mark.slow),
     pytest.param("event", True, marks=pytest.mark.slow)],
)  # fmt: skip
def test_vmapped_seeds_with_delays_match_one_seed_programs(tmp_path, method, skip):
    """Axonal and Hebbian delays: the input layer's delay lines are shared under vmap (and keep
    following the input stream when a block is skipped); each seed matches its one-seed run."""
    text = SMALL.replace(
        "rule: {method: dense, feedback: random}",
        f"rule: {{method: {method}, hebbian_delay: 0.0008, feedback: random}}",
    )
    text = text.replace("network:", "neuron: {delay: 0.0005}\nnetwork:")
    overrides = ["run.on_nonfinite=skip"] if skip else []
    cfg = load_config(_cfg(tmp_path, text), overrides)
    tr = build_trainer(cfg)
    x, y = (jnp.asarray(a) for a in build_task(cfg))
    st = init_states(tr, [0, 1, 2], jnp.float32)
    many, m_many = make_segment_fn(tr, x, y, seed_mesh(3), 6, "vmap")(st)
    for k in range(3):
        one_st = jax.tree.map(lambda a, k=k: a[k : k + 1], st)
        one, m_one = make_segment_fn(tr, x, y, seed_mesh(1), 6, "vmap")(one_st)
        jax.tree.map(
            lambda a, b, k=k: np.testing.assert_allclose(a[k], b[0], rtol=1e-4, atol=1e-7),
            many,
            one,
        )
        np.testing.assert_allclose(m_many.sq_err_seg[k], m_one.sq_err_seg[0], rtol=1e-4, atol=1e-7)
    # the delay lines are really there (5 and 8 steps), per seed in the stored state
    assert many.rule.net.delay[0].shape == (3, 5, 40)
    assert many.rule.layers[0].spk_buf.shape == (3, 8, 40)


def test_second_process_on_a_workdir_exits_2_and_leaves_the_run_alone(tmp_path):
    path = _cfg(tmp_path, SMALL.replace("duration: 3.0", "duration: 500.0"))
    run = tmp_path / "run"
    first = _spawn_train(path, run, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (run / "metrics.jsonl").exists():
            time.sleep(0.05)
        cfg_bytes = (run / "config.yaml").read_bytes()
        r = _cli("train", str(path), "--workdir", str(run), "--no-progress", timeout=120)
        assert r.returncode == 2
        assert f"{run} is in use by process {first.pid}" in r.stderr
        assert "Traceback" not in r.stderr
        assert (run / "config.yaml").read_bytes() == cfg_bytes
        assert first.poll() is None  # the first run goes on
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()


def test_resume_compares_the_checkpoints_config_when_config_yaml_is_gone(tmp_path):
    path = _cfg(tmp_path)
    run = tmp_path / "run"
    train(prepare(path), run, progress=False)
    (run / "config.yaml").unlink()
    other = prepare(path, overrides=["optimizer.r0=0.002"])
    with pytest.raises(RunError, match=r"checkpoint step 30 .* different config") as e:
        train(other, run, progress=False)
    assert "optimizer.r0: 0.001 (in step 30) -> 0.002" in str(e.value)
    assert not (run / "config.yaml").exists()  # a refused resume writes nothing
    train(other, run, progress=False, override_config=True)
    assert load_config(run / "config.yaml").optimizer.r0 == 0.002


def test_failed_override_resume_keeps_config_yaml_and_the_original_command(tmp_path):
    path = _cfg(tmp_path)
    run = tmp_path / "run"
    first = train(prepare(path), run, progress=False)
    before = (run / "config.yaml").read_bytes()
    with pytest.raises(CheckpointError, match="does not match the template"):
        train(prepare(path, seeds=2), run, progress=False, override_config=True)
    assert (run / "config.yaml").read_bytes() == before
    again = train(prepare(path), run, progress=False)  # the original command still runs
    assert again["final"] == first["final"]
    # wall_seconds counts every invocation, not only the last (which trains nothing): the
    # training time stored with the final checkpoint (all but its own save) plus this one
    saved = Checkpointer(run / "checkpoints").read_meta()["wall_seconds"]
    assert again["wall_seconds"] >= saved > 0.5 * first["wall_seconds"]


def test_saved_config_with_an_unknown_key_has_a_way_out(tmp_path):
    path = _cfg(tmp_path)
    run = tmp_path / "run"
    cfg = prepare(path)
    train(cfg, run, progress=False)
    saved = run / "config.yaml"
    saved.write_text(saved.read_text().replace("task:\n", "task:\n  future_key: 1\n"))
    with pytest.raises(RunError, match="cannot be read by this version") as e:
        train(cfg, run, progress=False)
    assert "task.future_key" in str(e.value) and "--override-config" in str(e.value)
    with pytest.warns(UserWarning, match="ignoring the saved config"):
        train(cfg, run, progress=False, override_config=True)
    assert load_config(saved) == cfg  # replaced by the new config


def test_run_shorter_than_a_period_warns_and_writes_strict_json(tmp_path, capsys):
    text = SMALL.replace("duration: 3.0", "duration: 0.1").replace("period: 0.2", "period: 0.3")
    summary = train(prepare(_cfg(tmp_path, text)), tmp_path / "run", progress=False)
    err = capsys.readouterr().err
    assert "shorter than one pattern period (0.3 s)" in err and "burn-in" in err
    assert len(summary["warnings"]) == 2

    def no_nan(name):
        raise AssertionError(f"{name} in strict JSON")

    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text(), parse_constant=no_nan)
    assert on_disk["median"]["van_rossum"] is None and on_disk["periods"] == 0
    assert on_disk["warnings"] == summary["warnings"]


def _stderr_line(proc, needle, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stderr.readline()
        if needle in line:
            return line
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"{needle!r} never appeared on stderr")


def test_second_sigint_stops_at_once_and_the_run_resumes(tmp_path):
    # one long segment (no log, raster or checkpoint due before block 5000)
    text = SMALL.replace("duration: 3.0", "duration: 500.0")
    text = text.replace("checkpoint_every: 5", "checkpoint_every: 5000")
    text = text.replace("log_every: 5, raster_every: 10", "log_every: 5000, raster_every: 5000")
    path = _cfg(tmp_path, text)
    run = tmp_path / "run"
    proc = _spawn_train(path, run, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not (run / "config.yaml").exists() and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _stderr_line(proc, "SIGINT again to quit at once")  # handled while the segment computes
    t0 = time.time()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGINT
    assert time.time() - t0 < 10  # not the segment's end (minutes away)
    assert "Traceback" not in err and "quitting at once" in err
    assert not (run / "checkpoints").exists() or Checkpointer(run / "checkpoints").latest() is None


def test_signal_during_start_up_exits_without_traceback(tmp_path):
    proc = _spawn_train(_cfg(tmp_path), tmp_path / "run", stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)  # importing jax
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGINT, err
    assert "Traceback" not in err and "interrupted before training started" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow  # long check, run by .ci/run after the default suite
def test_cli_float64_config_runs_in_64_bit(tmp_path):
    path = _cfg(tmp_path, SMALL.replace("raster_every: 10}", "raster_every: 10, dtype: float64}"))
    r = _cli("train", str(path), "--workdir", str(tmp_path / "run"), "--no-progress")
    assert r.returncode == 0, r.stderr
    ck = Checkpointer(tmp_path / "run" / "checkpoints")
    with ck._manager():
        leaves = ck._read_manifest(ck.latest())[0]["leaves"]
    weights = [x["dtype"] for x in leaves if x["path"].startswith(".weights")]
    assert weights and set(weights) == {"float64"}


def test_cli_workdir_faults_exit_2_with_a_message(tmp_path):
    path = _cfg(tmp_path)
    f = tmp_path / "file"
    f.write_text("x")
    for wd, msg in [(f, "is a file, not a folder"), (f / "run", "a parent folder is a file")]:
        r = _cli("train", str(path), "--workdir", str(wd), "--no-progress")
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr
    assert f.read_text() == "x"
