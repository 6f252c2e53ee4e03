"""Export an ssjax network to a NIR graph and import it back (the Neuromorphic Intermediate
Representation, ``nir`` >= 1.0.8: ``pip install 'ssjax[nir]'``).

**The graph.** A :class:`ssjax.network.Network` of LIF layers with weights ``W[l]`` becomes

    input -> [delay_0] -> fc_1 -> lif_1 -> [delay_1] -> fc_2 -> lif_2 ... -> lif_L -> output
    lif_l -> [rec_delay_l] -> rec_l -> lif_l          (recurrent hidden layer l)

with ``nir.Linear`` nodes ``fc_l`` (``weight = W[l-1].T``, ``[N_post, N_pre]``, V) and ``rec_l``
(``weight = R.T``), one ``nir.CubaLIF`` node ``lif_l`` per layer and ``nir.Delay`` nodes where
ssjax has delays. NIR's CubaLIF is the ODE (spikes ``S(t) = sum_k delta(t - t_k)``, in 1/s)

    tau_syn dI/dt = -I + w_in (W S),    tau_mem dv/dt = (v_leak - v) + r I,
    v > v_threshold  =>  spike, v <- v_reset,

and ssjax's LIF (:mod:`ssjax.neuron`) is ``tau_mem dU/dt = (U_rest - U) + I`` with ``I`` in
volts jumping by ``w`` per presynaptic spike, so the parameters map one to one:

    ======================  ===========================  ========================================
    ssjax                   NIR                          why
    ======================  ===========================  ========================================
    ``W[l]`` [pre, post]    ``Linear.weight = W.T``      NIR weights are [out, in]
    ``R`` (recurrent)       ``Linear.weight = R.T``      on the edge lif_l -> rec_l -> lif_l
    ``tau_mem``, ``tau_syn``  ``tau_mem``, ``tau_syn``   (s)
    ``u_rest``              ``v_leak``                   (V)
    ``theta``               ``v_threshold``              (V), strict ``>`` in both
    ``u_reset``             ``v_reset``                  (V)
    (``I`` in volts)        ``r = 1``                    the current is the depolarisation
    (``I += w`` per spike)  ``w_in = tau_syn``           a delta raises ``I`` by ``w_in w/tau_syn``
    ``delay`` (axonal)      ``Delay(delay)`` before      on every feed-forward edge, input's too
                            each ``fc_l``
    ``recurrent_delay``     ``Delay(recurrent_delay -    the cycle itself is one step (below)
                            dt)`` before ``rec_l``
    ``dt``                  ``graph.metadata["dt"]``     NIR's nodes are continuous
    ======================  ===========================  ========================================

``graph.metadata["ssjax"]`` keeps what NIR has no field for and the forward dynamics do not read
(``integrator``, ``reset_grad``, the surrogate, ``w0``, ``w_min``, ``w_max``), so that a round
trip returns equal parameters; the graph's nodes are the truth for everything in the table.

**The discretisation that reproduces ssjax exactly.** Run the graph in steps of ``dt``: each
step, the nodes in topological order (feed-forward edges carry this step's output, the edge that
closes a cycle carries the previous step's; a ``Delay(tau)`` is a shift by ``tau / dt`` steps;
inputs arriving at a node are summed). A CubaLIF node's step from ``(v, I)``, with ``y = W S``
the summed spike input of this step (each spike a delta at the step's start):

    I+ = I + (w_in / tau_syn) y                                            (the deltas)
    v' = v_leak + a (v - v_leak) + c r I+                                  (integrate over dt)
    z = H(v' - v_threshold),  v' <- v_reset where z,  I <- I+ exp(-dt/tau_syn)

with, for ``integrator="exact"``, the exact solution of the ODE over the step,
``a = exp(-dt/tau_mem)`` and ``c = tau_syn/(tau_mem - tau_syn) (exp(-dt/tau_mem) -
exp(-dt/tau_syn))`` (``dt/tau_mem exp(-dt/tau_mem)`` if equal); for ``integrator="euler"`` (the
reference code's) forward Euler on the membrane, ``a = 1 - dt/tau_mem``, ``c = dt/tau_mem``, and
the synaptic decay exact. These are ssjax's steps 1-4 (:meth:`ssjax.neuron.LIFParams.
membrane_coeffs`), so this scheme and :func:`ssjax.network.simulate` give the same spikes
(``tests/test_nir_io.py`` checks it with a numpy simulator of the graph). In continuous time,
with ``integrator="exact"``, this is NIR's ODE solved exactly with the threshold tested on the
``dt`` grid: the input's spikes of step ``t`` are deltas at ``t dt`` and layer ``l``'s step
``t`` spans ``[(t + l - 1) dt, (t + l) dt]``, its spikes at ``(t + l) dt`` (a layer's steps
start when the spikes that end the step of the layer below arrive). ssjax's axonal ``delay``
is then NIR's delay of the feed-forward edges, and its recurrent delay of ``d_r`` steps a loop
delay of ``(d_r - 1) dt``, as exported.

**Not expressible.** NIR's CubaLIF has no refractory period: a network with ``tau_ref > 0`` is
refused (naming ``tau_ref``) unless ``drop_unsupported=True``, which exports it without one and
warns. The adaptive threshold of :class:`ssjax.neurons.alif.ALIFParams` (``beta_a``, ``tau_a``)
and the smooth spike (``surrogate.forward = "sigmoid"``) have no NIR node and are always
refused.

Reference: Pedersen et al. (2024), "Neuromorphic intermediate representation: a unified
instruction set for interoperable brain-inspired computing", Nature Communications 15:8122.
"""

