"""``ssjax reproduce``: the figure registry, ``--list``, one tiny figure end to end, reuse."""

import dataclasses
import json
import math
import pathlib
import re

import pytest

from ssjax.experiment import paths, reproduce
from ssjax.experiment.cli import build_parser, main, reproduce_command
from ssjax.experiment.config import ConfigError, load_config
from ssjax.experiment.reproduce import FIGURES, condition_configs, markdown

REPO = pathlib.Path(__file__).resolve().parents[2]


def _has_data() -> bool:
    try:  # the shipped configs' data: paths resolve against the data root
        return (paths.data_root() / "ssbm" / "poisson" / "input.ras").is_file()
    except paths.DataRootError:
        return False


needs_repo_shared = pytest.mark.skipif(
    not _has_data(),
    reason="no data root with ssbm/ (set SSJAX_DATA; see ssjax/experiment/paths.py)",
)
PAPER = {"fig1", "fig2", "fig4", "fig5", "fig6", "fig8", "oxford", "randman"}


def test_registry_names_every_experiment_with_quick_and_full_configs():
    assert set(FIGURES) == PAPER
    for fig in FIGURES.values():
        names = [c.name for c in fig.conditions]
        assert len(set(names)) == len(names) and all(re.fullmatch(r"[\w.+-]+", n) for n in names)
        assert fig.quick != fig.full and fig.conditions_for(quick=True)
        for quick in (True, False):
            text = (REPO / "configs" / fig.config_file(quick)).read_text()
            assert text.startswith("#"), "each config starts with a header comment"
    assert len(FIGURES["fig1"].conditions) == 15 and len(FIGURES["fig4"].conditions) == 6
    assert "no_hidden" in {c.name for c in FIGURES["fig5"].conditions}
    fig6 = {c.name: c for c in FIGURES["fig6"].conditions}
    assert {"symmetric", "random", "random_reg", "uniform", "no_hidden", "sigma_one"} <= set(fig6)
    assert "fixed_hidden" in fig6 and fig6["nh128"].full_only
    fig8 = [c.name for c in FIGURES["fig8"].conditions]
    # rho widened to bracket an optimum (a = 4) and past the a = 0 instability near 100
    assert {"a4_rho0", "a4_rho0.01", "a4_rho1000", "a0_rho100", "a0_rho1000"} <= set(fig8)
    assert {"symmetric", "oxford_rfb"} <= {c.name for c in FIGURES["oxford"].conditions}


