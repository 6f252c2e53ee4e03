"""The work directory of a run: opening it, its lock, atomic writes and the config it holds.

One process trains in a work directory at a time. :func:`open_workdir` creates the folder (or
finds it), checks that it is a writable folder and takes an exclusive ``flock`` on
``<workdir>/.lock``, which records the holder's PID, host and start time. A second process gets
:class:`WorkdirError` at once, naming the directory and that PID, before it reads or writes
anything else; the kernel drops the lock of a process that dies (``kill -9`` included), so a
stale lock file is taken over silently. flock is advisory and per host: two hosts sharing the
folder over NFS are protected only where the NFS client forwards flock (Linux does).

The files a run rewrites (``config.yaml``, ``summary.json``, ``history.json``) go through
:func:`atomic_write`: a temporary file in the same folder, fsynced, then renamed over the old
one, so a full disk or a kill leaves the old file or the new one, never a truncated one.

:func:`config_differences` compares the config of a run (from ``config.yaml`` or a checkpoint's
meta) with the new one, key by key.

Reference: DESIGN.md (train, checkpoint); issue 15 of the fault battery.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import tempfile
import time
from pathlib import Path

__all__ = [
    "LOCK",
    "WorkdirError",
    "WorkdirLock",
    "atomic_write",
    "config_differences",
    "open_workdir",
]

LOCK = ".lock"


class WorkdirError(RuntimeError):
    """The work directory cannot be used: not a folder, not writable, or held by another run."""


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another process"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("since", 0)))
    return f"process {info.get('pid')} on {info.get('host')} (since {since})"


class WorkdirLock:
    """An exclusive, non-blocking ``flock`` on ``<workdir>/.lock``; use :func:`open_workdir`."""

    def __init__(self, workdir: Path, fd: int):
        self.workdir, self._fd = workdir, fd

    @property
    def held(self) -> bool:
        return self._fd >= 0

    def release(self) -> None:
        """Drop the lock (the file stays: deleting it would race with a process waiting on it)."""
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> WorkdirLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _fault(workdir: Path, what: str, exc: OSError) -> WorkdirError:
    return WorkdirError(f"work directory {workdir}: {what}: {exc.strerror or exc}")


def open_workdir(workdir) -> WorkdirLock:
    """Create ``workdir`` if needed, check it is a writable folder and lock it for this process.

    Raises :class:`WorkdirError` (the CLI's exit code 2) when the path or a parent is a file,
    the folder cannot be created or written (read-only file system, permissions), or another
    live process holds the lock (the message names its PID). A folder this call created is
    removed again when it then fails, so a refused command leaves nothing behind."""
    workdir = Path(workdir)
    existed = workdir.exists()
    if existed and not workdir.is_dir():
        raise WorkdirError(f"work directory {workdir} is a file, not a folder")
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise WorkdirError(
            f"work directory {workdir}: a parent folder is a file, not a folder"
        ) from None
    except OSError as exc:
        raise _fault(workdir, "cannot create it", exc) from None
    try:
        return _lock(workdir)
    except BaseException:
        if not existed:
            with contextlib.suppress(OSError):
                (workdir / LOCK).unlink(missing_ok=True)
                workdir.rmdir()
        raise


def _lock(workdir: Path) -> WorkdirLock:
    path = workdir / LOCK
    try:
        # a probe file: a lock file may exist and be writable on a folder that is not
        fd_probe, probe = tempfile.mkstemp(prefix=".probe-", dir=workdir)
        os.close(fd_probe)
        os.unlink(probe)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise _fault(workdir, "not writable", exc) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise WorkdirError(
            f"work directory {workdir} is in use by {_holder(path)}; wait for that run to end, "
            "stop it, or use another --workdir"
        ) from None
    except OSError as exc:  # a file system without locks
        os.close(fd)
        raise _fault(workdir, "cannot lock it", exc) from None
    info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    return WorkdirLock(workdir, fd)


def atomic_write(path, data: str | bytes) -> None:
    """Replace ``path`` by ``data`` atomically: write a temporary sibling, fsync, rename.

    On any failure (a full disk, say) the temporary file is removed and ``path`` is untouched;
    the OSError propagates."""
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:  # persist the rename
        os.fsync(dfd)
    finally:
        os.close(dfd)


_ABSENT = "<absent>"


def config_differences(saved: dict, new: dict) -> list[tuple[str, object, object]]:
    """``(section.key, saved value, new value)`` for every key whose values differ.

    Both are :func:`ssjax.experiment.config.config_to_dict` dicts (``saved`` may come from an
    older or newer version: a key only one side has is reported with ``'<absent>'`` on the
    other side)."""
    out = []
    for sec in dict.fromkeys([*saved, *new]):
        a, b = saved.get(sec) or {}, new.get(sec) or {}
        for key in dict.fromkeys([*a, *b]):
            va, vb = a.get(key, _ABSENT), b.get(key, _ABSENT)
            if va != vb:
                out.append((f"{sec}.{key}", va, vb))
    return out
