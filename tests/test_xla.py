"""The XLA:CPU settings ssjax applies at import (small while loops compiled as one function;
one CPU device per core)."""

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


def test_cpu_devices_one_per_core_unless_set():
    env = {}
    assert _xla.cpu_devices(env, cores=4) == 4
    assert env["XLA_FLAGS"] == f"--{_xla.DEVICE_FLAG}=4"
    env = {"XLA_FLAGS": "--xla_foo=1", "SSJAX_CPU_DEVICES": "3"}
    assert _xla.cpu_devices(env, cores=4) == 3
    assert env["XLA_FLAGS"] == f"--xla_foo=1 --{_xla.DEVICE_FLAG}=3"
    # left alone: one core, one device asked for, the user's own count, or tuning off
    for env in (
        {},
        {"SSJAX_CPU_DEVICES": "1"},
        {"XLA_FLAGS": f"--{_xla.DEVICE_FLAG}=8"},
        {"SSJAX_XLA_TUNING": "0"},
    ):
        before = dict(env)
        assert _xla.cpu_devices(env, cores=1 if not env else 4) == 0 and env == before
    for bad in ("0", "-2", "two", "1.5"):
        with pytest.raises(ValueError, match="SSJAX_CPU_DEVICES"):
            _xla.cpu_devices({"SSJAX_CPU_DEVICES": bad}, cores=4)


@pytest.mark.parametrize("asked,expected", [("3", 3), ("1", 1)])
def test_cpu_device_count_reaches_jax(asked, expected):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(SSJAX_CPU_DEVICES=asked, JAX_PLATFORMS="cpu")
    code = "import ssjax, jax; print(len(jax.devices()))"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.split()[-1]) == expected


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