from __future__ import annotations

import warnings
from typing import Any

import jax.numpy as jnp
import numpy as np

try:
    import nir
except ImportError as err:  # an optional extra: say which
    raise ImportError("ssjax.nir_io needs the nir package: pip install 'ssjax[nir]'") from err

from ssjax._types import Weights
from ssjax.network import Network
from ssjax.neuron import INTEGRATORS, LIFParams
from ssjax.neurons.alif import ALIFParams
from ssjax.spike import Surrogate

__all__ = ["from_nir", "to_nir"]

# metadata["ssjax"] keys: what the forward ODE does not read, restored on import
_NETWORK_META = ("w0", "w_min", "w_max")
_NEURON_META = ("integrator", "reset_grad")
_SURROGATE_META = ("kind", "beta", "v_floor")
_CUBALIF = {  # NIR field -> LIFParams field
    "tau_mem": "tau_mem",
    "tau_syn": "tau_syn",
    "v_leak": "u_rest",
    "v_threshold": "theta",
    "v_reset": "u_reset",
}
_EDGE_NODES = (nir.Linear, nir.Affine, nir.Delay)


def to_nir(net: Network, weights: Weights, *, drop_unsupported: bool = False) -> nir.NIRGraph:
    """The NIR graph of ``net`` with ``weights`` (the mapping in the module docstring).

    Args:
      net: a network of :class:`ssjax.neuron.LIFParams` neurons (ALIF is refused).
      weights: ``net.weight_shapes()`` arrays (V), feed-forward then recurrent; stored in their
        own dtype.
      drop_unsupported: export a refractory period (``neuron.tau_ref > 0``) as none, with a
        warning, instead of raising.

    Returns:
      a ``nir.NIRGraph`` with ``metadata["dt"]`` (s) and ``metadata["ssjax"]``.
    """
    p = _check_exportable(net.neuron, drop_unsupported)
    shapes = net.weight_shapes()
    if len(weights) != len(shapes) or any(
        tuple(np.shape(w)) != s for w, s in zip(weights, shapes, strict=False)
    ):
        got = [tuple(np.shape(w)) for w in weights]
        raise ValueError(f"weights must have the shapes {list(shapes)}, got {got}")
    ws = [np.asarray(w) for w in weights]
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(np.array([net.sizes[0]]))}
    edges: list[tuple[str, str]] = []
    pre = "input"
    for l in range(1, net.n_layers + 1):
        src = pre
        if p.delay > 0:
            src = _add(nodes, edges, src, f"delay_{l - 1}", _delay(p.delay, net.sizes[l - 1]))
        _add(nodes, edges, src, f"fc_{l}", nir.Linear(ws[l - 1].T.copy()))
        _add(nodes, edges, f"fc_{l}", f"lif_{l}", _cubalif(p, net.sizes[l]))
        pre = f"lif_{l}"
    for k, l in enumerate(net.recurrent_layers, start=1):
        n, src = net.sizes[l + 1], f"lif_{l + 1}"
        if net.recurrent_steps > 1:  # the cycle itself is one step
            src = _add(
                nodes, edges, src, f"rec_delay_{l + 1}", _delay(net.recurrent_delay - p.dt, n)
            )
        _add(nodes, edges, src, f"rec_{l + 1}", nir.Linear(ws[net.n_layers + k - 1].T.copy()))
        edges.append((f"rec_{l + 1}", f"lif_{l + 1}"))
    _add(nodes, edges, pre, "output", nir.Output(np.array([net.sizes[-1]])))
    meta: dict[str, Any] = {k: getattr(net, k) for k in _NETWORK_META}
    meta.update({k: getattr(p, k) for k in _NEURON_META})
    meta.update({f"surrogate_{k}": getattr(p.surrogate, k) for k in _SURROGATE_META})
    meta["recurrent"] = np.asarray(net.recurrent, bool)  # () and all-False both round-trip
    meta["recurrent_delay"] = net.recurrent_delay
    return nir.NIRGraph(nodes, edges, metadata={"dt": p.dt, "ssjax": meta})


