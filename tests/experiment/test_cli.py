"""The ``ssjax`` command: its set-up (XLA:CPU tuning, matplotlib backend) and dispatch (demo,
compare, validate)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from ssjax import xla
from ssjax.experiment import cli
from ssjax.experiment.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_demo_trains_and_writes_pictures(tmp_path, capsys):
    assert main(["demo", "--periods", "40", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out[out.find("{") :])
    assert summary["periods"] == 40 and summary["simulated_seconds"] == 20.0
    for name in ("raster.png", "learning_curve.png"):
        assert (tmp_path / name).stat().st_size > 1000


def test_compare_takes_its_own_options(tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["compare", "--rules", "bogus", "bptt"])
    assert e.value.code == 2
    assert (
        main(
            [
                "compare",
                "--sizes",
                "10",
                "2",
                "--rules",
                "superspike:none",
                "bptt",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert (tmp_path / "alignment.png").exists()


def test_validate_exit_codes(tmp_path, capsys):
    good = tmp_path / "c.yaml"
    good.write_text("run: {seeds: 2}\n")
    assert main(["validate", str(good)]) == 0
    assert "valid" in capsys.readouterr().out
    assert main(["validate", str(good), "--set", "run.seeds=0"]) == 2
    assert "run.seeds" in capsys.readouterr().err
    assert main(["demo", "--periods", "0"]) == 2


def test_compare_rejects_repeated_rules_and_bad_sizes():
    for argv in (["--rules", "bptt", "bptt"], ["--sizes", "10"], ["--periods", "0"]):
        with pytest.raises(SystemExit) as e:
            main(["compare", *argv])
        assert e.value.code == 2


def _run(*args):
    env = dict(os.environ, JAX_PLATFORMS="cpu", MPLBACKEND="Agg")
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "compare.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )


@pytest.mark.slow  # long check, run by .ci/run after the default suite
def test_compare_script_end_to_end(tmp_path):
    out = tmp_path / "cmp"
    rules = ("--rules", "superspike:symmetric", "bptt")
    p = _run("--sizes", "20", "3", "1", *rules, "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert "superspike:symmetric vs bptt" in p.stdout
    row = [ln for ln in p.stdout.splitlines() if ln.startswith("superspike:symmetric vs bptt")]
    assert len(row) == 2 and "output" in row[1]
    assert float(row[1].split()[-3]) > 0.9999  # output-layer cosine
    assert (out / "alignment.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_script_unknown_rule_exits_2():
    p = _run("--rules", "bptt", "superspike:bogus", "--out", "/nonexistent/never")
    assert p.returncode == 2
    assert "superspike:bogus" in p.stderr and "bptt:reset" in p.stderr


# ----------------------------------------------------------------------------- set-up


_SETUP = """
import json, matplotlib
matplotlib.use("svg")
import jax
from ssjax.experiment import cli
assert cli.setup() is None
print(json.dumps([len(jax.devices()), matplotlib.get_backend().lower()]))
"""


def test_setup_applies_the_tuning_and_agg_backend():
    drop = ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES", "SSJAX_XLA_TUNING", "MPLBACKEND")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(JAX_PLATFORMS="cpu", SSJAX_CPU_DEVICES="3")
    r = subprocess.run([sys.executable, "-c", _SETUP], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1]) == [3, "agg"]


def test_setup_keeps_a_chosen_matplotlib_backend(monkeypatch):
    import matplotlib

    used = []
    monkeypatch.setattr(matplotlib, "use", used.append)
    monkeypatch.setattr(xla, "configure_cpu_from_env", lambda: None)
    monkeypatch.setenv("MPLBACKEND", "svg")
    assert cli.setup() is None and used == []
    monkeypatch.delenv("MPLBACKEND")
    assert cli.setup() is None and used == ["Agg"]


def test_setup_bad_device_count_exits_2_and_late_tuning_warns(tmp_path, monkeypatch, capsys):
    good = tmp_path / "c.yaml"
    good.write_text("run: {seeds: 2}\n")
    monkeypatch.setenv("SSJAX_CPU_DEVICES", "two")
    assert main(["validate", str(good)]) == 2
    assert "SSJAX_CPU_DEVICES" in capsys.readouterr().err
    n = len(jax.devices())  # JAX runs in this process: a different count is too late
    monkeypatch.setenv("SSJAX_CPU_DEVICES", str(n + 1))
    monkeypatch.setenv("XLA_FLAGS", xla.SMALL_LOOP_FLAG)
    monkeypatch.delenv("SSJAX_XLA_TUNING", raising=False)
    monkeypatch.delenv("JAX_NUM_CPU_DEVICES", raising=False)
    with pytest.warns(RuntimeWarning, match="before any JAX computation"):
        assert main(["validate", str(good)]) == 0
    assert len(jax.devices()) == n
