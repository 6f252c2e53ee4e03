"""Type names shared by every module's signatures.

Shapes are time-major: ``[T, *B, N]`` for per-step signals; ``W[l]`` is ``[N_l, N_{l+1}]``
(presynaptic, postsynaptic) in volts.
"""

from __future__ import annotations

from typing import Any

import jax

Array = jax.Array
PRNGKey = jax.Array
Weights = tuple[Array, ...]  # W[l] is [N_l, N_{l+1}] (V)
PyTree = Any

HIGHEST = jax.lax.Precision.HIGHEST