def from_nir(graph: nir.NIRGraph, *, dt: float | None = None) -> tuple[Network, Weights]:
    """The ssjax ``(Network, weights)`` of a NIR graph of CubaLIF layers (inverse of
    :func:`to_nir`; graphs from other tools too, the same shape of graph).

    Accepted: one ``Input``, one ``Output``, between successive CubaLIF nodes (and from the input)
    one ``Linear`` (or ``Affine`` with zero bias) with optional ``Delay`` nodes, recurrent loops
    ``lif_l -> [Delay] -> Linear -> lif_l`` on hidden layers. ssjax's neurons share their
    parameters, so every CubaLIF entry must hold the same ``tau_mem``, ``tau_syn``, ``v_leak``,
    ``v_threshold`` and ``v_reset``; a neuron's ``r w_in / tau_syn`` scales its incoming weights
    (1 for :func:`to_nir`'s graphs, whose weights come back unchanged).

    Args:
      graph: the ``nir.NIRGraph`` (e.g. ``nir.read(path)``).
      dt: the time step (s) if ``graph.metadata`` has no ``"dt"``; it must agree if both do.

    Returns:
      ``(net, weights)``, the weights as jax arrays in the graph's dtype.
    """
    meta = dict(graph.metadata or {})
    extra = dict(meta.get("ssjax", {}))
    dt = _resolve_dt(meta, dt)
    inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    outputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(
            f"NIR graph: expected one Input and one Output node, got inputs {inputs} and "
            f"outputs {outputs}"
        )
    for name, node in graph.nodes.items():
        if not isinstance(node, (nir.Input, nir.Output, nir.CubaLIF, *_EDGE_NODES)):
            raise ValueError(
                f"NIR graph: node {name!r} is a {type(node).__name__}; ssjax imports Input, "
                "Linear, Affine (zero bias), Delay, CubaLIF and Output nodes"
            )
    out_edges: dict[str, list[str]] = {k: [] for k in graph.nodes}
    in_edges: dict[str, list[str]] = {k: [] for k in graph.nodes}
    for a, b in graph.edges:
        out_edges[a].append(b)
        in_edges[b].append(a)

    def chain(start: str, first: str) -> tuple[str, np.ndarray, float]:
        # the Linear/Affine and Delay nodes from `start` to the next neuron (or Output)
        name, linear, delay, seen = first, None, 0.0, []
        while isinstance(graph.nodes[name], _EDGE_NODES):
            node = graph.nodes[name]
            if len(out_edges[name]) != 1 or len(in_edges[name]) != 1:
                raise ValueError(f"NIR graph: node {name!r} must have one input and one output")
            if isinstance(node, nir.Delay):
                delay += _uniform(node.delay, name, "delay")
            elif linear is not None:
                raise ValueError(f"NIR graph: two weight nodes between {start!r} and {name!r}")
            else:
                linear = name
                if isinstance(node, nir.Affine) and np.any(np.asarray(node.bias) != 0):
                    raise ValueError(f"NIR graph: node {name!r}: ssjax has no bias (nonzero)")
            seen.append(name)
            name = out_edges[name][0]
        if linear is None:
            raise ValueError(f"NIR graph: no Linear/Affine node between {start!r} and {name!r}")
        visited.update(seen)
        return name, np.asarray(graph.nodes[linear].weight), delay

    visited = {inputs[0], outputs[0]}
    layers: list[str] = []
    ff: list[np.ndarray] = []
    ff_delays: list[float] = []
    rec: dict[int, tuple[np.ndarray, float]] = {}
    cur = inputs[0]
    while True:
        forward: list[tuple[str, np.ndarray | None, float]] = []
        for nxt in out_edges[cur]:
            if isinstance(graph.nodes[nxt], nir.Output):
                forward.append((nxt, None, 0.0))
                continue
            target, w, delay = chain(cur, nxt)
            if target == cur:
                if cur == inputs[0]:
                    raise ValueError("NIR graph: a loop on the Input node")
                rec[len(layers) - 1] = (w, delay)
            else:
                forward.append((target, w, delay))
        if len(forward) != 1:
            raise ValueError(
                f"NIR graph: node {cur!r} must feed exactly one next layer or the Output, feeds "
                f"{[f[0] for f in forward]}"
            )
        target, w_next, delay = forward[0]
        if w_next is None:
            break
        if not isinstance(graph.nodes[target], nir.CubaLIF) or target in layers:
            raise ValueError(f"NIR graph: {target!r} (after {cur!r}) is not a new CubaLIF layer")
        visited.add(target)
        layers.append(target)
        ff.append(w_next)
        ff_delays.append(delay)
        cur = target
    if cur == inputs[0]:
        raise ValueError("NIR graph: no CubaLIF layer between Input and Output")
    if set(graph.nodes) - visited:
        raise ValueError(
            f"NIR graph: nodes not on the network: {sorted(set(graph.nodes) - visited)}"
        )
    if len(layers) - 1 in rec:
        raise ValueError(f"NIR graph: the output layer {layers[-1]!r} is recurrent; ssjax's is not")

    cuba = [graph.nodes[k] for k in layers]
    values: dict[str, float] = {}
    for f in _CUBALIF:
        vals = {k: _uniform(getattr(n, f), k, f) for k, n in zip(layers, cuba, strict=True)}
        if len(set(vals.values())) != 1:
            raise ValueError(
                f"NIR graph: CubaLIF {f} differs between layers {vals}; ssjax's is one"
            )
        values[f] = next(iter(vals.values()))
    if len(set(ff_delays)) != 1:
        raise ValueError(f"NIR graph: feed-forward delays differ {ff_delays}; ssjax has one delay")
    sizes = (int(ff[0].shape[1]),) + tuple(int(w.shape[0]) for w in ff)
    for l, w in enumerate(ff):
        if w.ndim != 2 or w.shape[1] != sizes[l]:
            raise ValueError(f"NIR graph: weight of layer {l + 1} has shape {w.shape}")

    sur = Surrogate(
        **{
            k: _scalar(extra[f"surrogate_{k}"])
            for k in _SURROGATE_META
            if f"surrogate_{k}" in extra
        }
    )
    neuron_kw: dict[str, Any] = {k: _scalar(extra[k]) for k in _NEURON_META if k in extra}
    neuron_kw.setdefault("integrator", "exact")  # the exact solution of NIR's ODE
    if neuron_kw["integrator"] not in INTEGRATORS:
        raise ValueError(f"NIR graph: metadata ssjax.integrator {neuron_kw['integrator']!r}")
    neuron_kw.update({_CUBALIF[f]: values[f] for f in _CUBALIF})
    neuron = LIFParams(
        tau_ref=0.0,
        dt=dt,
        delay=ff_delays[0],
        surrogate=sur,
        **neuron_kw,
    )
    n_rec = len(sizes) - 2
    flags = tuple(l in rec for l in range(n_rec))
    stored = np.asarray(extra.get("recurrent", np.zeros(0, bool)), bool)
    if not any(flags) and stored.size == 0:
        flags = ()
    rec_delays = {rec[l][1] for l in rec}
    if len(rec_delays) > 1:
        raise ValueError(f"NIR graph: recurrent delays differ {sorted(rec_delays)}")
    # the graph's loop of (d_r - 1) dt is the truth; the stored value keeps its float exact
    rec_delay = float(_scalar(extra.get("recurrent_delay", dt)))
    if rec_delays:
        loop = next(iter(rec_delays))
        if round(rec_delay / dt) != round(loop / dt) + 1:
            rec_delay = loop + dt
    net = Network(
        sizes,
        neuron,
        recurrent=flags,
        recurrent_delay=rec_delay,
        **{k: _scalar(extra[k]) for k in _NETWORK_META if k in extra},
    )
    weights = [_scaled(w.T, cuba[l], layers[l]) for l, w in enumerate(ff)]
    weights += [_scaled(rec[l][0].T, cuba[l], layers[l]) for l in net.recurrent_layers]
    return net, tuple(jnp.asarray(w) for w in weights)


