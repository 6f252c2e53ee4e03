"""The XLA:CPU setting ssjax applies at import (small while loops compiled as one function)."""

import os
import subprocess
import sys

import pytest

from ssjax import _xla


def test_tune_cpu_adds_the_small_loop_limit():
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    assert _xla.tune_cpu(env)
    assert env["XLA_FLAGS"].startswith("--xla_force_host_platform_device_count=4 ")
    assert f"{_xla.OPTION}={_xla.SMALL_LOOP_BYTES}" in env["XLA_FLAGS"]
    fresh = {}
    assert _xla.tune_cpu(fresh) and fresh["XLA_FLAGS"].startswith("--xla_backend_extra_options=")


def test_tune_cpu_respects_opt_out_and_user_options():
    for off in ("0", "false", "OFF"):
        env = {"SSJAX_XLA_TUNING": off}
        assert not _xla.tune_cpu(env) and "XLA_FLAGS" not in env
    mine = "--xla_backend_extra_options=xla_cpu_foo=1"
    env = {"XLA_FLAGS": mine}
    assert not _xla.tune_cpu(env) and env["XLA_FLAGS"] == mine


_PROBE = """
import jax, jax.numpy as jnp
import ssjax
from ssjax.network import layer_scan
from ssjax.neuron import LIFParams, lif_init
p = LIFParams()
f = jax.jit(lambda c: layer_scan(p, lif_init(p, c.shape[1:]), c))
print("small_call" if "xla_cpu_small_call" in f.lower(jnp.zeros((500, 256))).compile().as_text()
      else "dispatched")
"""


@pytest.mark.parametrize("tuning,expected", [("1", "small_call"), ("0", "dispatched")])
def test_lif_scan_compiles_as_one_loop_only_with_the_setting(tuning, expected):
    """The setting reaches XLA: a 256-neuron LIF scan becomes one compiled loop (control: off)."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(SSJAX_XLA_TUNING=tuning, JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[-1] == expected
