"""Checkpoints: bit-exact round trips, retention, atomicity under SIGKILL, integrity, mismatches."""

import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ssjax
from ssjax.checkpoint import Checkpointer, CheckpointError
from ssjax.network import Network
from ssjax.tasks.timing import timing_task
from ssjax.train import TrainSpec, TrainState, init_train_state, run_blocks

TRAINER = TrainSpec(Network((20, 3, 1)), block_steps=100)


def _state(trainer=TRAINER, seeds=2, blocks=0, dtype=jnp.float32, seed=0):
    """Seed-vmapped TrainState, optionally trained for a few blocks (non-trivial traces)."""
    keys = jax.random.split(jax.random.PRNGKey(seed), seeds)
    st = jax.vmap(lambda k: init_train_state(trainer, k, dtype))(keys)
    if blocks:
        task = timing_task(jax.random.PRNGKey(1), n_in=trainer.net.sizes[0], dtype=dtype)
        run = jax.vmap(lambda s: run_blocks(trainer, task.inputs, task.targets, s, blocks)[0])
        st = run(st)
    return st


def _marked(st, step):
    """A distinct state per step, so a restore can be checked against the step it claims."""
    return st._replace(pos=st.pos + step, ema=st.ema + step)


def _assert_bit_identical(a, b):
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    assert ta == tb
    for x, y in zip(la, lb, strict=True):
        assert isinstance(y, jax.Array)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.asarray(x).tobytes() == np.asarray(y).tobytes()


def _step_dir(directory, step):
    return Checkpointer(directory).path(step)


def _data_files(step_dir):
    files = [f for f in (step_dir / "arrays").rglob("*") if f.is_file() and "/d/" in str(f)]
    assert files
    return sorted(files, key=lambda f: f.stat().st_size)


def _tree_digest(root):
    return {
        str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(Path(root).rglob("*"))
        if f.is_file()
    }


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_round_trip_bit_identical_all_dtypes(tmp_path, dtype):
    with jax.enable_x64(dtype == jnp.float64):
        st = _state(blocks=10, dtype=dtype)
        dtypes = {np.dtype(x.dtype).name for x in jax.tree.leaves(st)}
        assert dtypes == {np.dtype(dtype).name, "int32", "uint32"}
        assert any(x.size == 0 for x in jax.tree.leaves(st))  # zero-size delay buffers
        assert int(st.opt_state.count[0]) == 10  # trained: non-trivial traces and counters
        assert float(jnp.abs(st.rule.layers[0].elig.rise).max()) > 0
        meta = {"config": {"net": [20, 3, 1], "rule": "superspike"}, "block": 2, "wall": 1.5}
        ck = Checkpointer(tmp_path / "ck")
        assert not (tmp_path / "ck").exists() and ck.steps() == [] and ck.latest() is None
        ck.save(7, st, meta)
        step, out, meta_out = ck.restore(_state(dtype=dtype, seed=5))
        assert step == 7 and meta_out == meta and ck.read_meta() == meta
        assert isinstance(out, TrainState)
        _assert_bit_identical(st, out)
        assert out.weights[0].devices() == {jax.devices()[0]}


def test_relative_directory_is_taken_from_the_working_directory(tmp_path, monkeypatch):
    # orbax needs absolute paths; `ssjax train` passes a relative runs/<name>/checkpoints
    monkeypatch.chdir(tmp_path)
    st = _state()
    ck = Checkpointer(Path("runs") / "ckpt")
    ck.save(3, st, {"k": 1})
    monkeypatch.chdir("/")
    assert ck.directory == tmp_path / "runs" / "ckpt" and ck.latest() == 3
    step, back, meta = ck.restore(st)
    assert step == 3 and meta == {"k": 1}
    _assert_bit_identical(st, back)


def test_float64_checkpoint_into_float32_template_names_dtypes(tmp_path):
    with jax.enable_x64(True):
        Checkpointer(tmp_path).save(0, _state(dtype=jnp.float64), {})
        with pytest.raises(CheckpointError, match=r"\.weights\[0\].*float64.*float32"):
            Checkpointer(tmp_path).restore(_state(dtype=jnp.float32))