def _check_exportable(p: Any, drop_unsupported: bool) -> LIFParams:
    """``p`` if NIR's CubaLIF expresses it; else an error naming what it cannot."""
    if isinstance(p, ALIFParams):
        raise TypeError(
            "to_nir: ALIFParams' adaptive threshold (beta_a, tau_a) has no NIR node "
            "(NIR 1.0's neurons have a fixed v_threshold); export LIFParams networks"
        )
    if type(p) is not LIFParams:
        raise TypeError(f"to_nir: exports LIFParams neurons (NIR CubaLIF), got {type(p).__name__}")
    if p.smooth:
        raise ValueError(
            f"to_nir: neuron.surrogate.forward={p.surrogate.forward!r} (graded spikes) has no "
            "NIR node; NIR's CubaLIF spikes are H(v - v_threshold) (forward='heaviside')"
        )
    if p.tau_ref > 0:
        msg = f"neuron.tau_ref={p.tau_ref} s: NIR's CubaLIF has no refractory period"
        if not drop_unsupported:
            raise ValueError(f"to_nir: {msg}; pass drop_unsupported=True to export without it")
        warnings.warn(f"to_nir: {msg}; exported without it (drop_unsupported=True)", stacklevel=3)
    return p


def _add(nodes: dict, edges: list, src: str, name: str, node: nir.NIRNode) -> str:
    nodes[name] = node
    edges.append((src, name))
    return name