@needs_repo_shared
@pytest.mark.parametrize("name", sorted(PAPER))
def test_every_condition_validates_quick_and_full(name):
    fig = FIGURES[name]
    runs = {}
    for quick in (True, False):
        for cond, cfg in condition_configs(fig, quick=quick):  # load_config: validation only
            assert cfg.source.endswith(fig.config_file(quick))
            runs.setdefault(cond.name, {})[quick] = cfg
    full_names = [c.name for c in fig.conditions]
    assert list(runs) == full_names
    for cond, pair in runs.items():
        q, f = pair.get(True), pair[False]
        if q is None:
            assert {c.name: c for c in fig.conditions}[cond].full_only
            continue
        # quick is smaller in seeds x time; the conditions' overrides act on both alike
        assert q.run.seeds * q.run.duration < f.run.seeds * f.run.duration
        assert q.network.sizes == f.network.sizes and q.rule.feedback == f.rule.feedback
    if name in ("fig6", "fig8"):
        for cfg in (c[q] for c in runs.values() for q in c):
            # the paper's 0.8 ms axonal delay, offset in the eligibility trace; the code's
            # rate drop at block 20 (420 s)
            assert cfg.neuron.delay == cfg.rule.hebbian_delay == 8e-4
            assert cfg.optimizer.drops == ((420.0, 0.1),)
    if name == "fig6":
        assert runs["random_reg"][False].regularizer.rho == 1.0
        assert runs["no_hidden"][False].network.sizes == (100, 100)
        assert runs["symmetric"][False].run.duration == 1000.0  # the paper's 1000 s
        # Fig. 7c-g: n_h = 256 for every feedback condition; the n_h sweep kept
        for cond in ("symmetric", "random", "random_reg", "uniform", "sigma_one"):
            assert runs[cond][False].network.sizes == (100, 256, 100)
        assert runs["nh32"][False].network.sizes == (100, 32, 100)
    if name == "fig8":
        # "the task of Fig. 7": n_h = 256, random feedback
        assert all(c[False].network.sizes == (100, 256, 100) for c in runs.values())
        assert all(c[False].rule.feedback == "random" for c in runs.values())
    if name == "oxford":
        full = runs["symmetric"][False]
        assert full.task.target_id_offset == 1 and full.run.duration == 1022.0
        # the long demo runs the event-driven route, the quick one alike
        assert full.rule.method == runs["symmetric"][True].rule.method == "event"
        # the oxford_rfb condition is configs/oxford_rfb.yaml (the code's sim_rfb)
        rfb = load_config(REPO / "configs" / "oxford_rfb.yaml")
        assert runs["oxford_rfb"][False] == dataclasses.replace(rfb, source=full.source)
        assert rfb.regularizer.rho == 1.0 and rfb.rule.feedback == "random"
    if name == "fig1":
        fixed = runs["fixed_1e-5"][True].optimizer
        assert (fixed.name, fixed.r0) == ("fixed", 1e-5)


def test_bad_overrides_and_unknown_figures_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown figure 'fig3'"):
        reproduce.run_figure("fig3", out=tmp_path)
    assert main(["reproduce", "fig3"]) == 2
    assert main(["reproduce"]) == 2
    fig2 = FIGURES["fig2"]
    with pytest.raises(ConfigError, match="run.duration"):
        condition_configs(fig2, quick=True, duration=0.3)  # not a multiple of run.block


def test_report_header_names_the_command():
    def command(*argv):
        return reproduce_command(build_parser().parse_args(["reproduce", *argv]))

    assert command("fig2", "--quick") == "ssjax reproduce fig2 --quick"
    assert command("fig6") == "ssjax reproduce fig6"
    got = command("fig5", "--seeds", "3", "--duration", "20", "--out", "x", "--no-progress")
    assert got == "ssjax reproduce fig5 --seeds 3 --duration 20 --out x"


