"""XLA:CPU tuning for ssjax programs: :func:`configure_cpu`, to call before any JAX computation.

Nothing here runs at import: ``import ssjax`` (or any of its modules) leaves ``os.environ``, the
JAX config and the matplotlib backend as they were. The ``ssjax`` command, the benchmark and
profiling scripts and the test suite call :func:`configure_cpu_from_env` first thing; a library
user who wants the same speed calls ``ssjax.configure_cpu()`` right after the imports.

Small loops. XLA:CPU runs a ``while`` loop (every ``lax.scan``) as a sequence of separately
dispatched kernels per iteration, about 50-100 ns each, unless the loop is "small": then the
whole loop is compiled into one function (``SmallWhileLoopHoistingPass``, default limit 256
bytes accessed). A LIF layer of 256 neurons scanned over 5000 steps spends most of its time in
that dispatch (4.4 ms; 0.16 ms for 4 neurons, which are under the limit). Raising the limit to
:data:`SMALL_LOOP_BYTES` compiles the time scans of SuperSpike and BPTT as single loops
(2.0 ms for the same layer), with identical results. The outer scan over blocks, which
accesses far more memory, is left alone. JAX has no config option for it, so it goes into
``XLA_FLAGS`` (``--xla_backend_extra_options``), which the CPU backend reads when it starts.

CPU devices. JAX exposes one CPU device however many cores there are, and XLA:CPU runs a
program's time loops one after another, so a run of many seeds keeps one core busy most of the
time. ``configure_cpu(devices="auto")`` asks for one CPU device per usable core
(``jax.config.update("jax_num_cpu_devices", n)``); :func:`ssjax.experiment.seeds.seed_mesh` then
shards the seeds over them, each device running the one-seed (``map``) or seed-batched (``vmap``)
program on its share. With ``map`` every seed's result is bit-identical whatever the device
count; with ``vmap`` the batch per device changes with it, so results agree to float rounding
across machines with different core counts (``SSJAX_CPU_DEVICES=1`` pins them). A single-seed
run uses one device either way.

Both are read when JAX starts its backend (the first computation, ``jax.devices()`` and the
like), so :func:`configure_cpu` raises ``RuntimeError`` if it would have to change either after
that; a call that changes nothing (e.g. a repeated one) is always fine. Both are read by the CPU
backend only and harmless elsewhere.

Environment (:func:`configure_cpu_from_env`, used by the command line): ``SSJAX_XLA_TUNING=0``
turns both off; ``SSJAX_CPU_DEVICES`` is ``auto`` (default) or a device count. A count the user
chose already (``--xla_force_host_platform_device_count`` in ``XLA_FLAGS``, or
``JAX_NUM_CPU_DEVICES``) is kept, and so are the user's own ``--xla_backend_extra_options``.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

SMALL_LOOP_BYTES = 1_000_000
OPTION = "xla_cpu_small_while_loop_byte_threshold"
SMALL_LOOP_FLAG = f"--xla_backend_extra_options={OPTION}={SMALL_LOOP_BYTES}"
DEVICE_FLAG = "xla_force_host_platform_device_count"
TUNING_ENV = "SSJAX_XLA_TUNING"
DEVICES_ENV = "SSJAX_CPU_DEVICES"


class CpuSettings(NamedTuple):
    """What :func:`configure_cpu` put in place.

    ``devices``: the CPU device count it asked JAX for (0: the count was left alone);
    ``small_loops``: whether the small-loop limit is in ``XLA_FLAGS``.
    """

    devices: int
    small_loops: bool


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def backend_initialized() -> bool:
    """Whether JAX has started its backends (after which XLA options no longer take effect)."""
    from jax._src import xla_bridge  # no public equivalent in jax 0.10

    return xla_bridge.backends_are_initialized()


def _user_devices(flags: str, num_cpu_devices: int) -> int | None:
    """The CPU device count already chosen, or None: the JAX config, else the XLA flag."""
    if num_cpu_devices >= 0:
        return num_cpu_devices
    m = re.search(rf"--{DEVICE_FLAG}=(\d+)", flags)
    return int(m.group(1)) if m else None


def _plan(devices, small_loops: bool, flags: str, num_cpu_devices: int, cores: int):
    """``(new XLA_FLAGS or None, new jax_num_cpu_devices or None, CpuSettings)``: the changes
    :func:`configure_cpu` makes, from the current ``XLA_FLAGS`` and JAX device config."""
    new_flags = None
    if small_loops and "xla_backend_extra_options" not in flags:
        new_flags = f"{flags} {SMALL_LOOP_FLAG}".strip()
    has_loops = SMALL_LOOP_FLAG in (new_flags or flags)

    chosen = _user_devices(flags, num_cpu_devices)
    if devices is None:
        return new_flags, None, CpuSettings(0, has_loops)
    if devices == "auto":
        if chosen is not None:  # the user's (or an earlier call's) count stands
            return new_flags, None, CpuSettings(0, has_loops)
        n = cores
    elif isinstance(devices, int) and not isinstance(devices, bool) and devices >= 1:
        n = devices
    else:
        raise ValueError(f"devices must be 'auto', an integer >= 1 or None, got {devices!r}")
    if n == (1 if chosen is None else chosen):  # already in effect
        return new_flags, None, CpuSettings(0 if chosen is None else n, has_loops)
    return new_flags, n, CpuSettings(n, has_loops)


def configure_cpu(devices: int | str | None = "auto", small_loops: bool = True) -> CpuSettings:
    """Tune JAX's CPU backend for ssjax: CPU device count and the small-loop limit.

    Call it before the first JAX computation (right after the imports): both are read when JAX
    starts its backend.

    Args:
      devices: ``"auto"`` (default): one CPU device per usable core, unless a count was chosen
        already (``JAX_NUM_CPU_DEVICES``, ``jax_num_cpu_devices``, or
        ``--xla_force_host_platform_device_count`` in ``XLA_FLAGS``); an integer ``n >= 1``:
        exactly ``n`` (``jax.config.update("jax_num_cpu_devices", n)``); ``None``: left alone.
      small_loops: add ``--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=``
        :data:`SMALL_LOOP_BYTES` to ``os.environ["XLA_FLAGS"]``, unless ``XLA_FLAGS`` sets
        ``xla_backend_extra_options`` already (the user's own options are kept).

    Returns:
      :class:`CpuSettings`: the device count asked for (0 if left alone) and whether the
      small-loop limit is set.

    Raises:
      RuntimeError: JAX has started its backend already and this call would change something
        (it then changes nothing); a call whose settings are already in effect is a no-op.
      ValueError: ``devices`` is not one of the above.
    """
    import jax

    flags = os.environ.get("XLA_FLAGS", "")
    n_now = jax.config.jax_num_cpu_devices  # type: ignore[attr-defined]  # the stubs lack it
    new_flags, n, settings = _plan(devices, small_loops, flags, n_now, usable_cores())
    if (new_flags is not None or n is not None) and backend_initialized():
        what = []
        if n is not None:
            what.append(f"{n} CPU devices")
        if new_flags is not None:
            what.append("the small-loop limit")
        raise RuntimeError(
            "ssjax.configure_cpu() was called after JAX started its backend, so "
            f"{' and '.join(what)} would not take effect; call it before any JAX computation "
            f"(right after the imports), or set {TUNING_ENV}=0 to skip the tuning"
        )
    if new_flags is not None:
        os.environ["XLA_FLAGS"] = new_flags
    if n is not None:
        jax.config.update("jax_num_cpu_devices", n)
    return settings


def tuning_enabled(env=None) -> bool:
    """False when ``SSJAX_XLA_TUNING`` (in ``env``, ``os.environ`` by default) is 0/false/no/off."""
    env = os.environ if env is None else env
    return env.get(TUNING_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def devices_from_env(env=None) -> int | str | None:
    """The ``devices`` argument that ``SSJAX_CPU_DEVICES`` stands for: ``"auto"`` (unset or
    ``auto``) or an integer >= 1 (anything else is a ValueError naming the variable); None when
    the user sets the count already (``JAX_NUM_CPU_DEVICES``, or the XLA flag in ``XLA_FLAGS``)
    or tuning is off."""
    env = os.environ if env is None else env
    raw = env.get(DEVICES_ENV, "auto").strip().lower()
    devices: int | str
    if raw == "auto":
        devices = "auto"
    else:
        try:
            devices = int(raw)
        except ValueError:
            devices = 0
        if devices < 1:
            raise ValueError(f"{DEVICES_ENV} must be 'auto' or an integer >= 1, got {raw!r}")
    if not tuning_enabled(env) or "JAX_NUM_CPU_DEVICES" in env:
        return None
    if DEVICE_FLAG in env.get("XLA_FLAGS", ""):
        return None
    return devices


def configure_cpu_from_env() -> CpuSettings:
    """:func:`configure_cpu` as the environment asks: nothing if ``SSJAX_XLA_TUNING=0``, else
    the small-loop limit and ``devices`` from ``SSJAX_CPU_DEVICES`` (:func:`devices_from_env`).

    What the ``ssjax`` command, the benchmarks and the test suite call first thing.
    """
    devices = devices_from_env()
    if not tuning_enabled():
        return CpuSettings(0, False)
    return configure_cpu(devices=devices, small_loops=True)
