"""Gradient versus local rule: how well SuperSpike's updates align with BPTT's, layer by layer.

All rules see the same network state, weights and block (one sample, ``inputs`` ``[K, N_in]``,
``targets`` ``[K, N_out]``) and return updates shaped like the weights, in the optax descent
sign (``w <- w - r g``). Rules (:data:`RULES`):

- ``superspike:<feedback>``: :func:`ssjax.rules.superspike.superspike_grads` with the hidden
  feedback ``symmetric``, ``random``, ``uniform`` or ``none``, multiplied by ``t_b = K dt``;
- ``bptt``: :func:`ssjax.rules.bptt.bptt_grad` with the reset not differentiated
  (``reset_grad=False``, SuperSpike's own assumption);
- ``bptt:reset``: the same with the reset differentiated (``reset_grad=True``).

SuperSpike's block update is ``-g = grad_W L / t_b`` for the output layer (``superspike.py``,
"Output layer = gradient"), so scaled by ``t_b`` it equals the BPTT output gradient exactly when
the block starts with zero rule traces (the default ``rule_state``), no Hebbian delay and no
regulariser. Hidden layers differ: SuperSpike's error skips the output neurons' ``sigma'`` and PSP
filtering, and random/uniform feedback replaces ``W^T`` (feedback alignment).

Per layer ``l``, for updates ``a_l`` and ``b_l`` (:func:`alignment`):

    cosine         = <a_l, b_l> / (|a_l| |b_l|)      0 if either norm is 0
    norm_ratio     = |a_l| / |b_l|                   inf if only |b_l| = 0; 1 if both are 0
    sign_agreement = #{sign a = sign b} / #{a != 0 and b != 0}      0 if no entry is compared

so a zero update (``superspike:none``'s hidden layer) has cosine 0 and sign agreement 0 against
anything: it carries no direction. Nothing is ever NaN.

Reference: Zenke & Ganguli (2018), Neural Computation 30(6); Lillicrap et al. (2016), Nat.
Commun. 7:13276 (alignment of feedback-alignment updates with backprop).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import sys
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ssjax.network import Network, init_weights, simulate
from ssjax.plots import _save, plt
from ssjax.rules.bptt import bptt_grad, with_reset_grad
from ssjax.rules.feedback import FEEDBACKS, init_feedback
from ssjax.rules.superspike import SuperSpikeConfig, init_rule_state, superspike_grads
from ssjax.tasks.timing import timing_task

Array = jax.Array

RULES = tuple(f"superspike:{fb}" for fb in FEEDBACKS) + ("bptt", "bptt:reset")


class Alignment(NamedTuple):
    """Per-layer comparison of two updates; each field is ``[n_layers]``."""

    cosine: Array
    norm_ratio: Array
    sign_agreement: Array


def check_rule(rule: str) -> None:
    """Raise ValueError naming ``rule`` and listing :data:`RULES` if it is not one of them."""
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; choose from {', '.join(RULES)}")


def _layer_alignment(a: Array, b: Array) -> tuple[Array, Array, Array]:
    # dividing by the largest entry first keeps float32 norms of tiny gradients from underflowing
    ma, mb = jnp.max(jnp.abs(a)), jnp.max(jnp.abs(b))
    a_n = a / jnp.where(ma > 0, ma, 1.0)
    b_n = b / jnp.where(mb > 0, mb, 1.0)
    na, nb = jnp.sqrt(jnp.sum(a_n * a_n)), jnp.sqrt(jnp.sum(b_n * b_n))
    both = (ma > 0) & (mb > 0)
    cos = jnp.where(both, jnp.sum(a_n * b_n) / jnp.where(both, na * nb, 1.0), 0.0)
    norm_a, norm_b = ma * na, mb * nb
    ratio = jnp.where(
        mb > 0, norm_a / jnp.where(mb > 0, norm_b, 1.0), jnp.where(ma > 0, jnp.inf, 1.0)
    )
    compared = (a != 0) & (b != 0)
    n = jnp.sum(compared)
    agree = jnp.sum(compared & (jnp.sign(a) == jnp.sign(b)))
    sign = jnp.where(n > 0, agree / jnp.maximum(n, 1), 0.0)
    return jnp.clip(cos, -1.0, 1.0), ratio, sign.astype(cos.dtype)


@jax.jit
def alignment(a: tuple, b: tuple) -> Alignment:
    """Cosine, norm ratio ``|a|/|b|`` and sign agreement of two updates, per layer.

    ``a``, ``b``: tuples of arrays with matching shapes (e.g. per-layer ``[N_pre, N_post]``).
    Conventions for zero norms are in the module docstring; the result is never NaN.
    """
    if len(a) != len(b):
        raise ValueError(f"a and b must have the same number of layers, got {len(a)}, {len(b)}")
    for l, (x, y) in enumerate(zip(a, b, strict=True)):
        if x.shape != y.shape:  # broadcasting would silently compare the wrong entries
            raise ValueError(f"layer {l}: shapes {tuple(x.shape)} and {tuple(y.shape)} differ")
    per = [_layer_alignment(x, y) for x, y in zip(a, b, strict=True)]
    return Alignment(*(jnp.stack(col) for col in zip(*per, strict=True)))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _superspike_bptt_units(net, cfg, weights, feedback, inputs, targets, state):
    grads, _, _ = superspike_grads(net, cfg, weights, feedback, inputs, targets, state)
    t_b = inputs.shape[0] * net.neuron.dt
    return tuple(g * t_b for g in grads)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _bptt(net, tau_rise, tau_decay, weights, inputs, targets, state, err_state):
    grads, _ = bptt_grad(
        net, weights, inputs, targets, state, err_state, tau_rise=tau_rise, tau_decay=tau_decay
    )
    return grads


def rule_grads(
    rule: str, net: Network, weights, inputs, targets, *, key, rule_state=None, cfg_kwargs=None
) -> tuple:
    """Update of one block by ``rule`` (one of :data:`RULES`), in BPTT units and optax sign.

    Args:
      net: static network; weights: per-layer ``[N_pre, N_post]`` (V).
      inputs: ``[K, N_in]``; targets: ``[K, N_out]`` (one sample, time-major).
      key: draws the ``random`` feedback matrices (:func:`init_feedback`).
      rule_state: ``RuleState`` carried in; defaults to :func:`init_rule_state` (zero traces,
        resting network). Its ``.net`` and ``.err`` are BPTT's network and error-filter states.
      cfg_kwargs: further :class:`SuperSpikeConfig` fields; its ``tau_rise``/``tau_decay`` are
        also BPTT's error filter, so both rules minimise the same loss.

    Returns:
      tuple like ``weights``: ``grad_W L`` for BPTT, ``t_b x`` the SuperSpike update otherwise.
    """
    check_rule(rule)
    if inputs.ndim != 2 or targets.ndim != 2:
        raise ValueError(
            "inputs and targets must be one sample [K, N], got shapes "
            f"{tuple(inputs.shape)} and {tuple(targets.shape)}"
        )
    kind, _, variant = rule.partition(":")
    cfg_kwargs = dict(cfg_kwargs or {})
    if kind == "superspike":
        cfg = SuperSpikeConfig(feedback=variant, **cfg_kwargs)
    else:
        cfg = SuperSpikeConfig(**cfg_kwargs)
    if rule_state is None:
        rule_state = init_rule_state(net, cfg, weights[0].dtype)
    weights = tuple(weights)
    if kind == "superspike":
        feedback = init_feedback(key, net, variant, weights[0].dtype)
        return _superspike_bptt_units(net, cfg, weights, feedback, inputs, targets, rule_state)
    bnet = with_reset_grad(net, variant == "reset")
    grads = _bptt(
        bnet, cfg.tau_rise, cfg.tau_decay, weights, inputs, targets, rule_state.net, rule_state.err
    )
    return tuple(grads)


def compare_rules(
    rules, net: Network, weights, inputs, targets, *, key, rule_state=None, cfg_kwargs=None
) -> dict[tuple[str, str], Alignment]:
    """:func:`alignment` of every pair ``(a, b)``, ``a`` listed before ``b`` in ``rules``.

    Every rule gets the same ``net``, ``weights``, block, ``key`` and ``rule_state`` (see
    :func:`rule_grads`); ``n`` distinct rules give ``n (n - 1) / 2`` pairs.
    """
    rules = tuple(rules)
    for r in rules:
        check_rule(r)
    if len(set(rules)) != len(rules) or len(rules) < 2:
        raise ValueError(f"rules must be at least two distinct names, got {rules}")
    grads = {
        r: rule_grads(
            r, net, weights, inputs, targets, key=key, rule_state=rule_state, cfg_kwargs=cfg_kwargs
        )
        for r in rules
    }
    return {(a, b): alignment(grads[a], grads[b]) for a, b in itertools.combinations(rules, 2)}


def _names(results, layer_names):
    n_layers = len(next(iter(results.values())).cosine)
    if layer_names is None:
        return [f"W[{l}]" for l in range(n_layers)]
    if len(layer_names) != n_layers:
        raise ValueError(f"layer_names needs {n_layers} entries, got {len(layer_names)}")
    return list(layer_names)


def format_table(results, layer_names=None) -> str:
    """Plain-text table: one row per pair and layer with cosine, norm ratio, sign agreement."""
    names = _names(results, layer_names)
    pairs = [f"{a} vs {b}" for a, b in results]
    wp, wl = max(len(p) for p in pairs + ["pair"]), max(len(n) for n in names + ["layer"])
    head = f"{'pair':<{wp}}  {'layer':<{wl}}  {'cosine':>8}  {'norm ratio':>10}  {'sign agr.':>9}"
    lines = [head, "-" * len(head)]
    for pair, res in zip(pairs, results.values(), strict=True):
        cos, ratio, sign = (np.asarray(x) for x in res)
        for l, name in enumerate(names):
            lines.append(
                f"{pair:<{wp}}  {name:<{wl}}  {cos[l]:>+8.4f}  {ratio[l]:>10.4g}  {sign[l]:>9.3f}"
            )
    return "\n".join(lines)


def plot_alignment(results, path, layer_names=None) -> str:
    """Grouped bar chart of the cosine per pair (groups) and layer (bars); writes a PNG."""
    names = _names(results, layer_names)
    cos = np.array([np.asarray(r.cosine) for r in results.values()])  # [pairs, layers]
    n_pairs, n_layers = cos.shape
    width = 0.8 / n_layers
    x = np.arange(n_pairs)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * n_pairs + 2.0), 4.5))
    for l, name in enumerate(names):
        ax.bar(x + (l - (n_layers - 1) / 2) * width, cos[:, l], width, label=name)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xticks(x)
    ax.set_xticklabels([f"{a}\nvs {b}" for a, b in results], rotation=60, ha="right", fontsize=7)
    ax.set_ylim(-1.05, 1.05)
    ax.set_ylabel("cosine similarity")
    ax.set_title("update alignment per layer (same state and block)")
    ax.legend(fontsize=8)
    return _save(fig, path)


_CLI_DOC = """Gradient vs local rule: per-layer alignment of SuperSpike and BPTT updates on a block.