def test_list_prints_figures_conditions_and_sizes(capsys):
    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    for name, fig in FIGURES.items():
        assert re.search(rf"^{name}: ", out, re.M)
        for c in fig.conditions:
            assert c.name in out
    if (REPO.parent / "shared" / "data" / "ssbm").is_dir():
        assert "quick configs/fig2_quick.yaml: 8 seeds x 500 s, 1 condition" in out
        assert "full  configs/fig6.yaml: 4 seeds x 1000 s, 11 conditions" in out
    assert main(["reproduce", "fig5", "--list"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("fig5: ") and "no_hidden" in out and "fig2" not in out


def test_markdown_reports_the_all_negative_feedback_seeds():
    stats = {"median": 0.1, "q1": 0.05, "q3": 2.0, "values": [0.1, 2.0, 0.05]}
    row = dict(
        condition="h4_random",
        overrides=["rule.feedback=random"],
        seeds=[0, 1, 2],
        simulated_seconds=500.0,
        wall_seconds=3.0,
        reused=False,
        van_rossum=stats,
        success=[True, False, True],
        n_success=2,
        hidden_rate_hz=12.5,
        feedback_all_negative=[False, True, False],
    )
    report = dict(
        figure="fig4",
        title="t",
        quick=True,
        config="configs/fig4_quick.yaml",
        command="ssjax reproduce fig4 --quick",
        date="today",
        success=dict(metric="van_rossum", threshold=0.5, text="x", relative=False),
        wall_seconds=3.0,
        rows=[row],
    )
    line = markdown(report).splitlines()[-3]
    assert line == (
        "| h4_random | `rule.feedback=random` | 3 | 500 | 0.1 [0.05, 2] | 2/3 | 12.5 | 3.0 "
        "| 1/3 (1: no) |"
    )


def _table(md: str) -> list[list[str]]:
    rows = [ln for ln in md.splitlines() if ln.startswith("| ")]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in rows[1:]]  # without header


@needs_repo_shared
def test_tiny_fig2_end_to_end_then_read_back(tmp_path, capsys, monkeypatch):
    args = ["reproduce", "fig2", "--quick", "--seeds", "2", "--duration", "2"]
    args += ["--out", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    root = tmp_path / "fig2_quick"
    report = json.loads((root / "fig2.json").read_text())
    assert report["quick"] and report["command"].startswith("ssjax reproduce fig2 --quick")
    (row,) = report["rows"]
    assert row["condition"] == "100-1" and row["seeds"] == [0, 1] and not row["reused"]
    assert row["simulated_seconds"] == 2.0 and row["hidden_rate_hz"] is None
    vr = row["van_rossum"]
    assert len(vr["values"]) == 2 and all(math.isfinite(v) for v in vr["values"])
    assert vr["q1"] <= vr["median"] <= vr["q3"]
    # 2 s with a 20 s burn-in: nothing learned, the 5 target spikes are all missed (distance ~5)
    assert 4.0 < vr["median"] < 6.0 and row["n_success"] == 0
    md = (root / "fig2.md").read_text()
    assert "- command: `ssjax reproduce fig2 --quick --seeds 2 --duration 2" in md
    (cells,) = _table(md)
    assert cells[0] == "100-1" and cells[2] == "2" and cells[3] == "2" and cells[5] == "0/2"
    assert float(cells[4].split()[0]) == pytest.approx(vr["median"], rel=1e-2)
    assert (root / "fig2.png").stat().st_size > 20_000

    # a second invocation reads the finished condition back instead of training it again
    def no_training(*a, **k):
        raise AssertionError("a finished condition was trained again")

    monkeypatch.setattr(reproduce, "train", no_training)
    capsys.readouterr()
    assert main(args) == 0
    assert "100-1: read back" in capsys.readouterr().out
    again = json.loads((root / "fig2.json").read_text())
    assert again["rows"][0]["reused"] and again["rows"][0]["van_rossum"] == vr
    assert "(conditions: 0 trained, 1 read back)" in (root / "fig2.md").read_text()
    # other settings in the same folder are refused before anything runs
    assert main([*args[:4], "3", *args[5:]]) == 2
    assert "run.seeds: 2" in capsys.readouterr().err
    assert load_config(root / "100-1" / "config.yaml").run.seeds == 2


@needs_repo_shared
def test_a_diverging_condition_is_reported_not_fatal(tmp_path, capsys, monkeypatch):
    from ssjax.experiment.runner import NumericalError

    def diverge(cfg, workdir, **kw):
        raise NumericalError("non-finite values in seed 1 (index 1) at block 3")

    monkeypatch.setattr(reproduce, "train", diverge)
    args = ["reproduce", "fig2", "--quick", "--seeds", "2", "--out", str(tmp_path)]
    assert main(args) == 1
    assert "non-finite values in: 100-1" in capsys.readouterr().err
    report = json.loads((tmp_path / "fig2_quick" / "fig2.json").read_text())
    (row,) = report["rows"]
    assert report["failed"] == ["100-1"] and "seed 1" in row["error"]
    assert row["n_success"] == 0 and row["van_rossum"]["values"] == [None, None]
    (cells,) = _table((tmp_path / "fig2_quick" / "fig2.md").read_text())
    assert cells[4].startswith("failed: non-finite") and cells[5] == "0/2"
    assert (tmp_path / "fig2_quick" / "fig2.png").stat().st_size > 10_000
