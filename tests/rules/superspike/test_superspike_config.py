"""SuperSpike's config: validation of its static settings."""

import pytest

from ssjax.rules.regulariser import Regularizer
from ssjax.rules.superspike import SuperSpikeConfig


def test_config_validation():
    with pytest.raises(ValueError, match="feedback"):
        SuperSpikeConfig(feedback="dfa")
    with pytest.raises(ValueError, match=r"regularizer\.rho.*>= 0"):
        SuperSpikeConfig(regularizer=Regularizer(rho=-1.0))
    with pytest.raises(ValueError, match="hebbian_delay"):
        SuperSpikeConfig(hebbian_delay=0.55e-4).delay_steps(1e-4)
    with pytest.raises(ValueError, match="method"):
        SuperSpikeConfig(method="fast")
