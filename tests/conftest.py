"""Test configuration: CPU only, deterministic, float32 by default (float64 via jax.enable_x64).

The suite runs under the ``ssjax`` command's XLA:CPU tuning (one CPU device per usable core,
single-loop time scans; ``SSJAX_XLA_TUNING=0`` / ``SSJAX_CPU_DEVICES`` as for the command),
applied here before any test module starts JAX: ``import ssjax`` no longer applies it.
"""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")

from ssjax.xla import configure_cpu_from_env  # noqa: E402

configure_cpu_from_env()
