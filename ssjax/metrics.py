"""Training metrics: per-period totals of the trainer's per-block segments, and window accuracy.

The trainer (:func:`ssjax.train.block_step`) reports each block's numbers split by pattern
period (``BlockMetrics.*_seg``: segment ``s`` of a block belongs to period ``period0 + s``), since
a block may straddle periods. :class:`PeriodAccumulator` adds those segments into per-period
totals, in block and segment order, and hands a period over once all its steps have been seen;
the partial periods are its state, so a run cut into pieces (or resumed from a checkpoint)
reports the numbers of an uninterrupted one. :func:`per_period` is that accumulator fed one
whole run at once; the runner feeds it segment by segment.

Window accuracy (XOR, randman): a window (``code != 0``, ending where ``|code| == 2``) is
correct when its correct output fired in it and no wrong output did
(:func:`ssjax.losses.window_outcome`, the trainer's own scan). :func:`window_correct` gives the
outcome of every window, :func:`window_accuracy` the fraction correct,
:func:`heldout_accuracy` that of trained networks simulated on a held-out stream.

Units: van Rossum distances are normalised by the rule's loss filter (1 per unmatched spike);
rates in Hz per neuron; times in steps of ``dt`` seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ssjax.losses import window_outcome
from ssjax.network import Network, simulate

if TYPE_CHECKING:  # the trainer imports this module; its types are only annotations here
    from ssjax.train import BlockMetrics

__all__ = [
    "PeriodAccumulator",
    "PeriodMetrics",
    "add_seed_blocks",
    "block_values",
    "heldout_accuracy",
    "per_period",
    "period_accuracy",
    "period_metrics",
    "period_record",
    "rate_hz",
    "window_accuracy",
    "window_correct",
]

# ------------------------------------------------------------------------------ per period


class PeriodAccumulator:
    """Sums per-segment values into per-period totals (host side, float64 numpy).

    ``add`` takes a stretch of blocks and returns the periods it completed. A period's totals
    are a dict with ``steps`` (int) and one float64 sum per value name; a value that is a tuple
    of arrays (one per layer) keeps a list of sums. Sums run in block then segment order,
    starting from 0, whether the blocks arrive at once or a few at a time, so the totals do not
    depend on how a run is cut. :meth:`state` is the partial periods as JSON-able lists, and
    ``PeriodAccumulator(period_steps, partial=state)`` continues from it.
    """

    def __init__(self, period_steps: int, partial: Mapping | None = None):
        self.period_steps = period_steps
        self.partial: dict[int, dict] = {int(k): dict(v) for k, v in (partial or {}).items()}

    def add(self, period0, steps_seg, values: Mapping) -> list[tuple[int, dict]]:
        """Add ``blocks`` blocks; return the completed ``(period, totals)``, by period.

        Args:
          period0: ``[blocks]`` the period of each block's first segment.
          steps_seg: ``[blocks, n_seg]`` steps of each segment (0: unused segment).
          values: name -> ``[blocks, n_seg, *rest]`` per-segment sums (or a tuple of such
            arrays, e.g. one per layer); ``rest`` is kept (e.g. seeds or outputs).
        """
        p0 = np.asarray(period0)
        steps = np.asarray(steps_seg)
        vals = {
            k: (
                tuple(np.asarray(a, np.float64) for a in v)
                if isinstance(v, tuple)
                else np.asarray(v, np.float64)
            )
            for k, v in values.items()
        }
        for b in range(steps.shape[0]):
            for s in range(steps.shape[1]):
                if steps[b, s] == 0:
                    continue
                acc = self.partial.setdefault(int(p0[b]) + s, {"steps": 0})
                acc["steps"] += int(steps[b, s])
                for key, v in vals.items():
                    if isinstance(v, tuple):
                        old = acc.get(key, [0.0] * len(v))
                        acc[key] = [np.asarray(o) + a[b, s] for o, a in zip(old, v, strict=True)]
                    else:
                        acc[key] = np.asarray(acc.get(key, 0.0)) + v[b, s]
        done = sorted(p for p, a in self.partial.items() if a["steps"] >= self.period_steps)
        return [(p, self.partial.pop(p)) for p in done]

    def state(self) -> dict:
        """The partial periods, JSON-able (``{str(period): {name: list or int}}``)."""

        def plain(v):
            if isinstance(v, list):
                return [np.asarray(x).tolist() for x in v]
            return v if isinstance(v, int) else np.asarray(v).tolist()

        return {str(p): {k: plain(v) for k, v in a.items()} for p, a in self.partial.items()}


def rate_hz(spike_sum, n_units: int, period_steps: int, dt: float) -> np.ndarray:
    """Firing rate (Hz per neuron) of a layer of ``n_units`` from its spike count over one
    period of ``period_steps`` steps of ``dt`` seconds."""
    return np.asarray(spike_sum) / (n_units * period_steps * dt)


def period_accuracy(correct, ended) -> np.ndarray:
    """Fraction of a period's ended windows answered correctly (0 where none ended)."""
    return np.asarray(correct) / np.maximum(np.asarray(ended), 1)


class PeriodMetrics(NamedTuple):
    """Per complete pattern period (numpy): ``van_rossum`` ``[n, N_out]``, ``rate_hz`` per layer
    ``[n]``, the index of each period, and ``accuracy`` ``[n]`` (windows correct / windows ended,
    0 for a period without a window; zeros unless the rule classifies)."""

    period: np.ndarray
    van_rossum: np.ndarray
    rate_hz: tuple
    accuracy: np.ndarray | None = None


