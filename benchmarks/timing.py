"""Shared measurement helpers: compile separately, then best-of-N wall time; XLA memory.

Every JAX figure of the suite comes from :func:`time_jax`: the function is lowered and compiled
ahead of time (``compile_s``), run once to warm up, then timed ``repeats`` times with
``jax.block_until_ready``; the best time is reported. Peak memory is what the compiled
executable allocates besides its arguments (XLA ``memory_analysis()``: temp + output).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jax


def peak_mb(compiled) -> float | None:
    """XLA's compiled temp + output allocation in MiB (None where the backend has no analysis)."""
    try:
        m = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - some backends do not implement it
        return None
    if m is None:
        return None
    return (m.temp_size_in_bytes + m.output_size_in_bytes) / 2**20


def best_of(call: Callable[[], object], repeats: int) -> float:
    """Best wall time (s) of ``repeats`` calls of ``call``, each waited for to the end."""
    best = float("inf")
    for _ in range(max(1, repeats)):
        t = time.perf_counter()
        jax.block_until_ready(call())
        best = min(best, time.perf_counter() - t)
    return best


def time_jax(fn, args: tuple, repeats: int, *, jitted: bool = False) -> dict:
    """Compile ``fn`` for ``args``, then time it; ``{"compile_s", "best_s", "peak_mb"}``.

    ``fn`` is a plain function (jitted here) or, with ``jitted=True``, already a ``jax.jit``
    object. ``compile_s`` covers tracing, lowering and XLA compilation.
    """
    f = fn if jitted else jax.jit(fn)
    t = time.perf_counter()
    compiled = f.lower(*args).compile()
    compile_s = time.perf_counter() - t
    jax.block_until_ready(compiled(*args))  # warm-up (first run allocates)
    best = best_of(lambda: compiled(*args), repeats)
    return {"compile_s": compile_s, "best_s": best, "peak_mb": peak_mb(compiled)}


def memory_only(fn, args: tuple, *, jitted: bool = False) -> dict:
    """Compile without running: ``{"compile_s", "peak_mb"}`` (for runs too long to time)."""
    f = fn if jitted else jax.jit(fn)
    t = time.perf_counter()
    compiled = f.lower(*args).compile()
    return {"compile_s": time.perf_counter() - t, "peak_mb": peak_mb(compiled)}
