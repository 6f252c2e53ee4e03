"""Classification losses and predictions of labelled trials, from a readout's outputs.

A trial is ``T`` steps of a minibatch of ``B`` examples with integer labels ``y`` ``[B]`` in
``[0, C)``; the readout's outputs are time-major ``[T, B, C]``: the potentials of an LI readout
(:mod:`ssjax.readout`, volts) or the spikes of ``C`` output neurons (counts per step). Each
readout reduces them to scores ``z`` ``[B, C]``; the prediction is ``argmax_c z`` (the first
maximum on ties), the loss is per example ``[B]`` (average it for a minibatch loss):

===============  ==========  ==============================================================
name             outputs     scores ``z`` and loss per example
===============  ==========  ==============================================================
``max``          potentials  ``z = scale max_t u[t]``;  ``CE(z, y)``
``last``         potentials  ``z = scale u[T-1]``;  ``CE(z, y)``
``mean``         potentials  ``z = scale mean_t u[t]``;  ``CE(z, y)``
``count_ce``     spikes      ``z = n = sum_t s[t]``;  ``CE(n, y)``
``count_mse``    spikes      ``z = n``;  ``mean_c (n_c - n^_c)^2``, ``n^_c = count_true`` if
                             ``c = y`` else ``count_false``
``first_spike``  spikes      ``z = -t_first / tau``;  ``CE(z, y)``
===============  ==========  ==============================================================

``CE(z, y) = -log softmax(z)_y = logsumexp_c z_c - z_y`` is
``optax.softmax_cross_entropy_with_integer_labels``. Softmax is shift-invariant, so the resting
potential drops out of the membrane readouts; ``scale`` (1/V) turns volts into logits.

First spike (Goltz et al. 2021; Mostafa 2018): the first spike time of output ``c``, written so
that it is exact on binary spikes and differentiable through the spike's surrogate::

    f[t] = s[t] prod_{t' < t} (1 - s[t'])          (1 at the first spike, 0 elsewhere)
    t_first = dt (sum_t t f[t] + T prod_t (1 - s[t]))    (T dt: no spike in the trial)

On binary spikes with the first spike at ``t*``, ``d t_first / d s[k] = (k - t*) dt`` for
``k < t*`` (a spike at ``k`` would move it there), ``(t* - t2) dt`` at ``k = t*`` (``t2``: the
next spike, or ``T``: removing the first spike moves it there) and 0 for ``k > t*``; without a
spike, ``(k - T) dt``. Goltz et al.'s loss is ``CE(-t / tau, y)`` (their eq. for ``L``; their
regulariser on ``t_y`` is not included).

Registry: :data:`READOUTS` maps each name to a :class:`Readout` (its outputs, scores, loss);
:func:`get_readout` gives one with an error naming the unknown name; :class:`ClassifierLoss`
holds a configuration's choice and parameters (declared with :func:`ssjax.params.param`, so a
config can name them) and computes loss, prediction and accuracy.

References: Zenke & Vogels (2021), Neural Computation 33(4) (max-over-time and last-step
readouts); Cramer et al. (2020), IEEE TNNLS; Eshraghian et al. (2023), Proc. IEEE (snntorch's
spike-count losses ``ce_count_loss``, ``mse_count_loss``); Goltz et al. (2021), Nature Machine
Intelligence 3, 823-835 and Mostafa (2018), IEEE TNNLS 29(7) (first-spike-time cross-entropy).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import ClassVar, NamedTuple

import jax.numpy as jnp
import optax

from ssjax._types import Array
from ssjax.params import check_fields, choice, ge, gt, param

__all__ = [
    "READOUTS",
    "ClassifierLoss",
    "Readout",
    "accuracy",
    "count_mse",
    "cross_entropy",
    "first_spike_times",
    "get_readout",
    "predict",
    "spike_counts",
]


def cross_entropy(logits: Array, labels: Array) -> Array:
    """``-log softmax(logits)_y`` per example: logits ``[B, C]``, labels ``[B]`` int -> ``[B]``.

    ``optax.softmax_cross_entropy_with_integer_labels`` (stable: ``logsumexp(z) - z_y``).
    """
    return optax.softmax_cross_entropy_with_integer_labels(logits, jnp.asarray(labels))


def spike_counts(spikes: Array) -> Array:
    """Spikes per output over the trial: ``[T, B, C] -> [B, C]``."""
    return jnp.sum(spikes, axis=0)


def first_spike_times(spikes: Array, dt: float) -> Array:
    """First spike time per output (s), ``[T, B, C] -> [B, C]``; ``T dt`` if none.

    ``t_first = dt (sum_t t f[t] + T prod_t (1 - s[t]))``, ``f[t] = s[t] prod_{t'<t}(1 - s[t'])``
    (module docstring): exact for 0/1 spikes, differentiable through their surrogate. Step
    ``t`` is at time ``t dt``.
    """
    s = jnp.asarray(spikes)
    n = s.shape[0]
    silent = jnp.cumprod(1.0 - s, axis=0)  # prod_{t' <= t} (1 - s[t'])
    before = jnp.concatenate([jnp.ones_like(silent[:1]), silent[:-1]], axis=0)
    f = s * before
    steps = jnp.arange(n, dtype=s.dtype).reshape((n,) + (1,) * (s.ndim - 1))
    return dt * (jnp.sum(steps * f, axis=0) + n * silent[-1])


def count_mse(spikes: Array, labels: Array, count_true: float, count_false: float) -> Array:
    """``mean_c (n_c - n^_c)^2`` per example ``[B]``: ``n = sum_t s``, ``n^_y = count_true``,
    ``n^_c = count_false`` for ``c != y`` (spikes per trial)."""
    n = spike_counts(spikes)
    onehot = jnp.arange(n.shape[-1]) == jnp.asarray(labels)[..., None]
    target = jnp.where(onehot, count_true, count_false).astype(n.dtype)
    return jnp.mean(jnp.square(n - target), axis=-1)


class Readout(NamedTuple):
    """One entry of :data:`READOUTS`.

    outputs: ``"membrane"`` (LI potentials, V) or ``"spikes"`` (0/1 per step).
    scores(outputs [T, B, C], p: ClassifierLoss, dt) -> [B, C]: prediction = argmax.
    loss(outputs, labels [B], p, dt) -> [B]: per-example loss.
    """

    outputs: str
    scores: Callable
    loss: Callable


def _ce(scores: Callable) -> Callable:
    return lambda out, labels, p, dt: cross_entropy(scores(out, p, dt), labels)


def _max(u, p, dt):
    return p.scale * jnp.max(u, axis=0)


def _last(u, p, dt):
    return p.scale * u[-1]


def _mean(u, p, dt):
    return p.scale * jnp.mean(u, axis=0)


def _counts(s, p, dt):
    return spike_counts(s)


def _first(s, p, dt):
    return -first_spike_times(s, dt) / p.tau


READOUTS: dict[str, Readout] = {
    "max": Readout("membrane", _max, _ce(_max)),
    "last": Readout("membrane", _last, _ce(_last)),
    "mean": Readout("membrane", _mean, _ce(_mean)),
    "count_ce": Readout("spikes", _counts, _ce(_counts)),
    "count_mse": Readout(
        "spikes", _counts, lambda s, y, p, dt: count_mse(s, y, p.count_true, p.count_false)
    ),
    "first_spike": Readout("spikes", _first, _ce(_first)),
}


def get_readout(name: str) -> Readout:
    """The :data:`READOUTS` entry ``name``; ``ValueError`` naming it and the choices otherwise."""
    try:
        return READOUTS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown readout {name!r}; choose one of {', '.join(map(repr, READOUTS))}"
        ) from None


def predict(scores: Array) -> Array:
    """``argmax_c scores`` ``[B, C] -> [B]`` int32 (the first maximum on ties)."""
    return jnp.argmax(scores, axis=-1).astype(jnp.int32)


def accuracy(scores: Array, labels: Array) -> Array:
    """Fraction of examples whose prediction is the label (a scalar)."""
    return jnp.mean((predict(scores) == jnp.asarray(labels)).astype(scores.dtype))


@dataclasses.dataclass(frozen=True)
class ClassifierLoss:
    """A classification readout and its parameters (the ``readout`` section of a config).

    ``loss(outputs, labels, dt)`` is the minibatch mean of the per-example loss of
    :data:`READOUTS`; ``outputs`` ``[T, B, C]`` are the LI readout's potentials (V) for
    ``max``, ``last``, ``mean`` and the output spikes for ``count_ce``, ``count_mse``,
    ``first_spike`` (:attr:`outputs` says which); ``dt`` (s) is the step.
    """

    SCOPE: ClassVar[str] = "readout"

    name: str = param("max", choice(READOUTS), doc=" | ".join(READOUTS))
    scale: float = param(1e3, gt(0, " 1/V"), doc="logits per volt of the membrane readouts (1/V)")
    count_true: float = param(5.0, ge(0), doc="count_mse: target spikes of the correct output")
    count_false: float = param(0.0, ge(0), doc="count_mse: target spikes of the other outputs")
    tau: float = param(5e-3, gt(0, " s"), doc="first_spike: logit = -t_first / tau (s)")

    def __post_init__(self):
        check_fields(self)

    @property
    def outputs(self) -> str:
        """``"membrane"`` or ``"spikes"``: what :meth:`loss` expects."""
        return READOUTS[self.name].outputs

    def scores(self, outputs: Array, dt: float) -> Array:
        """Scores ``[B, C]`` whose argmax is the prediction (logits for the CE readouts)."""
        return READOUTS[self.name].scores(outputs, self, dt)

    def losses(self, outputs: Array, labels: Array, dt: float) -> Array:
        """Per-example loss ``[B]``."""
        return READOUTS[self.name].loss(outputs, labels, self, dt)

    def loss(self, outputs: Array, labels: Array, dt: float) -> Array:
        """Minibatch loss: the mean of :meth:`losses` (a scalar)."""
        return jnp.mean(self.losses(outputs, labels, dt))

    def predict(self, outputs: Array, dt: float) -> Array:
        """Predicted class per example ``[B]`` int32."""
        return predict(self.scores(outputs, dt))

    def accuracy(self, outputs: Array, labels: Array, dt: float) -> Array:
        """Fraction of the minibatch predicted correctly (a scalar)."""
        return accuracy(self.scores(outputs, dt), labels)
