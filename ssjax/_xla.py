"""XLA:CPU settings that ssjax applies when it is imported, before JAX starts its CPU backend.

Small loops. XLA:CPU runs a ``while`` loop (every ``lax.scan``) as a sequence of separately
dispatched kernels per iteration, about 50-100 ns each, unless the loop is "small": then the
whole loop is compiled into one function (``SmallWhileLoopHoistingPass``, default limit 256
bytes accessed). A LIF layer of 256 neurons scanned over 5000 steps spends most of its time in
that dispatch (4.4 ms; 0.16 ms for 4 neurons, which are under the limit). Raising the limit to
:data:`SMALL_LOOP_BYTES` compiles the time scans of SuperSpike and BPTT as single loops
(2.0 ms for the same layer), with identical results. The outer scan over blocks, which
accesses far more memory, is left alone.

CPU devices. JAX exposes one CPU device however many cores there are, and XLA:CPU runs a
program's time loops one after another, so a run of many seeds keeps one core busy most of the
time. ssjax asks for one CPU device per usable core (``SSJAX_CPU_DEVICES``: a number, or
``auto``, the default); :func:`ssjax.runner.seed_mesh` then shards the seeds over them, each
device running the one-seed (``map``) or seed-batched (``vmap``) program on its share. With
``map`` every seed's result is bit-identical whatever the device count; with ``vmap`` the
batch per device changes with it, so results agree to float rounding across machines with
different core counts (set ``SSJAX_CPU_DEVICES=1`` to pin them). A single-seed run uses one
device either way. Skipped when ``XLA_FLAGS`` already sets
``xla_force_host_platform_device_count``.

Both go into ``XLA_FLAGS`` (read when JAX creates its first backend, not at import), so they
take effect only when ``ssjax`` is imported before any JAX computation has run. The environment
variable ``SSJAX_XLA_TUNING=0`` turns both off; the small-loop limit is also skipped when
``XLA_FLAGS`` already sets ``xla_backend_extra_options``. Both are read by the CPU backend only.
"""

from __future__ import annotations

import os

SMALL_LOOP_BYTES = 1_000_000
OPTION = "xla_cpu_small_while_loop_byte_threshold"
DEVICE_FLAG = "xla_force_host_platform_device_count"


def _off(env) -> bool:
    return env.get("SSJAX_XLA_TUNING", "1").strip().lower() in ("0", "false", "no", "off")


def tune_cpu(env=None) -> bool:
    """Add the small-loop limit to ``env["XLA_FLAGS"]`` (``os.environ`` by default).

    Returns True when the flag was added, False when it was left alone (opted out, or the user
    sets ``xla_backend_extra_options`` already).
    """
    env = os.environ if env is None else env
    if _off(env):
        return False
    flags = env.get("XLA_FLAGS", "")
    if "xla_backend_extra_options" in flags:
        return False
    extra = f"--xla_backend_extra_options={OPTION}={SMALL_LOOP_BYTES}"
    env["XLA_FLAGS"] = f"{flags} {extra}".strip()
    return True


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def cpu_devices(env=None, cores: int | None = None) -> int:
    """Ask for one CPU device per usable core: add ``--xla_force_host_platform_device_count``.

    ``SSJAX_CPU_DEVICES`` (``env``, ``os.environ`` by default) overrides the count: ``auto``
    (default) or an integer >= 1; anything else is a ValueError naming the variable. Returns the
    count asked for, or 0 when the flag was left alone (opted out, a count of 1, or the user
    sets the flag already).
    """
    env = os.environ if env is None else env
    raw = env.get("SSJAX_CPU_DEVICES", "auto").strip().lower()
    if raw == "auto":
        n = usable_cores() if cores is None else cores
    else:
        try:
            n = int(raw)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"SSJAX_CPU_DEVICES must be 'auto' or an integer >= 1, got {raw!r}")
    flags = env.get("XLA_FLAGS", "")
    if _off(env) or DEVICE_FLAG in flags or n == 1:
        return 0
    env["XLA_FLAGS"] = f"{flags} --{DEVICE_FLAG}={n}".strip()
    return n


TUNED = tune_cpu()
CPU_DEVICES = cpu_devices()
