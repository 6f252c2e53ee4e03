"""Credit assignment to hidden layers: symmetric, random, uniform or no feedback.

A hidden neuron's SuperSpike error is a weighted sum of the filtered errors of the layer above,
*not* passed through that layer's ``sigma'`` (SUPERSPIKE.md 2.2). With LIF layers ``1..L``
(``L`` the output) and forward weights ``W[l]`` from layer ``l`` to ``l + 1`` (shape
``[N_l, N_{l+1}]``, layer 0 being the input), the errors are chained from the top down:

    e_L = alpha * (S^ - S_L),        e_l = e_{l+1} @ F[l]^T        (l = L-1, ..., 1)

where ``F[l]`` has the shape of ``W[l]`` and is

- ``symmetric``: the current forward weights, ``F[l] = W[l]`` (feedback alignment's "backprop"
  limit, without the ``sigma'`` of the layers above);
- ``random``: fixed ``N(0, 1)`` entries drawn once from the run's key;
- ``uniform``: all ones, so ``e_l`` is the sum of the errors above;
- ``none``: hidden weights are frozen (their updates are zero).

With one hidden layer this is exactly the paper's rule ``e_k = sum_i b_ik e_i``. Deeper layers
receive the error of the layer directly above them, so random feedback is a product of random
matrices on the way down (as in feedback alignment, not direct feedback alignment).

Reference: Zenke & Ganguli (2018), section 2.4 and Fig. 4-7; Lillicrap et al. (2016), Nat.
Commun. 7:13276 (feedback alignment).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ssjax.network import Network, Weights, matmul

Array = jax.Array

FEEDBACKS = ("symmetric", "random", "uniform", "none")


def check_feedback(kind: str) -> None:
    """Raise ValueError unless ``kind`` is one of :data:`FEEDBACKS`."""
    if kind not in FEEDBACKS:
        raise ValueError(f"feedback must be one of {FEEDBACKS}, got {kind!r}")


def init_feedback(key: Array, net: Network, kind: str, dtype=jnp.float32) -> tuple:
    """Fixed feedback matrices ``F[1..L-1]`` (shapes of ``W[1..L-1]``) for ``kind``.

    ``random``: ``N(0, 1)`` from ``key``; ``uniform``: ones. ``symmetric`` and ``none`` store
    nothing and return an empty tuple (symmetric reads the current weights instead).
    """
    check_feedback(kind)
    shapes = list(zip(net.sizes[1:-1], net.sizes[2:], strict=True))
    if kind == "random":
        keys = jax.random.split(key, max(len(shapes), 1))
        return tuple(jax.random.normal(k, s, dtype) for k, s in zip(keys, shapes, strict=False))
    if kind == "uniform":
        return tuple(jnp.ones(s, dtype) for s in shapes)
    return ()


def feedback_matrix(weights: Weights, feedback: tuple, kind: str, l: int) -> Array:
    """``[N_l, N_{l+1}]``: the matrix whose transpose carries layer ``l + 1``'s error to layer
    ``l`` (``W[l]`` for ``symmetric``, else the stored matrix); not for ``none``."""
    return weights[l] if kind == "symmetric" else feedback[l - 1]


def layer_errors(e_out: Array, weights: Weights, feedback: tuple, kind: str) -> tuple:
    """Errors of every LIF layer, bottom to top, from the output error ``e_out``.

    Args:
      e_out: ``[T, *B, N_L]`` filtered output error (1/s).
      weights: forward weights (used by ``symmetric``).
      feedback: matrices from :func:`init_feedback`.

    Returns:
      tuple of ``[T, *B, N_l]`` for ``l = 1..L``; hidden entries are zeros for ``none``.
    """
    check_feedback(kind)
    n_layers = len(weights)
    errs = [e_out]
    for l in range(n_layers - 1, 0, -1):  # W[l] maps layer l -> l + 1
        if kind == "none":
            e = jnp.zeros(e_out.shape[:-1] + (weights[l].shape[0],), e_out.dtype)
        else:
            e = matmul(errs[0], feedback_matrix(weights, feedback, kind, l).T)
        errs.insert(0, e)
    return tuple(errs)