Usage: ``ssjax compare [--sizes 100 4 1] [--seed 0] [--rules R ...] [--out DIR]
[--gain 3.0] [--periods 1]``. Builds the timing task of the paper's Fig. 2 (every output unit
gets the same target) and draws weights ``gain x`` the reference initialisation, clipped to the
weight bounds and redrawn (up to 20 times) until every layer spikes in the block. From the
resting network it computes every rule's update on one block of ``periods`` pattern periods
(0.5 s each), prints the table and writes ``DIR/alignment.png``. Exit code 2 for an unknown
rule name.
"""

MAX_DRAWS = 20


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="ssjax compare", description=_CLI_DOC, formatter_class=argparse.RawTextHelpFormatter
    )
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 4, 1], help="N_in ... N_out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rules", nargs="+", default=list(RULES), help=f"any of {', '.join(RULES)}")
    ap.add_argument("--out", default="runs/compare", help="folder for alignment.png")
    ap.add_argument("--gain", type=float, default=3.0, help="factor on the initial weights")
    ap.add_argument("--periods", type=int, default=1, help="pattern periods in the block")
    args = ap.parse_args(argv)
    for r in args.rules:
        if r not in RULES:
            ap.error(f"unknown rule {r!r}; choose from {', '.join(RULES)}")
    if len(set(args.rules)) != len(args.rules) or len(args.rules) < 2:
        ap.error(f"--rules needs at least two distinct names, got {args.rules}")
    if len(args.sizes) < 2 or min(args.sizes) < 1 or args.periods < 1:
        ap.error("--sizes needs >= 2 positive integers and --periods must be >= 1")

    net = Network(tuple(args.sizes))
    k_task, k_w, k_fb = jax.random.split(jax.random.PRNGKey(args.seed), 3)
    task = timing_task(k_task, n_in=net.sizes[0], n_out=net.sizes[-1], dt=net.neuron.dt)
    inputs = jnp.tile(task.inputs, (args.periods, 1))
    targets = jnp.tile(task.targets, (args.periods, 1))
    # the output's few incoming weights decide by their signs alone whether it fires at all, so
    # redraw (same distribution) until every layer spikes: a silent layer makes a dull comparison
    for draw in range(MAX_DRAWS):
        weights = tuple(
            jnp.clip(args.gain * w, net.w_min, net.w_max)
            for w in init_weights(net, jax.random.fold_in(k_w, draw))
        )
        _, rec = simulate(net, weights, inputs)
        counts = [int(s.sum()) for s in rec.spikes]
        if min(counts) > 0:
            break
    print(
        f"network {net.sizes}, seed {args.seed}, gain {args.gain}, weight draw {draw}, block "
        f"{inputs.shape[0] * net.neuron.dt:g} s; spikes per layer: {counts}"
    )
    if min(counts) == 0:
        print(
            f"warning: a layer stayed silent in {MAX_DRAWS} weight draws; try a larger --gain",
            file=sys.stderr,
        )

    results = compare_rules(args.rules, net, weights, inputs, targets, key=k_fb)
    names = [
        f"{'output' if l == net.n_layers - 1 else f'hidden {l + 1}'} ({a}x{b})"
        for l, (a, b) in enumerate(zip(net.sizes[:-1], net.sizes[1:], strict=True))
    ]
    print(format_table(results, names))
    path = plot_alignment(results, os.path.join(args.out, "alignment.png"), names)
    print(f"wrote {path}")
    return 0