def test_retention_steps_latest_and_no_overwrite(tmp_path):
    st = _state()
    ck = Checkpointer(tmp_path, keep=2)
    for s in [0, 5, 10, 15, 20]:
        ck.save(s, _marked(st, s), {"step": s})
    assert ck.steps() == [15, 20] and ck.latest() == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_00000015", "step_00000020"]
    with pytest.raises(CheckpointError, match="step 20.*overwrite"):
        ck.save(20, st, {})
    s, out, meta = ck.restore(st, 15)
    assert s == 15 and meta == {"step": 15} and ck.read_meta(20) == {"step": 20}
    _assert_bit_identical(_marked(st, 15), out)
    with pytest.raises(CheckpointError, match="step 5"):
        ck.restore(st, 5)
    with pytest.raises(CheckpointError, match="not JSON-able"):
        ck.save(30, st, {"x": object()})
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        Checkpointer(tmp_path / "empty").restore(st)


@pytest.mark.parametrize("kind", ["tmp_dir", "no_manifest", "orbax_tmp"])
def test_half_written_newest_is_ignored(tmp_path, kind):
    st = _state()
    ck = Checkpointer(tmp_path, keep=3)
    ck.save(1, _marked(st, 1), {"step": 1})
    ck.save(2, _marked(st, 2), {"step": 2})
    if kind == "tmp_dir":  # killed before the final rename
        half = tmp_path / ".tmp-step_00000003-deadbeef"
        shutil.copytree(_step_dir(tmp_path, 2), half)
    elif kind == "no_manifest":  # a step folder without its completion marker
        half = _step_dir(tmp_path, 3)
        shutil.copytree(_step_dir(tmp_path, 2), half)
        (half / "manifest.json").unlink()
    else:  # orbax killed mid-write: only its own temporary folder exists
        half = tmp_path / ".tmp-step_00000003-deadbeef"
        (half / "arrays.orbax-checkpoint-tmp-123").mkdir(parents=True)
        (half / "arrays.orbax-checkpoint-tmp-123" / "junk").write_bytes(b"\0" * 10)
    assert ck.steps() == [1, 2] and ck.latest() == 2
    step, out, meta = ck.restore(st)
    assert step == 2 and meta == {"step": 2}
    _assert_bit_identical(_marked(st, 2), out)
    if kind == "no_manifest":  # kept for inspection under another name, then step 3 saved
        with pytest.warns(UserWarning, match="moved corrupt checkpoint"):
            ck.save(3, _marked(st, 3), {"step": 3})
        assert len(list(tmp_path.glob("corrupt-step_00000003-*"))) == 1
        assert ck.steps() == [1, 2, 3]
    else:
        ck.save(3, _marked(st, 3), {"step": 3})  # the next save clears the debris
        assert not half.exists() and ck.steps() == [1, 2, 3]


