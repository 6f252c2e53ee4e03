"""ssjax.nir_io: an exported NIR graph, run by an independent numpy simulator of the graph's
semantics (the discretisation the module's docstring states), spikes as ssjax's; round trips
(in memory and through nir.write/nir.read) give equal parameters, identical weights and spikes;
controls: a changed tau_mem changes the spikes; refusals name the parameter."""

import importlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

nir = pytest.importorskip("nir")

from ssjax.network import Network, init_weights, simulate  # noqa: E402
from ssjax.neuron import LIFParams  # noqa: E402
from ssjax.neurons import ALIFParams  # noqa: E402
from ssjax.nir_io import from_nir, to_nir  # noqa: E402
from ssjax.spike import Surrogate  # noqa: E402

DT = 5e-4
NETS = {
    "feedforward": Network((16, 10, 4), LIFParams(tau_ref=0.0, dt=DT, integrator="exact")),
    "recurrent_delays": Network(
        (16, 10, 8, 4),
        LIFParams(tau_ref=0.0, dt=DT, delay=2 * DT, integrator="exact"),
        recurrent=(True, True),
        recurrent_delay=3 * DT,
    ),
    "recurrent_euler": Network(
        (16, 10, 8, 4),
        LIFParams(tau_ref=0.0, dt=DT, integrator="euler", theta=-0.052, u_reset=-0.065),
        recurrent=(True, False),
        recurrent_delay=DT,
    ),
}


_sim = jax.jit(simulate, static_argnums=0)


def _data(net, dtype=jnp.float32, seed=0, steps=400):
    """Weights scaled so that every layer spikes; Poisson inputs at 60 Hz, batch 2."""
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    w = init_weights(net, k1, dtype)
    ff, rec = w[: net.n_layers], w[net.n_layers :]
    w = tuple(0.3 * a + 0.004 for a in ff) + tuple(0.3 * a for a in rec)
    x = (jax.random.uniform(k2, (steps, 2, net.sizes[0])) < 60.0 * DT).astype(dtype)
    return w, x


# an independent simulator of the graph: nodes and edges as NIR defines them, stepped with dt


def _size(node) -> int:
    if isinstance(node, nir.Linear | nir.Affine):
        return node.weight.shape[0]
    if isinstance(node, nir.Delay):
        return node.delay.size
    if isinstance(node, nir.CubaLIF):
        return node.tau_mem.size
    return int(np.prod(node.output_type["output"]))


def _order(graph):
    """Nodes in the order of a step and the edges closing a cycle (found by a DFS from the
    input: an edge into a node still on the DFS path), whose signal is the previous step's."""
    succ: dict[str, list[str]] = {k: [] for k in graph.nodes}
    for a, b in graph.edges:
        succ[a].append(b)
    back, state = set(), {}

    def dfs(k):
        state[k] = "open"
        for b in succ[k]:
            if state.get(b) == "open":
                back.add((k, b))
            elif b not in state:
                dfs(b)
        state[k] = "done"

    for k, n in graph.nodes.items():
        if isinstance(n, nir.Input):
            dfs(k)
    indeg = {k: 0 for k in graph.nodes}
    for a, b in graph.edges:
        if (a, b) not in back:
            indeg[b] += 1
    order, ready = [], [k for k, d in indeg.items() if d == 0]
    while ready:
        k = ready.pop()
        order.append(k)
        for b in succ[k]:
            if (k, b) not in back:
                indeg[b] -= 1
                if indeg[b] == 0:
                    ready.append(b)
    assert len(order) == len(graph.nodes)
    return order, back


def simulate_graph(graph, inputs: np.ndarray, integrator: str):
    """Run ``graph`` on ``inputs`` ``[T, B, N_in]`` (0/1 spikes per step) in float64; returns
    per CubaLIF node its spikes and its potential before the reset, ``[T, B, N]``.

    A CubaLIF step: the input spikes are deltas at the step's start (I += w_in/tau_syn * y),
    then tau_mem dv/dt = v_leak - v + r I over dt, with I(s) = I e^{-s/tau_syn}: exactly, or
    forward Euler on v; v > v_threshold spikes and resets; I decays exactly.
    """
    dt = float(graph.metadata["dt"])
    order, back = _order(graph)
    preds: dict[str, list[str]] = {k: [] for k in graph.nodes}
    for a, b in graph.edges:
        preds[b].append(a)
    batch = inputs.shape[1]
    prev = {k: np.zeros((batch, _size(n))) for k, n in graph.nodes.items()}
    state: dict = {}
    for k, n in graph.nodes.items():
        if isinstance(n, nir.CubaLIF):
            state[k] = [np.broadcast_to(n.v_leak, (batch, n.v_leak.size)).copy(), 0.0 * prev[k]]
        elif isinstance(n, nir.Delay):
            steps = int(round(float(n.delay.flat[0]) / dt))
            state[k] = [np.zeros((batch, n.delay.size)) for _ in range(steps)]
    rec = {k: ([], []) for k, n in graph.nodes.items() if isinstance(n, nir.CubaLIF)}
    for t in range(inputs.shape[0]):
        cur: dict[str, np.ndarray] = {}
        for k in order:
            n = graph.nodes[k]
            if isinstance(n, nir.Input):
                cur[k] = inputs[t].astype(np.float64)
                continue
            x = sum(prev[a] if (a, k) in back else cur[a] for a in preds[k])
            if isinstance(n, nir.Linear):
                cur[k] = x @ np.asarray(n.weight, np.float64).T
            elif isinstance(n, nir.Affine):
                cur[k] = x @ np.asarray(n.weight, np.float64).T + n.bias
            elif isinstance(n, nir.Delay):
                buf = state[k]
                buf.append(x)
                cur[k] = buf.pop(0)
            elif isinstance(n, nir.CubaLIF):
                v, i = state[k]
                i = i + n.w_in / n.tau_syn * x
                em, es = np.exp(-dt / n.tau_mem), np.exp(-dt / n.tau_syn)
                if integrator == "exact":
                    a, c = em, n.tau_syn / (n.tau_mem - n.tau_syn) * (em - es)
                else:
                    a, c = 1.0 - dt / n.tau_mem, dt / n.tau_mem
                v = n.v_leak + a * (v - n.v_leak) + c * (n.r * i)
                z = (v > n.v_threshold).astype(np.float64)
                rec[k][0].append(z)
                rec[k][1].append(v)
                state[k] = [np.where(z > 0, n.v_reset, v), i * es]
                cur[k] = z
            else:  # Output
                cur[k] = x
        prev = cur
    return {k: (np.stack(s), np.stack(u)) for k, (s, u) in rec.items()}


