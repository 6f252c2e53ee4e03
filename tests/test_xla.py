"""The XLA:CPU tuning (``ssjax.xla.configure_cpu``: small while loops compiled as one function,
one CPU device per core): applied only when asked for, never by an import; too late is an error."""

import json
import os
import subprocess
import sys

import jax
import pytest

from ssjax import xla
from ssjax.xla import SMALL_LOOP_FLAG, CpuSettings, configure_cpu

DEV = f"--{xla.DEVICE_FLAG}"


def _plan(devices="auto", small_loops=True, flags="", num=-1, cores=4):
    return xla._plan(devices, small_loops, flags, num, cores)


def test_small_loop_limit_added_unless_the_user_sets_extra_options():
    flags, _, s = _plan(flags=f"{DEV}=4", devices=None)
    assert flags == f"{DEV}=4 {SMALL_LOOP_FLAG}" and s == CpuSettings(0, True)
    assert f"{xla.OPTION}={xla.SMALL_LOOP_BYTES}" in flags
    flags, _, s = _plan(devices=None)
    assert flags == SMALL_LOOP_FLAG and s.small_loops
    mine = "--xla_backend_extra_options=xla_cpu_foo=1"
    assert _plan(flags=mine, devices=None) == (None, None, CpuSettings(0, False))
    assert _plan(small_loops=False, devices=None) == (None, None, CpuSettings(0, False))
    # already there (a repeated call): nothing to change, reported as set
    assert _plan(flags=SMALL_LOOP_FLAG, devices=None) == (None, None, CpuSettings(0, True))


def test_devices_one_per_core_unless_chosen_already():
    assert _plan(small_loops=False, cores=4) == (None, 4, CpuSettings(4, False))
    assert _plan(small_loops=False, devices=3) == (None, 3, CpuSettings(3, False))
    # auto leaves a count alone that the XLA flag or the JAX config chose already
    assert _plan(small_loops=False, flags=f"{DEV}=8") == (None, None, CpuSettings(0, False))
    assert _plan(small_loops=False, num=2) == (None, None, CpuSettings(0, False))
    # an explicit count overrides the flag; one already in effect changes nothing
    assert _plan(small_loops=False, devices=3, flags=f"{DEV}=8")[1] == 3
    assert _plan(small_loops=False, devices=3, num=3) == (None, None, CpuSettings(3, False))
    assert _plan(small_loops=False, devices=8, flags=f"{DEV}=8")[1] is None
    # one core (or one device asked for) is JAX's default: nothing to change
    assert _plan(small_loops=False, cores=1) == (None, None, CpuSettings(0, False))
    assert _plan(small_loops=False, devices=1) == (None, None, CpuSettings(0, False))
    for bad in (0, -2, "two", 1.5, True):
        with pytest.raises(ValueError, match="devices"):
            _plan(devices=bad)


def test_devices_from_env():
    assert xla.devices_from_env({}) == "auto"
    assert xla.devices_from_env({"SSJAX_CPU_DEVICES": " Auto "}) == "auto"
    assert xla.devices_from_env({"SSJAX_CPU_DEVICES": "3"}) == 3
    # left alone: the user's own count, or tuning off
    for env in (
        {"XLA_FLAGS": f"--xla_foo=1 {DEV}=8", "SSJAX_CPU_DEVICES": "3"},
        {"JAX_NUM_CPU_DEVICES": "2"},
        {"SSJAX_XLA_TUNING": "0"},
    ):
        assert xla.devices_from_env(env) is None
    for off in ("0", "false", "OFF", "no"):
        assert not xla.tuning_enabled({"SSJAX_XLA_TUNING": off})
    assert xla.tuning_enabled({}) and xla.tuning_enabled({"SSJAX_XLA_TUNING": "1"})
    for bad in ("0", "-2", "two", "1.5"):
        with pytest.raises(ValueError, match="SSJAX_CPU_DEVICES"):
            xla.devices_from_env({"SSJAX_CPU_DEVICES": bad})


def _clean_env(**extra):
    drop = ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES", "SSJAX_XLA_TUNING", "SSJAX_CPU_DEVICES")
    env = {k: v for k, v in os.environ.items() if k not in drop and k != "MPLBACKEND"}
    env.update(JAX_PLATFORMS="cpu", **extra)
    return env


def _python(code, env):
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


