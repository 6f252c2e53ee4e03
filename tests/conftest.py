"""Test configuration: CPU only, deterministic, float32 by default (float64 via jax.enable_x64)."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")
