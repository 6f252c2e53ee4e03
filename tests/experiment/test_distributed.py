"""Runs across processes (jax.distributed on 127.0.0.1): the same results as one process, bit
for bit (map batching); a killed process ends the other cleanly; checkpoints resume in 2
processes and in 1; only process 0 writes the work directory."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from ssjax.experiment.checkpoint import Checkpointer
from ssjax.experiment.config import build_trainer
from ssjax.experiment.distributed import DistributedError, DistSettings, settings_from_env
from ssjax.experiment.runner import prepare
from ssjax.experiment.seeds import init_states

SMALL = """
network: {sizes: [20, 2, 1]}
task: {kind: timing, n_in: 20, n_out: 1, period: 0.2, target_times: [0.05, 0.12]}
optimizer: {burn_in: 0.4, drops: [[2.0, 0.1]]}
rule: {method: dense, feedback: random}
run: {seeds: 4, seed_batching: map, duration: 4.0, block: 0.1, checkpoint_every: 5,
      keep_checkpoints: 20, log_every: 5, raster_every: 10}
"""
WAIT = 240  # s: the longest any child process may take (a hang fails the test, never CI)


def test_settings_from_flags_and_variables():
    assert settings_from_env(env={}) is None  # no flag, no variable: one process
    env = {"SSJAX_COORDINATOR": "10.0.0.1:1234", "SSJAX_NUM_PROCESSES": "4"}
    s = settings_from_env(process_id=3, env={**env, "SSJAX_PROCESS_ID": "1"})
    assert s == DistSettings("10.0.0.1:1234", 4, 3, 60)  # a flag wins over its variable
    # --distributed alone: jax.distributed's cluster detection (SLURM, ...) fills in the rest
    assert settings_from_env(True, env={"SSJAX_DIST_TIMEOUT": "15"}) == DistSettings(timeout=15)
    bad = [
        dict(coordinator="no-port"),
        dict(num_processes=0),
        dict(num_processes=2, process_id=2),
        dict(distributed=True, env={"SSJAX_PROCESS_ID": "x"}),
        dict(distributed=True, env={"SSJAX_DIST_TIMEOUT": "0"}),
    ]
    for kw in bad:
        kw.setdefault("env", {})
        with pytest.raises(DistributedError):
            settings_from_env(**kw)


def test_cli_refuses_bad_process_settings(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "ssjax.experiment.cli", "train", "default", "--workdir",
         str(tmp_path / "w"), "--coordinator", "127.0.0.1:1", "--num-processes", "2",
         "--process-id", "2"],
        env=dict(os.environ, JAX_PLATFORMS="cpu"), capture_output=True, text=True, timeout=WAIT,
    )  # fmt: skip
    assert r.returncode == 2 and "--process-id 2 must be < --num-processes 2" in r.stderr
    assert not (tmp_path / "w").exists()


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(path, workdir, logs: Path, n=2, port=None, extra=()):
    """``n`` processes of ``ssjax train`` (one without jax.distributed when ``n == 1``), each
    with 2 CPU devices; their output goes to ``logs/p<i>.txt``."""
    logs.mkdir(parents=True, exist_ok=True)
    port = port or _port()
    env = dict(os.environ, JAX_PLATFORMS="cpu", SSJAX_CPU_DEVICES="2", SSJAX_DIST_TIMEOUT="30")
    cmd = [sys.executable, "-m", "ssjax.experiment.cli", "train", str(path), "--workdir",
           str(workdir), "--no-progress", *extra]  # fmt: skip
    procs = []
    for i in range(n):
        dist = [] if n == 1 else ["--coordinator", f"127.0.0.1:{port}",
                                  "--num-processes", str(n), "--process-id", str(i)]  # fmt: skip
        out = open(logs / f"p{i}.txt", "w")  # noqa: SIM115 (closed with the process)
        procs.append(subprocess.Popen([*cmd, *dist], env=env, stdout=out, stderr=out))
        out.close()
    return procs


def _wait_all(procs, logs: Path) -> list[int]:
    deadline = time.time() + WAIT
    try:
        return [p.wait(timeout=max(1.0, deadline - time.time())) for p in procs]
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        text = "\n".join(f.read_text()[-2000:] for f in sorted(logs.glob("p*.txt")))
        pytest.fail(f"a process did not end within {WAIT} s:\n{text}")


def _run(path, workdir, logs, n):
    procs = _spawn(path, workdir, logs, n, _port())
    codes = _wait_all(procs, logs)
    assert codes == [0] * n, (logs / "p0.txt").read_text()[-3000:]


def _final(workdir, cfg):
    template = init_states(build_trainer(cfg), list(range(cfg.run.seeds)), np.float32)
    return Checkpointer(Path(workdir) / "checkpoints").restore(template)


def _same_results(a: Path, b: Path, cfg):
    sa, sb = (json.loads((w / "summary.json").read_text()) for w in (a, b))
    assert sa["final"] == sb["final"] and sa["median"] == sb["median"]
    assert json.loads((a / "history.json").read_text()) == json.loads(
        (b / "history.json").read_text()
    )
    (ka, xa, _), (kb, xb, _) = _final(a, cfg), _final(b, cfg)
    assert ka == kb == 40
    jax.tree.map(np.testing.assert_array_equal, xa, xb)


def _kill_one_after(procs, workdir: Path, step: int, victim: int, logs: Path) -> int:
    """SIGKILL process ``victim`` once checkpoint ``step`` exists; returns the other's exit
    code (it must end on its own, well within the heartbeat timeout)."""
    deadline = time.time() + WAIT
    ck = workdir / "checkpoints"
    while time.time() < deadline and not (ck / f"step_{step:08d}").is_dir():
        assert all(p.poll() is None for p in procs), (logs / "p0.txt").read_text()[-3000:]
        time.sleep(0.05)
    procs[victim].send_signal(signal.SIGKILL)
    t0 = time.time()
    codes = _wait_all(procs, logs)
    assert time.time() - t0 < 60
    return codes[1 - victim]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One process, 2 CPU devices: the results every other run must equal."""
    root = tmp_path_factory.mktemp("dist")
    path = root / "small.yaml"
    path.write_text(SMALL)
    _run(path, root / "ref", root / "ref-logs", 1)
    return path, root / "ref", prepare(path)