def block_values(metrics: BlockMetrics) -> dict:
    """The per-segment values of one run's metrics (stacked over blocks, no seed axis) that
    :func:`period_metrics` reads: per-output van Rossum sums, spikes per layer, windows."""
    return {
        "van_rossum": metrics.sq_err_seg,  # [blocks, n_seg, N_out]
        "spikes": tuple(metrics.spikes_seg),
        "ended": metrics.ended_seg,
        "correct": metrics.correct_seg,
    }


def period_metrics(done, sizes, period_steps: int, dt: float) -> PeriodMetrics:
    """:class:`PeriodMetrics` of the completed ``(period, totals)`` that
    :meth:`PeriodAccumulator.add` returned for :func:`block_values` (possibly none)."""
    vr = np.asarray([t["van_rossum"] for _, t in done], np.float64)
    spikes = [np.asarray([t["spikes"][l] for _, t in done]) for l in range(len(sizes) - 1)]
    return PeriodMetrics(
        period=np.asarray([p for p, _ in done], np.int64),
        van_rossum=vr.reshape(len(done), sizes[-1]),
        rate_hz=tuple(
            rate_hz(sp, n, period_steps, dt) for n, sp in zip(sizes[1:], spikes, strict=True)
        ),
        accuracy=period_accuracy(
            np.asarray([t["correct"] for _, t in done]), np.asarray([t["ended"] for _, t in done])
        ),
    )


def per_period(metrics: BlockMetrics, sizes, period_steps: int, dt: float) -> PeriodMetrics:
    """Reassemble per-period numbers from the per-block segments (host side, numpy).

    ``metrics`` is stacked over blocks (leading axis; no seed axis); ``sizes`` the network's
    layer sizes. Only periods whose steps all lie in ``metrics`` are returned. To follow a run
    piece by piece, feed a :class:`PeriodAccumulator` :func:`block_values` and read each
    piece's completed periods with :func:`period_metrics`.
    """
    done = PeriodAccumulator(period_steps).add(
        metrics.period0, metrics.steps_seg, block_values(metrics)
    )
    return period_metrics(done, sizes, period_steps, dt)


def add_seed_blocks(acc: PeriodAccumulator, metrics: BlockMetrics) -> list[tuple[int, dict]]:
    """Feed ``acc`` the seed-stacked metrics ``[S, blocks, ...]`` of a run (all seeds at the
    same position); return the completed ``(period, totals)``.

    ``totals`` (arrays ``[S]``): ``vr``, the van Rossum distance averaged over outputs per
    segment and summed over the period; ``spikes``, per layer, spike counts; ``ended`` and
    ``correct``, classification windows.
    """

    def seeds_last(a):  # [S, blocks, n_seg] -> [blocks, n_seg, S]
        return np.moveaxis(np.asarray(a, np.float64), 0, -1)

    return acc.add(
        np.asarray(metrics.period0)[0],  # the same for every seed
        np.asarray(metrics.steps_seg)[0],
        {
            "vr": seeds_last(np.asarray(metrics.sq_err_seg, np.float64).mean(-1)),
            "ended": seeds_last(metrics.ended_seg),
            "correct": seeds_last(metrics.correct_seg),
            "spikes": tuple(seeds_last(sp) for sp in metrics.spikes_seg),
        },
    )


def period_record(totals: Mapping, sizes, period_steps: int, dt: float, classify: bool) -> dict:
    """One period of a run's history from :func:`add_seed_blocks`'s totals, as lists over
    seeds: ``van_rossum`` ``[S]``, ``rate_hz`` ``[layers][S]`` and, when the rule classifies,
    ``accuracy`` ``[S]``."""
    rec = {
        "van_rossum": np.asarray(totals["vr"]).tolist(),
        "rate_hz": [
            rate_hz(sp, n, period_steps, dt).tolist()
            for sp, n in zip(totals["spikes"], sizes[1:], strict=True)
        ],
    }
    if classify:
        rec["accuracy"] = period_accuracy(totals["correct"], totals["ended"]).tolist()
    return rec


# ------------------------------------------------------------------------- window accuracy


def _window_ends(code) -> np.ndarray:
    """Last step of every window of ``code`` ``[T, N_out]`` (host; the code is data, not traced)."""
    return np.flatnonzero(np.any(np.abs(np.asarray(code)) == 2, axis=-1))


def window_correct(spikes, code) -> jax.Array:
    """``[n_windows]`` 1.0 for each window answered correctly, else 0.0, in stream order.

    ``spikes`` ``[T, N_out]`` (may be traced, e.g. under ``jit`` or ``lax.map``), ``code``
    ``[T, N_out]`` concrete (numpy): it fixes the number of windows.
    """
    _, correct, _ = window_outcome(spikes, jnp.asarray(code))
    return correct[_window_ends(code)]


def window_accuracy(spikes, code) -> float:
    """Fraction (float64) of the windows of ``code`` ``[T, N_out]`` that ``spikes``
    ``[T, N_out]`` answer correctly; NaN for a stream without a window."""
    ok = np.asarray(window_correct(spikes, code), np.float64)
    return float(ok.mean()) if ok.size else float("nan")


def heldout_accuracy(net: Network, weights: Sequence, inputs, code) -> np.ndarray:
    """Window accuracy of trained networks on a window-annotated stream, no learning.

    Each network (``weights``: per-layer arrays with a leading seed axis ``[S, ...]``) is
    simulated from rest on ``inputs`` ``[T, N_in]`` and scored as :func:`window_accuracy`.
    Returns ``[S]`` float64; seeds run one after another (``lax.map``), so memory does not grow
    with S.
    """
    x = jnp.asarray(inputs, weights[0].dtype)

    def one(w):
        return window_correct(simulate(net, w, x)[1].spikes[-1], code)

    ok = np.asarray(jax.jit(lambda ws: jax.lax.map(one, ws))(tuple(weights)), np.float64)
    return ok.mean(axis=-1) if ok.shape[-1] else np.full(ok.shape[0], np.nan)