def _lif_nodes(graph):
    return sorted((k for k, n in graph.nodes.items() if isinstance(n, nir.CubaLIF)), key=len)


@pytest.mark.parametrize("name", ["recurrent_delays", "recurrent_euler"])
def test_independent_graph_simulator_reproduces_ssjax(name):
    net = NETS[name]
    with jax.enable_x64(True):
        w, x = _data(net, jnp.float64)
        _, rec = simulate(net, w, x)
        rec = jax.tree.map(np.asarray, rec)
        graph = to_nir(net, w)
        got = simulate_graph(graph, np.asarray(x), net.neuron.integrator)
    lifs = [f"lif_{l}" for l in range(1, net.n_layers + 1)]
    assert sorted(got) == sorted(lifs)
    for l, k in enumerate(lifs):
        s, u = got[k]
        assert rec.spikes[l].sum() >= 20, f"layer {k} barely spikes: a vacuous comparison"
        np.testing.assert_array_equal(s, rec.spikes[l], err_msg=k)
        # same spike times; potentials to float64 rounding (measured <= 5e-17 V: a few ulp)
        np.testing.assert_allclose(u, rec.u[l], rtol=0, atol=1e-15, err_msg=k)


def test_changing_tau_mem_in_the_graph_changes_the_spikes():
    net = NETS["recurrent_delays"]
    with jax.enable_x64(True):
        w, x = _data(net, jnp.float64)
        _, rec = simulate(net, w, x)
        graph = to_nir(net, w)
        for k in _lif_nodes(graph):
            graph.nodes[k].tau_mem = graph.nodes[k].tau_mem * 1.2
        got = simulate_graph(graph, np.asarray(x), "exact")
        net2, w2 = from_nir(graph)
        _, rec2 = simulate(net2, w2, x)
    assert net2.neuron.tau_mem == pytest.approx(1.2 * net.neuron.tau_mem)
    assert not np.array_equal(got["lif_1"][0], np.asarray(rec.spikes[0]))
    np.testing.assert_array_equal(got["lif_3"][0], np.asarray(rec2.spikes[2]))


@pytest.mark.parametrize("name", ["feedforward", "recurrent_delays"])
def test_round_trip_gives_equal_parameters_weights_and_spikes(name, tmp_path):
    net = NETS[name]
    net = Network(
        net.sizes,
        LIFParams(
            **{**vars(net.neuron), "surrogate": Surrogate("sigmoid", 250.0), "reset_grad": True}
        ),
        w0=0.1,
        w_min=-0.3,
        w_max=0.4,
        recurrent=net.recurrent,
        recurrent_delay=net.recurrent_delay,
    )
    w, x = _data(net)
    path = tmp_path / "net.nir"
    nir.write(path, to_nir(net, w))
    for graph in (to_nir(net, w), nir.read(path)):
        net2, w2 = from_nir(graph)
        assert net2 == net
        assert len(w2) == len(w)
        for a, b in zip(w, w2, strict=True):
            assert b.dtype == a.dtype
            np.testing.assert_array_equal(np.asarray(b), np.asarray(a))
        # net2 == net: one compiled program; the imported weights are its data
        s1, s2 = _sim(net, w, x)[1].spikes, _sim(net2, w2, x)[1].spikes
        for a, b in zip(s1, s2, strict=True):
            assert np.asarray(a).sum() > 0
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_graph_layout_and_metadata():
    net = NETS["recurrent_delays"]
    w, _ = _data(net)
    g = to_nir(net, w)
    assert g.metadata["dt"] == DT
    assert set(g.nodes) == {
        "input",
        "output",
        *(f"delay_{l}" for l in range(3)),
        *(f"fc_{l}" for l in (1, 2, 3)),
        *(f"lif_{l}" for l in (1, 2, 3)),
        "rec_delay_1",
        "rec_delay_2",
        "rec_1",
        "rec_2",
    }
    assert ("rec_1", "lif_1") in g.edges and ("lif_1", "rec_delay_1") in g.edges
    np.testing.assert_array_equal(g.nodes["fc_2"].weight, np.asarray(w[1]).T)
    np.testing.assert_array_equal(g.nodes["rec_2"].weight, np.asarray(w[4]).T)
    np.testing.assert_array_equal(g.nodes["delay_0"].delay, np.full(16, 2 * DT))
    np.testing.assert_array_equal(g.nodes["rec_delay_1"].delay, np.full(10, 3 * DT - DT))
    lif = g.nodes["lif_2"]
    p = net.neuron
    for field, value in [
        ("tau_mem", p.tau_mem),
        ("tau_syn", p.tau_syn),
        ("r", 1.0),
        ("v_leak", p.u_rest),
        ("v_threshold", p.theta),
        ("v_reset", p.u_reset),
        ("w_in", p.tau_syn),
    ]:
        np.testing.assert_array_equal(getattr(lif, field), np.full(8, value), err_msg=field)


