"""The tutorials in notebooks/ run top to bottom (with tiny sizes) and produce their results.

Each notebook's first code cell holds its size knobs; it is replaced by small settings, then
every code cell runs in order in one namespace, in a temporary directory, with matplotlib's Agg
backend and ``plt.show`` a no-op.
"""

import json
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"

SMALL = {
    "01_quickstart": "PERIODS = 6\nSEEDS = 2\nBURN_IN = 0.0\n",
    "02_feedback_strategies": (
        "XOR_DURATION = 1.0\nTIMING_PERIODS = 2\nSEEDS = 2\nN_PATTERNS = 4\nBURN_IN = 0.0\n"
        'FEEDBACKS = ("symmetric", "random", "uniform", "none")\n'
    ),
    "03_superspike_vs_bptt": (
        "PERIODS = 3\nSEEDS = 2\nSIZES = (100, 4, 1)\nGAIN = 3.0\nBURN_IN = 0.0\n"
    ),
    "04_flax_nnx": "EPOCHS = 3\nBLOCKS = 2\n",
    "05_trials_shd": (
        "N_CLASSES = 3\nN_UNITS = 40\nN_PER_CLASS = 3\nN_TEST = 2\nHIDDEN = 8\nEPOCHS = 2\n"
        "SEEDS = 2\n"
    ),
}


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(plt, "show", lambda *a, **k: None)
    yield tmp_path
    plt.close("all")


def run_notebook(name: str) -> dict:
    nb = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
    assert nb["nbformat"] == 4
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] for c in cells), "notebooks are stored without outputs"
    ns = {"__name__": "__main__"}
    for i, cell in enumerate(cells):
        source = "".join(cell["source"])
        if i == 0:
            knobs = {line.split("=")[0].strip() for line in source.splitlines() if "=" in line}
            small = {line.split("=")[0].strip() for line in SMALL[name].splitlines()}
            assert knobs == small, f"{name}: knob cell changed: {sorted(knobs)}"
            source = SMALL[name]
        exec(compile(source, f"{name}[cell {i}]", "exec"), ns)
    return ns


def test_notebook_list():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(SMALL)


def test_01_quickstart(in_tmp):
    ns = run_notebook("01_quickstart")
    curve = ns["learning_curve"]
    assert curve.shape == (6, 2)
    assert np.all(np.isfinite(curve))
    assert ns["output_trained"].shape == (5000, 1)
    for png in ("raster_untrained.png", "trials.png", "output_vs_target.png"):
        assert (in_tmp / png).stat().st_size > 0


@pytest.mark.slow  # 21 s: run by .ci/run after the default suite
def test_02_feedback_strategies(in_tmp):
    ns = run_notebook("02_feedback_strategies")
    feedbacks = ("symmetric", "random", "uniform", "none")
    assert set(ns["xor_accuracy"]) == set(feedbacks)
    assert all(0.0 <= a <= 1.0 for a in ns["xor_accuracy"].values())
    assert set(ns["timing_final"]) == set(feedbacks)
    assert all(np.isfinite(v) for v in ns["timing_final"].values())
    assert all(np.all(np.isfinite(c)) for c in ns["timing_curves"].values())


@pytest.mark.slow  # long check, run by .ci/run after the default suite
def test_03_superspike_vs_bptt(in_tmp):
    ns = run_notebook("03_superspike_vs_bptt")
    table = ns["alignment_table"]
    assert isinstance(table, str) and "superspike:symmetric vs bptt" in table
    assert "output" in table and "hidden 1" in table
    assert set(ns["curves"]) == {"superspike", "bptt"}
    for vr in ns["curves"].values():
        assert vr.shape == (3, 2) and np.all(np.isfinite(vr))


@pytest.mark.slow  # long check, run by .ci/run after the default suite
def test_04_flax_nnx(in_tmp):
    pytest.importorskip("flax.nnx")
    pytest.importorskip("nir")
    ns = run_notebook("04_flax_nnx")
    assert ns["bptt_curve"].shape == (3,) and np.all(np.isfinite(ns["bptt_curve"]))
    assert ns["superspike_curve"].shape == (2,) and np.all(np.isfinite(ns["superspike_curve"]))
    assert ns["net2"] == ns["net"]
    kinds = sorted(type(n).__name__ for n in ns["graph"].nodes.values())
    assert kinds == ["CubaLIF", "CubaLIF", "Input", "Linear", "Linear", "Output"]
    assert (in_tmp / "trained.nir").stat().st_size > 0
    assert "tau_ref" in ns["refusal"]


@pytest.mark.slow  # ~30 s: three rules compiled
def test_05_trials_shd(in_tmp):
    ns = run_notebook("05_trials_shd")
    rules = ("bptt", "superspike symmetric", "superspike random")
    assert set(ns["final_accuracy"]) == set(rules)
    for name in rules:
        assert ns["curves"][name].shape == (3, 2)  # epochs + 1, seeds
        assert np.all((ns["curves"][name] >= 0) & (ns["curves"][name] <= 1))
        assert len(ns["wall"][name]) == 2 and min(ns["wall"][name]) > 0
    assert ns["train"].n_trials == 9 and ns["test"].n_trials == 6
    for png in ("words.png", "trials_shd.png"):
        assert (in_tmp / png).stat().st_size > 0