def _full(value: float, n: int) -> np.ndarray:
    return np.full(n, value, np.float64)


def _delay(value: float, n: int) -> nir.Delay:
    return nir.Delay(_full(value, n))


def _cubalif(p: LIFParams, n: int) -> nir.CubaLIF:
    return nir.CubaLIF(
        tau_syn=_full(p.tau_syn, n),
        tau_mem=_full(p.tau_mem, n),
        r=_full(1.0, n),
        v_leak=_full(p.u_rest, n),
        v_threshold=_full(p.theta, n),
        v_reset=_full(p.u_reset, n),
        w_in=_full(p.tau_syn, n),  # a delta of weight w raises I by w_in w / tau_syn = w
    )


def _uniform(value: Any, node: str, field: str) -> float:
    """The one value of a node's parameter (ssjax's are shared by all neurons)."""
    a = np.asarray(value, np.float64).ravel()
    if a.size == 0 or np.any(a != a[0]):
        raise ValueError(
            f"NIR graph: node {node!r} {field} must be one value for all neurons, got {a}"
        )
    return float(a[0])


def _scalar(v: Any) -> Any:
    """A metadata value read back from HDF5 (numpy scalar, bytes) as a plain Python value."""
    v = v.item() if isinstance(v, np.generic | np.ndarray) and np.ndim(v) == 0 else v
    return v.decode() if isinstance(v, bytes) else v


def _resolve_dt(meta: dict, dt: float | None) -> float:
    stored = meta.get("dt")
    if stored is None:
        if dt is None:
            raise ValueError("NIR graph: metadata has no 'dt'; pass from_nir(graph, dt=...) (s)")
        return float(dt)
    if dt is not None and float(stored) != float(dt):
        raise ValueError(f"from_nir: dt={dt} differs from the graph's metadata dt={stored}")
    return float(stored)


def _scaled(w: np.ndarray, node: nir.CubaLIF, name: str) -> np.ndarray:
    """``W`` ``[pre, post]`` scaled by each postsynaptic neuron's ``r w_in / tau_syn`` (the jump
    of ``r I`` per unit of input): unchanged where that is exactly 1."""
    scale = (
        np.asarray(node.r, np.float64)
        * np.asarray(node.w_in, np.float64)
        / np.asarray(node.tau_syn, np.float64)
    ).ravel()
    if scale.shape != (w.shape[1],):
        raise ValueError(f"NIR graph: node {name!r} has {scale.size} neurons, weights {w.shape}")
    if np.all(scale == 1.0):
        return w
    return (w * scale[None, :]).astype(w.dtype)
