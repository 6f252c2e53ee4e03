"""Pictures and tables of ``ssjax.plots`` that are not covered through the runs that write them:
the rule-alignment table and bar chart of ``ssjax compare``."""

import itertools

import numpy as np
import pytest

from ssjax.analysis.alignment import Alignment
from ssjax.plots import format_table, plot_alignment

RULES = ("superspike:symmetric", "superspike:random", "superspike:none", "bptt")
N_LAYERS = 2


@pytest.fixture
def results():
    """``compare_rules``-shaped results: every pair of four rules, two layers each."""
    rng = np.random.default_rng(0)
    return {
        pair: Alignment(
            rng.uniform(-1, 1, N_LAYERS), rng.uniform(0, 3, N_LAYERS), rng.uniform(0, 1, N_LAYERS)
        )
        for pair in itertools.combinations(RULES, 2)
    }


def test_alignment_table_rows_and_layer_names(results):
    res = results
    table = format_table(res, ["hidden", "output"])
    for a, b in res:
        assert f"{a} vs {b}" in table
    assert "hidden" in table and "output" in table
    assert len(table.splitlines()) == 2 + len(res) * N_LAYERS
    assert "W[0]" in format_table(res) and "W[1]" in format_table(res)  # default names
    with pytest.raises(ValueError, match="layer_names"):
        format_table(res, ["only one"])


def test_alignment_plot_writes_a_png(results, tmp_path):
    path = plot_alignment(results, tmp_path / "a.png")
    with open(path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="layer_names"):
        plot_alignment(results, tmp_path / "b.png", ["only one"])