_IMPORT_ALL = """
import importlib, json, os, pkgutil
import matplotlib
matplotlib.use("svg")
import jax
env0, cfg0 = dict(os.environ), dict(jax.config.values)
import ssjax
mods = [m.name for m in pkgutil.walk_packages(ssjax.__path__, "ssjax.")]
for m in mods:
    importlib.import_module(m)
print(json.dumps({
    "env": sorted(k for k in set(env0) | set(os.environ) if env0.get(k) != os.environ.get(k)),
    "config": sorted(k for k in cfg0 if cfg0[k] != jax.config.values.get(k)),
    "backend": matplotlib.get_backend(),
    "devices": len(jax.devices()),
    "modules": mods,
}))
"""


def test_importing_ssjax_changes_no_environment_config_or_backend():
    got = _python(_IMPORT_ALL, _clean_env())
    assert {"ssjax.xla", "ssjax.experiment.cli", "ssjax.plots", "ssjax.analysis.alignment"} <= set(
        got["modules"]
    )
    assert got["env"] == [] and got["config"] == []
    assert got["backend"] == "svg"
    assert got["devices"] == 1  # JAX's default on CPU


_CONFIGURE = """
import json, os, jax, ssjax
out = {"before": os.environ.get("XLA_FLAGS")}
out["settings"] = ssjax.configure_cpu(devices=3)
out["flags"] = os.environ.get("XLA_FLAGS")
out["again"] = ssjax.configure_cpu(devices=3)  # nothing to change: fine
out["devices"] = len(jax.devices())
jax.numpy.ones(2).block_until_ready()
def late(**kw):
    try:
        ssjax.configure_cpu(**kw)
        return "no error"
    except RuntimeError as e:
        return str(e)
out["late_devices"] = late(devices=2)
del os.environ["XLA_FLAGS"]
out["late_loops"] = late(devices=None, small_loops=True)
out["flags_after"] = os.environ.get("XLA_FLAGS")  # the refused call changed nothing
out["devices_after"] = len(jax.devices())
print(json.dumps(out))
"""


def test_configure_cpu_applies_the_tuning_and_refuses_when_too_late():
    got = _python(_CONFIGURE, _clean_env())
    assert got["before"] is None and got["flags"] == SMALL_LOOP_FLAG
    assert got["settings"] == [3, True] and got["again"] == [3, True]
    assert got["devices"] == 3  # negative control of the import test: asked for, and got
    for key, what in (("late_devices", "2 CPU devices"), ("late_loops", "small-loop limit")):
        assert what in got[key] and "before any JAX computation" in got[key], got[key]
    assert got["flags_after"] is None and got["devices_after"] == 3


def test_configure_cpu_after_jax_started_raises_only_if_it_would_change_something(monkeypatch):
    n = len(jax.devices())  # this process' backend is running now
    monkeypatch.setenv("XLA_FLAGS", SMALL_LOOP_FLAG)
    assert configure_cpu(devices=n, small_loops=True).small_loops  # in effect: a no-op
    with pytest.raises(RuntimeError, match=f"{n + 1} CPU devices.*before any JAX computation"):
        configure_cpu(devices=n + 1)
    assert os.environ["XLA_FLAGS"] == SMALL_LOOP_FLAG and len(jax.devices()) == n


@pytest.mark.parametrize("asked,expected", [("3", 3), ("1", 1)])
def test_cpu_device_count_from_the_environment_reaches_jax(asked, expected):
    code = (
        "import json, jax; from ssjax.xla import configure_cpu_from_env as c; c();"
        "print(json.dumps(len(jax.devices())))"
    )
    assert _python(code, _clean_env(SSJAX_CPU_DEVICES=asked)) == expected


_PROBE = """
import json, sys, jax, jax.numpy as jnp
import ssjax
from ssjax.network import layer_scan
from ssjax.neuron import LIFParams, lif_init
if sys.argv[1] == "configure":
    ssjax.xla.configure_cpu_from_env()
p = LIFParams()
f = jax.jit(lambda c: layer_scan(p, lif_init(p, c.shape[1:]), c))
text = f.lower(jnp.zeros((500, 256))).compile().as_text()
print(json.dumps("small_call" if "xla_cpu_small_call" in text else "dispatched"))
"""


@pytest.mark.parametrize(
    "how,tuning,expected",
    [
        ("configure", "1", "small_call"),
        ("configure", "0", "dispatched"),
        ("import", "1", "dispatched"),
    ],
)
def test_lif_scan_compiles_as_one_loop_only_with_the_setting(how, tuning, expected):
    """The setting reaches XLA: a 256-neuron LIF scan becomes one compiled loop (controls: tuning
    off, and a plain ``import ssjax``)."""
    env = _clean_env(SSJAX_XLA_TUNING=tuning)
    r = subprocess.run([sys.executable, "-c", _PROBE, how], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1]) == expected
