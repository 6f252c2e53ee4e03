"""Shipped configs and the data root (``ssjax.experiment.paths``): the wheel holds the YAML
files, a shipped config is found by name, ``data:`` paths resolve against ``SSJAX_DATA`` or the
checkout's ``shared/data``, and a missing data root is a ConfigError naming file and key."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ssjax.experiment import paths
from ssjax.experiment.cli import main
from ssjax.experiment.config import ConfigError, diff_configs, load_config

REPO = Path(__file__).resolve().parents[2]
POISSON = "ssbm/poisson/input.ras"


def _checkout_data_root() -> Path | None:
    try:
        return paths.data_root({})
    except paths.DataRootError:
        return None


needs_data = pytest.mark.skipif(
    _checkout_data_root() is None, reason="no shared/data in or beside this checkout"
)


def test_configs_live_in_the_package_and_the_top_level_folder_points_there():
    assert paths.CONFIGS == REPO / "ssjax" / "configs"
    names = paths.shipped_configs()
    assert {"default", "fig2_quick", "oxford_rfb", "randman"} <= set(names)
    assert names == sorted(p.stem for p in (REPO / "configs").glob("*.yaml"))
    # the shipped files must not reach outside the package for data (a wheel has no ../../shared)
    for name in names:
        assert "../" not in (paths.CONFIGS / f"{name}.yaml").read_text(), name


def test_find_config_takes_a_name_or_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert paths.find_config("default") == paths.CONFIGS / "default.yaml"
    assert paths.find_config("default.yaml") == paths.CONFIGS / "default.yaml"
    assert paths.find_config("sub/none.yaml") == Path("sub/none.yaml")  # a path: left to load
    (tmp_path / "default").write_text("run: {seeds: 3}\n")
    assert paths.find_config("default") == Path("default")  # an existing file wins
    with pytest.raises(paths.UnknownConfigError) as e:
        paths.find_config("fig3")
    assert e.value.name == "fig3" and "default" in e.value.shipped


def test_cli_accepts_a_shipped_name_and_rejects_an_unknown_one(capsys):
    assert main(["validate", "default"]) == 0
    assert "default: valid; 4 seed(s)" in capsys.readouterr().out
    assert main(["validate", "fig5_xor_quick.yaml", "--set", "run.seeds=2"]) == 0
    assert "2 seed(s)" in capsys.readouterr().out
    assert main(["validate", "fig3_quick"]) == 2
    err = capsys.readouterr().err
    assert "fig3_quick: neither a config file nor the name of a shipped config" in err
    assert "default, fig1, fig1_quick" in err and "randman_quick" in err
    assert main(["train", "nonesuch", "--no-progress"]) == 2
    assert "nonesuch" in capsys.readouterr().err


def test_data_paths_resolve_against_ssjax_data(tmp_path):
    root = tmp_path / "data"
    (root / "ssbm").mkdir(parents=True)
    env = {paths.DATA_ENV: str(root)}
    got = paths.resolve_data_path(f"data:{POISSON}", "/elsewhere", env)
    assert got == str(root / POISSON)
    # any other path is a file path relative to the YAML folder, as before
    assert paths.resolve_data_path("x/in.ras", "/cfg", env) == "/cfg/x/in.ras"
    assert paths.resolve_data_path("/abs/in.ras", "/cfg", env) == "/abs/in.ras"
    for bad in ("data:", "data:/etc/passwd", "data:../x.ras", "data:ssbm/../../x"):
        with pytest.raises(paths.DataRootError, match="stays inside it"):
            paths.resolve_data_path(bad, "/cfg", env)
    with pytest.raises(paths.DataRootError, match="is not a folder"):
        paths.data_root({paths.DATA_ENV: str(tmp_path / "missing")})


def test_missing_data_root_is_a_config_error_naming_file_key_and_the_variable(monkeypatch):
    monkeypatch.delenv(paths.DATA_ENV, raising=False)
    monkeypatch.setattr(paths, "_CHECKOUT", Path("/nonexistent-ssjax-install"))  # as a wheel
    fig2 = paths.CONFIGS / "fig2_quick.yaml"
    with pytest.raises(ConfigError) as e:
        load_config(fig2)
    assert e.value.file == str(fig2) and e.value.key == "task.input"
    assert "set SSJAX_DATA to the folder that holds ssbm/" in e.value.message
    load_config(paths.CONFIGS / "default.yaml")  # a config without data files still loads


@needs_data
def test_checkout_default_and_the_environment_variable_give_the_same_config(monkeypatch):
    monkeypatch.delenv(paths.DATA_ENV, raising=False)
    a = load_config(REPO / "configs" / "fig2_quick.yaml")  # through the top-level link
    root = _checkout_data_root()
    assert root is not None and a.task.input == str(root / POISSON)
    monkeypatch.setenv(paths.DATA_ENV, str(root))
    assert diff_configs(load_config(paths.CONFIGS / "fig2_quick.yaml"), a) == []
    # an override's data: path resolves the same way
    b = load_config(paths.CONFIGS / "fig2_quick.yaml", [f"task.input=data:{POISSON}"])
    assert b.task.input == str(root / POISSON)


def _build_wheel(tmp_path: Path) -> Path:
    """Build the wheel from a copy of the sources (the checkout gets no build/ folder)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(
        REPO / "ssjax", src / "ssjax", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*cmd, "-w", str(tmp_path / "dist"), str(src)], check=True)
    (wheel,) = (tmp_path / "dist").glob("ssjax-*.whl")
    return wheel


@pytest.mark.slow  # long check, run by .ci/run after the default suite
def test_the_wheel_ships_the_configs_and_runs_them_with_ssjax_data(tmp_path):
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as z:
        files = set(z.namelist())
    shipped = {f"ssjax/configs/{n}.yaml" for n in paths.shipped_configs()}
    assert shipped <= files and "ssjax/configs/README.md" in files
    assert "ssjax/experiment/paths.py" in files

    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
    )
    probe = (
        "import sys, ssjax; from ssjax.experiment.cli import main; "
        f"assert ssjax.__file__.startswith({str(site)!r}), ssjax.__file__; "
        "sys.exit(main(sys.argv[1:]))"
    )
    env = {k: v for k, v in os.environ.items() if k != paths.DATA_ENV}
    env.update(PYTHONPATH=str(site), JAX_PLATFORMS="cpu")

    def run(*args, **extra):
        return subprocess.run(
            [sys.executable, "-c", probe, *args],
            cwd=tmp_path,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=300,
        )

    r = run("validate", "default")
    assert r.returncode == 0 and "default: valid" in r.stdout, r.stderr
    r = run("validate", "fig2_quick")  # from site-packages, with no data root
    assert r.returncode == 2, r.stdout
    assert f"{site}/ssjax/configs/fig2_quick.yaml: task.input:" in r.stderr
    assert "set SSJAX_DATA" in r.stderr
    root = _checkout_data_root()
    if root is not None:
        r = run("validate", "fig2_quick", SSJAX_DATA=str(root))
        assert r.returncode == 0 and "fig2_quick: valid" in r.stdout, r.stderr