def test_refractory_period_is_refused_unless_dropped():
    net = Network((6, 3), LIFParams(tau_ref=2e-3))
    w = init_weights(net, jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match=r"tau_ref=0.002.*drop_unsupported=True"):
        to_nir(net, w)
    with pytest.warns(UserWarning, match="tau_ref"):
        graph = to_nir(net, w, drop_unsupported=True)
    net2, _ = from_nir(graph)
    assert net2.neuron.tau_ref == 0.0
    assert net2.neuron == LIFParams(tau_ref=0.0)


def test_models_without_a_nir_node_are_refused_by_name():
    net = Network((6, 3), ALIFParams(tau_ref=0.0))
    w = init_weights(net, jax.random.PRNGKey(0))
    with pytest.raises(TypeError, match="beta_a"):
        to_nir(net, w, drop_unsupported=True)
    net = Network((6, 3), LIFParams(tau_ref=0.0, surrogate=Surrogate(forward="sigmoid")))
    with pytest.raises(ValueError, match="surrogate.forward"):
        to_nir(net, w)
    with pytest.raises(ValueError, match="shapes"):
        to_nir(Network((6, 3), LIFParams(tau_ref=0.0)), w[:0])


def _graph():
    net = NETS["feedforward"]
    w, _ = _data(net)
    return net, w, to_nir(net, w)


def test_import_refuses_what_ssjax_cannot_hold():
    _, _, g = _graph()
    g.nodes["lif_1"].tau_mem = np.linspace(0.01, 0.02, 10)
    with pytest.raises(ValueError, match="'lif_1' tau_mem must be one value"):
        from_nir(g)
    _, _, g = _graph()
    g.nodes["lif_2"].v_threshold = g.nodes["lif_2"].v_threshold + 1e-3
    with pytest.raises(ValueError, match="v_threshold differs between layers"):
        from_nir(g)
    _, _, g = _graph()
    g.nodes["fc_1"] = nir.Affine(g.nodes["fc_1"].weight, np.full(10, 0.1))
    with pytest.raises(ValueError, match="'fc_1'.*bias"):
        from_nir(g)
    _, _, g = _graph()
    g.nodes["lif_1"] = nir.LIF(**{k: np.ones(10) for k in ("tau", "r", "v_leak", "v_threshold")})
    with pytest.raises(ValueError, match="'lif_1' is a LIF"):
        from_nir(g)
    _, _, g = _graph()
    g.metadata = {}
    with pytest.raises(ValueError, match="'dt'"):
        from_nir(g)
    net2, _ = from_nir(g, dt=DT)
    assert net2.neuron.dt == DT and net2.neuron.integrator == "exact"


def test_a_foreign_graph_scales_weights_by_r_w_in_over_tau_syn():
    net, w, g = _graph()
    g.nodes["fc_2"] = nir.Affine(g.nodes["fc_2"].weight, np.zeros(4))
    g.nodes["lif_2"].r = np.full(4, 2.0)
    g.nodes["lif_2"].w_in = np.full(4, 1.0)
    net2, w2 = from_nir(g)
    np.testing.assert_array_equal(np.asarray(w2[0]), np.asarray(w[0]))
    np.testing.assert_allclose(
        np.asarray(w2[1]), np.asarray(w[1]) * 2.0 / net.neuron.tau_syn, rtol=1e-6
    )


def test_importing_ssjax_does_not_import_nir():
    code = (
        "import sys, ssjax; ssjax.Network; print('nir' in sys.modules); "
        "ssjax.to_nir; print('nir' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]  # the control: the name loads it


def test_without_nir_the_import_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "nir", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "ssjax.nir_io")
    with pytest.raises(ImportError, match=r"pip install 'ssjax\[nir\]'"):
        importlib.import_module("ssjax.nir_io")
