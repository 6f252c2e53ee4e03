"""XLA:CPU tuning that ssjax applies when it is imported, before JAX starts its CPU backend.

XLA:CPU runs a ``while`` loop (every ``lax.scan``) as a sequence of separately dispatched
kernels per iteration, about 50-100 ns each, unless the loop is "small": then the whole loop is
compiled into one function (``SmallWhileLoopHoistingPass``, default limit 256 bytes accessed).
A LIF layer of 256 neurons scanned over 5000 steps spends most of its time in that dispatch
(4.4 ms; 0.16 ms for 4 neurons, which are under the limit). Raising the limit to
:data:`SMALL_LOOP_BYTES` compiles the time scans of SuperSpike and BPTT as single loops
(2.0 ms for the same layer), with identical results. The outer scan over blocks, which
accesses far more memory, is left alone.

The setting goes into ``XLA_FLAGS`` (read when JAX creates its first backend, not at import),
so it takes effect only when ``ssjax`` is imported before any JAX computation has run. It is
skipped when ``XLA_FLAGS`` already sets ``xla_backend_extra_options`` or when the environment
has ``SSJAX_XLA_TUNING=0``. The option is read by the CPU compiler only.
"""

from __future__ import annotations

import os

SMALL_LOOP_BYTES = 1_000_000
OPTION = "xla_cpu_small_while_loop_byte_threshold"


def tune_cpu(env=None) -> bool:
    """Add the small-loop limit to ``env["XLA_FLAGS"]`` (``os.environ`` by default).

    Returns True when the flag was added, False when it was left alone (opted out, or the user
    sets ``xla_backend_extra_options`` already).
    """
    env = os.environ if env is None else env
    if env.get("SSJAX_XLA_TUNING", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    flags = env.get("XLA_FLAGS", "")
    if "xla_backend_extra_options" in flags:
        return False
    extra = f"--xla_backend_extra_options={OPTION}={SMALL_LOOP_BYTES}"
    env["XLA_FLAGS"] = f"{flags} {extra}".strip()
    return True


TUNED = tune_cpu()
