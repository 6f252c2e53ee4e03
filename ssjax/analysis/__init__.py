"""Analyses of trained or untrained networks that are not part of training itself.

- :mod:`ssjax.analysis.alignment`: per-layer alignment (cosine, norm ratio, sign agreement) of
  SuperSpike's updates with BPTT's on the same state and block.
"""

from ssjax.analysis.alignment import RULES, Alignment, alignment, compare_rules, rule_grads

__all__ = ["RULES", "Alignment", "alignment", "compare_rules", "rule_grads"]
