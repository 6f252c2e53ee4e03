"""Runs across processes: ``jax.distributed`` set-up, the primary process, host copies, agreement.

``ssjax train CONFIG --distributed`` (or ``--coordinator HOST:PORT --num-processes N
--process-id I``, or the variables ``SSJAX_COORDINATOR``, ``SSJAX_NUM_PROCESSES``,
``SSJAX_PROCESS_ID``) starts the process as one of ``N`` with :func:`initialize`, before any
JAX computation. ``--distributed`` alone lets ``jax.distributed.initialize()`` read the cluster's
environment (SLURM, Open MPI; ``JAX_COORDINATOR_ADDRESS``). Every process has its own CPU
devices (``SSJAX_CPU_DEVICES``, see :mod:`ssjax.xla`); ``jax.devices()`` then lists all of
them and the ``seeds`` mesh (:func:`ssjax.experiment.seeds.seed_mesh`) takes the same number
from each process, so each process computes its share of a run's seeds (of a sweep group's
condition x seed runs). With ``map`` batching every seed runs the one-seed program, so the
results are bit-identical to a single process's.

Only the primary process (``jax.process_index() == 0``) reads and writes the work directory:
it holds the lock, restores and writes checkpoints (whole arrays, gathered with
:func:`to_host`), logs, summaries and plots; the others receive the restored state by
:func:`broadcast` and never touch the folder, so it need not be shared between hosts. A failure
at start on the primary (a locked or mismatched work directory, a corrupt checkpoint) reaches
the others through :func:`agree`, which re-raises it everywhere as :class:`PeerError` with the
primary's message and exit code.

A process that dies is noticed by the others at their next collective (gloo reports the closed
connection at once) or by JAX's distributed service when its heartbeats stop
(``SSJAX_DIST_TIMEOUT`` seconds, default :data:`DEFAULT_TIMEOUT`); the survivors then end with a
non-zero exit code (JAX's client aborts the process: 134) and the run resumes from its last
complete checkpoint, with any number of processes.

Reference: issue 16 (item 5); ``jax.distributed.initialize`` and
``jax.experimental.multihost_utils`` of jax 0.10.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os

import numpy as np

__all__ = [
    "DEFAULT_TIMEOUT",
    "DistributedError",
    "DistSettings",
    "PeerError",
    "PeerLost",
    "allgather",
    "agree",
    "broadcast",
    "initialize",
    "is_primary",
    "multi_process",
    "settings_from_env",
    "to_host",
]

DEFAULT_TIMEOUT = 60  # seconds: heartbeat and shutdown timeouts of jax.distributed
COORDINATOR_ENV, NUM_ENV, ID_ENV = "SSJAX_COORDINATOR", "SSJAX_NUM_PROCESSES", "SSJAX_PROCESS_ID"
TIMEOUT_ENV = "SSJAX_DIST_TIMEOUT"
_MSG_BYTES = 4096  # an error message broadcast by agree(), truncated to this length


class DistributedError(RuntimeError):
    """The distributed set-up is invalid or failed (the CLI's exit code 2)."""


class PeerError(RuntimeError):
    """The primary process failed; ``code`` is its exit code, the message its error."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


class PeerLost(RuntimeError):
    """Another process stopped answering during a collective (it probably died)."""


@contextlib.contextmanager
def _collective(what: str):
    import jax

    try:
        yield
    except jax.errors.JaxRuntimeError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise PeerLost(
            f"lost contact with another process while {what} ({first}); it has probably died: "
            "start the run again (any number of processes) to resume from its last checkpoint"
        ) from None


@dataclasses.dataclass(frozen=True)
class DistSettings:
    """How to start ``jax.distributed``: None fields are left to its cluster detection."""

    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    timeout: int = DEFAULT_TIMEOUT


def _int(name: str, raw, lo: int) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = lo - 1
    if value < lo:
        raise DistributedError(f"{name} must be an integer >= {lo}, got {raw!r}")
    return value


def settings_from_env(
    distributed=False, coordinator=None, num_processes=None, process_id=None, env=None
) -> DistSettings | None:
    """The settings that the command-line values (None: unset) and the ``SSJAX_*`` variables
    ask for, or None for a single process (no flag and no variable set). A flag wins over its
    variable. Raises DistributedError naming a malformed value."""
    env = os.environ if env is None else env
    coordinator = coordinator or env.get(COORDINATOR_ENV) or None
    num = num_processes if num_processes is not None else env.get(NUM_ENV)
    pid = process_id if process_id is not None else env.get(ID_ENV)
    if not (distributed or coordinator or num is not None or pid is not None):
        return None
    if coordinator is not None and (":" not in coordinator or not coordinator.rsplit(":", 1)[1]):
        raise DistributedError(f"the coordinator must be HOST:PORT, got {coordinator!r}")
    n = None if num is None else _int(f"--num-processes ({NUM_ENV})", num, 1)
    i = None if pid is None else _int(f"--process-id ({ID_ENV})", pid, 0)
    if n is not None and i is not None and i >= n:
        raise DistributedError(f"--process-id {i} must be < --num-processes {n}")
    timeout = _int(TIMEOUT_ENV, env.get(TIMEOUT_ENV, DEFAULT_TIMEOUT), 1)
    return DistSettings(coordinator, n, i, timeout)


def initialize(s: DistSettings) -> None:
    """``jax.distributed.initialize`` with ``s`` (before any JAX computation); waits at most
    ``s.timeout`` seconds for the other processes to connect. Raises DistributedError."""
    import jax

    try:
        jax.distributed.initialize(
            s.coordinator,
            s.num_processes,
            s.process_id,
            initialization_timeout=s.timeout,
            heartbeat_timeout_seconds=s.timeout,
            shutdown_timeout_seconds=s.timeout,
        )
    except (RuntimeError, ValueError, TypeError) as e:  # JaxRuntimeError is a RuntimeError
        raise DistributedError(f"jax.distributed.initialize failed: {e}") from None


def multi_process() -> bool:
    """Whether this process is one of several (starts JAX's backend)."""
    import jax

    return jax.process_count() > 1


def is_primary() -> bool:
    """Whether this process writes the work directory (process 0, or the only one)."""
    import jax

    return jax.process_index() == 0


def to_host(tree):
    """``tree`` with every array whole on this host (numpy): arrays sharded over several
    processes are gathered from all of them (a collective: every process must call it at the
    same point); fully addressable ones are returned as they are."""
    import jax
    from jax.experimental import multihost_utils

    leaves = jax.tree.leaves(tree)
    if all(getattr(x, "is_fully_addressable", True) for x in leaves):
        return tree
    with _collective("gathering results"):
        return multihost_utils.process_allgather(tree, tiled=True)


def allgather(x) -> np.ndarray:
    """This process's numpy ``x`` from every process, stacked along a new first axis."""
    from jax.experimental import multihost_utils

    with _collective("exchanging flags"):
        return np.asarray(multihost_utils.process_allgather(x))


def broadcast(tree):
    """The primary process's ``tree`` (numpy arrays of the same shapes everywhere), on every
    process; ``tree`` itself with a single process."""
    if not multi_process():
        return tree
    from jax.experimental import multihost_utils

    with _collective("receiving process 0's data"):
        return multihost_utils.broadcast_one_to_all(tree)


def agree(fn, code_of):
    """``fn()`` run on the primary process, its outcome shared with the others.

    The primary's exception is re-raised there; the other processes raise :class:`PeerError`
    with its message and ``code_of(exception)`` as exit code (instead of waiting for a
    collective that would never come). Returns ``fn()``'s value on the primary, None elsewhere.
    With a single process it is ``fn()``."""
    if not multi_process():
        return fn()
    out, err, code, msg = None, None, 0, b""
    if is_primary():
        try:
            out = fn()
        except BaseException as e:  # SystemExit included: the others must not wait for it
            err, code = e, code_of(e) or 1
            msg = f"process 0: {e}".encode()[:_MSG_BYTES]
    buf = np.zeros(_MSG_BYTES + 1, np.int32)
    buf[0], buf[1 : 1 + len(msg)] = code, np.frombuffer(msg, np.uint8)
    got = np.asarray(broadcast(buf))
    if err is not None:
        raise err
    if got[0]:
        raise PeerError(bytes(got[1:].astype(np.uint8)).rstrip(b"\0").decode(errors="replace"),
                        int(got[0]))  # fmt: skip
    return out