@pytest.mark.slow  # about 2 min on 2 cores: 4 training processes
def test_two_processes_killed_resume_in_two_bit_identical(reference, tmp_path):
    path, ref, cfg = reference
    run, logs = tmp_path / "run", tmp_path / "logs"
    procs = _spawn(path, run, logs)
    code = _kill_one_after(procs, run, 10, victim=1, logs=logs)
    assert code != 0
    text = (logs / "p0.txt").read_text()
    assert "lost contact with another process" in text or "another task died" in text
    steps = Checkpointer(run / "checkpoints").steps()
    assert 10 <= steps[-1] < 40  # killed before the end
    # only process 0 wrote: its logs, no second lock holder, one config
    assert (run / "metrics.jsonl").exists() and not list(run.glob("*.tmp"))
    _run(path, run, tmp_path / "logs2", 2)
    assert "resuming" in (tmp_path / "logs2" / "p0.txt").read_text()
    assert "resuming" not in (tmp_path / "logs2" / "p1.txt").read_text()
    _same_results(ref, run, cfg)
    blocks = [json.loads(x)["block"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert blocks == sorted(set(blocks)) and blocks[-1] == 40


@pytest.mark.slow  # about 1.5 min on 2 cores
def test_process_0_killed_resume_in_one_process(reference, tmp_path):
    path, ref, cfg = reference
    run, logs = tmp_path / "run", tmp_path / "logs"
    procs = _spawn(path, run, logs)
    assert _kill_one_after(procs, run, 10, victim=0, logs=logs) != 0
    assert Checkpointer(run / "checkpoints").steps()[-1] < 40
    _run(path, run, tmp_path / "logs2", 1)  # the 2 processes' checkpoint, in 1 process
    _same_results(ref, run, cfg)


def test_start_failure_on_process_0_reaches_process_1(tmp_path):
    """A work directory in use: both processes exit 2 at once (not after a timeout) with
    process 0's message naming the holder, and nothing is changed (about 10 s)."""
    from ssjax.experiment.workdir import open_workdir

    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    run = tmp_path / "run"
    with open_workdir(run):  # this test process holds the lock
        procs = _spawn(path, run, tmp_path / "logs")
        assert _wait_all(procs, tmp_path / "logs") == [2, 2]
    msg = (tmp_path / "logs" / "p1.txt").read_text()
    assert f"process 0: work directory {run} is in use by process {os.getpid()}" in msg
    assert sorted(p.name for p in run.iterdir()) == [".lock"]


@pytest.mark.slow  # about 1 min on 2 busy cores
def test_sweep_in_two_processes_equals_one(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(SMALL.replace("seeds: 4,", "seeds: 2,").replace("4.0", "1.0"))
    sweep = ["--sweep", "optimizer.r0=1e-3,2e-2"]  # one group: 2 conditions x 2 seeds
    procs = _spawn(path, tmp_path / "two", tmp_path / "logs2", extra=sweep)
    assert _wait_all(procs, tmp_path / "logs2") == [0, 0]
    procs = _spawn(path, tmp_path / "ref", tmp_path / "logs3", n=1, extra=sweep)
    assert _wait_all(procs, tmp_path / "logs3") == [0]
    ref, two = (json.loads((tmp_path / w / "sweep.json").read_text()) for w in ("ref", "two"))
    assert ref == two and len(ref["table"]) == 2
    for c in ref["conditions"]:
        a, b = (json.loads((tmp_path / w / c["dir"] / "summary.json").read_text())
                for w in ("ref", "two"))  # fmt: skip
        assert a["final"] == b["final"]
    assert "| optimizer.r0=" in (tmp_path / "logs2" / "p0.txt").read_text()
    assert "| optimizer.r0=" not in (tmp_path / "logs2" / "p1.txt").read_text()