def _corrupt(step_dir, kind):
    if kind == "flip":
        f = _data_files(step_dir)[-1]
        b = bytearray(f.read_bytes())
        b[len(b) // 2] ^= 0xFF
        f.write_bytes(bytes(b))
    elif kind == "truncate":
        f = _data_files(step_dir)[-1]
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    elif kind == "delete":
        _data_files(step_dir)[0].unlink()
    elif kind == "manifest":
        m = step_dir / "manifest.json"
        m.write_bytes(m.read_bytes()[:100])
    elif kind == "flip_and_fix_file_hash":  # the per-leaf checksums must still catch it
        # every 16th byte of every data file, so that array payload is hit whatever the (random)
        # layout of orbax's files; a single flipped byte may land in unread padding
        m = json.loads((step_dir / "manifest.json").read_text())
        for f in _data_files(step_dir):
            b = bytearray(f.read_bytes())
            for i in range(0, len(b), 16):
                b[i] ^= 0x01
            f.write_bytes(bytes(b))
            m["files"][str(f.relative_to(step_dir / "arrays"))] = hashlib.sha256(b).hexdigest()
        (step_dir / "manifest.json").write_text(json.dumps(m))


# orbax's reader can leave an "event loop is closed" callback behind when it fails on corrupt data
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize(
    "kind", ["flip", "truncate", "delete", "manifest", "flip_and_fix_file_hash"]
)
def test_corrupt_newest_raises_then_falls_back_and_is_kept(tmp_path, kind):
    st = _state(blocks=1)
    ck = Checkpointer(tmp_path, keep=2)
    for s in [1, 2, 3]:
        ck.save(s, _marked(st, s), {"step": s})
    bad = _step_dir(tmp_path, 3)
    _corrupt(bad, kind)
    digest = _tree_digest(bad)
    assert ck.steps() == [2, 3]
    with pytest.raises(CheckpointError, match=r"step 3 .*corrupt.*fallback=True.*step 2") as e:
        ck.restore(st)
    assert "--fallback-checkpoint" in str(e.value) and str(tmp_path) in str(e.value)
    with pytest.warns(UserWarning, match=r"skipped corrupt checkpoint step\(s\) 3"):
        step, out, meta = ck.restore(st, fallback=True)
    assert step == 2 and meta == {"step": 2}
    _assert_bit_identical(_marked(st, 2), out)
    # later saves' retention deletes good old steps but never the corrupt one
    for s in [4, 5, 6]:
        ck.save(s, _marked(st, s), {"step": s})
    assert ck.steps() == [3, 5, 6]
    assert _tree_digest(bad) == digest  # untouched
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        step, out, _ = ck.restore(st, fallback=True)
    assert step == 6
    _assert_bit_identical(_marked(st, 6), out)


def test_all_corrupt_fallback_raises(tmp_path):
    st = _state()
    ck = Checkpointer(tmp_path)
    ck.save(1, st, {})
    _corrupt(_step_dir(tmp_path, 1), "flip")
    with pytest.raises(CheckpointError, match="step 1 .*corrupt.*no older checkpoint"):
        ck.restore(st)
    with pytest.raises(CheckpointError, match="no checkpoint .* verifies"):
        ck.restore(st, fallback=True)


def test_template_mismatch_names_leaf_and_shapes(tmp_path):
    ck = Checkpointer(tmp_path)
    ck.save(0, _state(), {})
    other = _state(TrainSpec(Network((20, 5, 1)), block_steps=100))
    with pytest.raises(CheckpointError) as e:
        ck.restore(other)
    msg = str(e.value)
    assert ".weights[0]" in msg and "(2, 20, 3)" in msg and "(2, 20, 5)" in msg, msg
    assert "step 0" in msg
    with pytest.raises(CheckpointError, match=r"\.weights\[0\].*\(2, 20, 3\).*\(3, 20, 3\)"):
        ck.restore(_state(seeds=3))
    # a mismatch is a configuration error, not corruption: fallback does not hide it
    with pytest.raises(CheckpointError, match="weights"):
        ck.restore(other, fallback=True)
    with pytest.raises(CheckpointError, match="leaf"):
        ck.restore(_state()[:-1] + (None,))  # structure differs (a leaf missing)


_CHILD = """
import sys, jax
from ssjax.checkpoint import Checkpointer
from ssjax.network import Network
from ssjax.train import TrainSpec, init_train_state
tr = TrainSpec(Network((20, 3, 1)), block_steps=100)
st = jax.vmap(lambda k: init_train_state(tr, k))(jax.random.split(jax.random.PRNGKey(0), 2))
ck = Checkpointer(sys.argv[1], keep=2)
s = (ck.latest() or 0) + 1
while True:
    ck.save(s, st._replace(pos=st.pos + s, ema=st.ema + s), {"step": s})
    print("saved", s, flush=True)
    s += 1
"""


def test_sigkill_while_saving_never_leaves_listed_but_broken(tmp_path):
    st = _state()
    rng = random.Random(0)
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    killed_mid_save = 0
    for _ in range(4):
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        try:
            assert proc.stdout.readline().startswith("saved")  # running and saving
            time.sleep(rng.uniform(0.0, 0.4))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        killed_mid_save += any(p.name.startswith(".") for p in tmp_path.iterdir())
        ck = Checkpointer(tmp_path, keep=2)
        latest = ck.latest()
        assert latest is not None and len(ck.steps()) <= 3
        step, out, meta = ck.restore(st)  # no fallback: must verify
        assert step == latest and meta == {"step": latest}
        _assert_bit_identical(_marked(st, latest), out)
    # informative only: the random delays usually catch at least one save in flight
    print(f"killed mid-save {killed_mid_save} of 4 times")


def test_only_checkpoint_module_imports_orbax():
    root = Path(ssjax.__file__).parent
    pattern = re.compile(r"^\s*(import|from)\s+orbax\b", re.MULTILINE)
    importers = sorted(
        str(f.relative_to(root)) for f in root.rglob("*.py") if pattern.search(f.read_text())
    )
    assert importers == ["checkpoint.py"]
