"""Quick reproductions of the paper's qualitative results (run in CI).

Fig. 5 (spiking XOR, ``configs/fig5_xor_quick.yaml``): symmetric and random feedback reach 100%
accuracy, a network without a hidden layer cannot, uniform feedback is worst. Thresholds come
from measured runs (docs/fig5_xor_measurements.md; seeds 0-3 are bit-reproducible on CPU):
1000 s: symmetric 1.0 in 4/4 seeds, random 1.0 in 3/4 (0.76 in the fourth); 300 s: uniform
0.03-0.31, no hidden layer 0.41-0.47.
"""

from pathlib import Path

import numpy as np
import pytest

from ssjax.runner import prepare, train

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "fig5_xor_quick.yaml"


def _accuracy(tmp_path, name, *sets):
    cfg = prepare(CONFIG, seeds=4, overrides=list(sets))
    summary = train(cfg, tmp_path / name, progress=False)
    return np.asarray(summary["final"]["accuracy"])


@pytest.fixture(scope="module")
def xor_results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fig5")
    return {
        "symmetric": _accuracy(tmp, "sym", "feedback.kind=symmetric", "run.duration=1000.0"),
        "random": _accuracy(tmp, "rnd", "feedback.kind=random", "run.duration=1000.0"),
        "uniform": _accuracy(tmp, "uni", "feedback.kind=uniform"),
        "no_hidden": _accuracy(tmp, "none", "network.sizes=[100,2]"),
    }


def test_fig5_symmetric_and_random_feedback_solve_xor(xor_results):
    assert np.sum(xor_results["symmetric"] >= 0.99) == 4
    assert np.sum(xor_results["random"] >= 0.99) >= 3


def test_fig5_no_hidden_layer_cannot_and_uniform_is_worst(xor_results):
    assert np.all(xor_results["no_hidden"] < 0.6)  # XOR is not linearly separable
    assert np.median(xor_results["uniform"]) < np.median(xor_results["random"])
    assert np.median(xor_results["uniform"]) < np.median(xor_results["no_hidden"])
