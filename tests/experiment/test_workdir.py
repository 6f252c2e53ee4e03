"""The work directory: lock (live, stale, released), folder faults, atomic writes, config diff."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from ssjax.experiment import workdir as wd
from ssjax.experiment.workdir import (
    LOCK,
    WorkdirError,
    atomic_write,
    config_differences,
    open_workdir,
)

HOLD = textwrap.dedent(
    """
    import sys, time
    from ssjax.experiment.workdir import open_workdir
    lock = open_workdir(sys.argv[1])
    print("locked", flush=True)
    time.sleep(600)
    """
)


def _holder(path):
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "locked"
    return p


def test_second_process_is_refused_naming_the_pid_then_stale_lock_is_taken(tmp_path):
    run = tmp_path / "run"
    holder = _holder(run)
    try:
        (run / "metrics.jsonl").write_text("line\n")
        with pytest.raises(WorkdirError) as e:
            open_workdir(run)
        assert str(run) in str(e.value) and f"process {holder.pid}" in str(e.value)
        assert (run / "metrics.jsonl").read_text() == "line\n"  # nothing touched
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # the kernel released the dead holder's lock; its file (with the old PID) is still there
    assert json.loads((run / LOCK).read_text())["pid"] == holder.pid
    with open_workdir(run) as lock:
        assert lock.held
        assert json.loads((run / LOCK).read_text())["pid"] == os.getpid()
    assert not lock.held
    with open_workdir(run):  # released: can be taken again
        pass


def test_lock_is_per_open_not_reentrant(tmp_path):
    # a second open in the same process is refused too: flock locks belong to open files
    with open_workdir(tmp_path / "a"), pytest.raises(WorkdirError, match="in use"):
        open_workdir(tmp_path / "a")


def test_workdir_faults_are_workdir_errors_and_create_nothing(tmp_path, monkeypatch):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(WorkdirError, match="is a file, not a folder"):
        open_workdir(f)
    with pytest.raises(WorkdirError, match="a parent folder is a file"):
        open_workdir(f / "run")
    assert f.read_text() == "x"

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    # a read-only folder (root ignores mode bits, so the refusal is simulated)
    monkeypatch.setattr(wd.tempfile, "mkstemp", refuse)
    new = tmp_path / "new"
    with pytest.raises(WorkdirError, match="not writable: Permission denied"):
        open_workdir(new)
    assert not new.exists()  # the folder it created is removed again


def test_read_only_file_system_is_a_workdir_error(tmp_path, monkeypatch):
    def rofs(*a, **k):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(wd.Path, "mkdir", rofs)
    with pytest.raises(WorkdirError, match="cannot create it: Read-only file system"):
        open_workdir(tmp_path / "ro")


def test_atomic_write_replaces_whole_or_keeps_old(tmp_path, monkeypatch):
    p = tmp_path / "config.yaml"
    atomic_write(p, "old")
    atomic_write(p, b"new")
    assert p.read_bytes() == b"new"

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(wd.os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        atomic_write(p, "truncated?")
    assert p.read_text() == "new"  # the old file, whole
    assert sorted(x.name for x in tmp_path.iterdir()) == ["config.yaml"]  # no temporary left


def test_config_differences_names_changed_and_unknown_keys():
    a = {"optimizer": {"r0": 1e-3, "eps": 1e-12}, "run": {"seeds": 4}}
    assert config_differences(a, json.loads(json.dumps(a))) == []
    b = {"optimizer": {"r0": 5e-3, "eps": 1e-12}, "run": {"seeds": 4, "new_key": 1}}
    assert config_differences(a, b) == [
        ("optimizer.r0", 1e-3, 5e-3),
        ("run.new_key", "<absent>", 1),
    ]
    assert config_differences({"old": {"k": 1}}, {}) == [("old.k", 1, "<absent>")]
