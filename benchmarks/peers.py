"""Peer libraries' version of the SHD-like BPTT step of :mod:`benchmarks.bptt` (all optional).

Each peer builds the same model with its library's public API: a dense input projection applied
to all steps at once, the library's current-based LIF layer (tau_syn 5 ms, tau_mem 10 ms,
dt 1 ms, reset to rest, threshold 1 in units of the 10 mV threshold distance), a dense readout
projection and the library's non-spiking leaky integrator, cross-entropy of the readout's maximum
over time, Adam (lr 1e-3). Weights are the benchmark's, rescaled to each library's units so the
hidden layer fires at about the same rate (reported as ``hidden_rate``); the SuperSpike surrogate
has slope 10 where the library lets it be set.

- ``spyx`` (JAX, flax nnx): ``spyx.nn.CuBaLIF`` and ``spyx.nn.LI`` scanned by ``spyx.nn.run``;
  timed in this process like the JAX implementations (XLA compile time and memory).
- ``snntorch`` (``snn.Synaptic`` + ``snn.Leaky`` without reset) and ``norse``
  (``norse.torch.LIFCell`` + ``LIBoxCell``): PyTorch eager, stepped over ``cur.unbind(0)``, in a
  subprocess (``python -m benchmarks.peers``) with ``torch.set_num_threads(2)``. Peak memory is
  the highest running total of the allocations the profiler (``profile_memory=True``) sees
  during one step, i.e. what the step allocates besides parameters and inputs. (The sequence
  module ``norse.torch.LIF`` indexes its input ``x[t]`` per step; in eager PyTorch the backward
  of each such index fills a zero tensor of the whole ``[T, B, H]``, O(T^2) work: about 0.7 s
  instead of ~0.1 s per step here, so the cell is used.)

A peer that is not installed (or fails) gives a record with ``status`` saying why.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PEERS = ("spyx", "snntorch", "norse")
_DIST = {"spyx": "spyx", "snntorch": "snntorch", "norse": "norse"}
V_SCALE = 10e-3  # V: threshold distance (theta - U_rest); peers' voltages are in these units
SLOPE = 10.0  # surrogate slope in those units (ssjax beta = 1/mV)


def version(name: str) -> str | None:
    """Installed version of a distribution, or None."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def status(name: str) -> str:
    """``"installed <version>"`` or ``"not installed: <reason>"`` (imports the package)."""
    deps = {
        "spyx": ["spyx", "flax"],
        "snntorch": ["torch", "snntorch"],
        "norse": ["torch", "norse"],
    }
    for mod in deps[name]:
        try:
            __import__(mod)
        except Exception as exc:  # noqa: BLE001 - any import failure means "not usable"
            return f"not installed: import {mod} failed ({type(exc).__name__}: {exc})"[:200]
    return f"installed {version(_DIST[name])}"


def run_peer(name: str, wl, data, repeats: int) -> dict:
    """Figures of one peer on workload ``wl`` with ``data = (x, y, (w_in, w_out))`` (numpy)."""
    st = status(name)
    if not st.startswith("installed"):
        return {"status": st}
    try:
        if name == "spyx":
            return _spyx(wl, data, repeats)
        return _torch_subprocess(name, wl, data, repeats)
    except Exception as exc:  # noqa: BLE001 - a failing peer must not stop the suite
        return {"status": f"failed: {type(exc).__name__}: {exc}"[:300]}


# ------------------------------------------------------------------------------ spyx
def spyx_model(wl, w_in, w_out):
    """``(params, readout, loss_fn)``: ``readout(params, x) -> (potentials [T, B, n_out],
    hidden spikes)``, ``loss_fn(params, x, y) -> (loss, hidden spike rate)``."""
    import jax.numpy as jnp
    import spyx
    import spyx.nn as snn
    from flax import nnx

    from benchmarks.bptt import cross_entropy

    k = wl.dt / wl.tau_mem
    # CuBaLIF: I <- alpha I + x; V <- beta V + I, so x = k w / V_SCALE matches the Euler membrane
    w_in_spyx = jnp.asarray(w_in * (k / V_SCALE))

    class Model(nnx.Module):
        def __init__(self, rngs):
            self.fc_in = nnx.Linear(
                wl.n_in, wl.hidden, use_bias=False, rngs=rngs, kernel_init=lambda *_: w_in_spyx
            )
            self.lif = snn.CuBaLIF(
                (wl.hidden,),
                alpha=math.exp(-wl.dt / wl.tau_syn),
                beta=1 - k,
                activation=spyx.axn.superspike(SLOPE),
                rngs=rngs,
            )
            self.fc_out = nnx.Linear(
                wl.hidden,
                wl.n_out,
                use_bias=False,
                rngs=rngs,
                kernel_init=lambda *_: jnp.asarray(w_out),
            )
            self.readout = snn.LI((wl.n_out,), beta=math.exp(-wl.dt / wl.tau_out), rngs=rngs)

    graphdef, params = nnx.split(Model(nnx.Rngs(0)))

    def readout(params, x):
        m = nnx.merge(graphdef, params)
        s, _ = snn.run(m.lif, m.fc_in(x))
        v, _ = snn.run(m.readout, m.fc_out(s))
        return v, s

    def loss_fn(params, x, y):
        v, s = readout(params, x)
        return cross_entropy(v, y), jnp.mean(s)

    return params, readout, loss_fn


def _spyx(wl, data, repeats: int) -> dict:
    import jax
    import jax.numpy as jnp
    import optax

    from benchmarks.bptt import step_record

    x, y, (w_in, w_out) = data
    params, _, loss_fn = spyx_model(wl, w_in, w_out)
    opt = optax.adam(wl.lr)

    def step(params, opt_state, x, y):
        (loss, rate), g = jax.value_and_grad(loss_fn, has_aux=True)(params, x, y)
        updates, opt_state = opt.update(g, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, rate

    args = (params, opt.init(params), jnp.asarray(x), jnp.asarray(y))
    return {**step_record(step, args, repeats), "version": version("spyx")}


# ----------------------------------------------------------------------------- torch
def _torch_subprocess(name: str, wl, data, repeats: int) -> dict:
    x, y, (w_in, w_out) = data
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "data.npz"
        np.savez(path, x=x.astype(bool), y=y, w_in=w_in, w_out=w_out)
        cmd = [
            sys.executable,
            "-m",
            "benchmarks.peers",
            name,
            str(path),
            json.dumps(dataclasses.asdict(wl)),
            str(repeats),
        ]
        root = Path(__file__).resolve().parents[1]
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])]),
        )
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=root, env=env, timeout=1800)
    if out.returncode:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr else "no output")
    fig = json.loads(out.stdout.strip().splitlines()[-1])
    fig["version"] = version(_DIST[name])
    return fig


def _torch_model(name: str, wl, w_in, w_out):
    """``(module, forward)``; ``forward(x) -> (logits [B, n_out], hidden spike rate)``."""
    import torch

    k = wl.dt / wl.tau_mem
    fc_in = torch.nn.Linear(wl.n_in, wl.hidden, bias=False)
    fc_out = torch.nn.Linear(wl.hidden, wl.n_out, bias=False)
    mods = torch.nn.ModuleDict({"fc_in": fc_in, "fc_out": fc_out})
    if name == "snntorch":
        import snntorch as snn
        from snntorch import surrogate

        # Synaptic: syn <- alpha syn + x; mem <- beta mem + syn (input gain k / V_SCALE)
        lif = snn.Synaptic(
            alpha=math.exp(-wl.dt / wl.tau_syn),
            beta=1 - k,
            threshold=1.0,
            spike_grad=surrogate.fast_sigmoid(slope=SLOPE),
            reset_mechanism="zero",
        )
        readout = snn.Leaky(beta=math.exp(-wl.dt / wl.tau_out), reset_mechanism="none")
        gain_in, gain_out = k / V_SCALE, 1.0

        def forward(x):
            cur = fc_in(x)
            syn, mem = lif.init_synaptic()
            spikes = []
            for c in cur.unbind(0):
                s, syn, mem = lif(c, syn, mem)
                spikes.append(s)
            s = torch.stack(spikes)
            v, vs = readout.init_leaky(), []
            for o in fc_out(s).unbind(0):
                _, v = readout(o, v)
                vs.append(v)
            return torch.stack(vs).amax(0), s.mean()
    else:
        import norse.torch as norse

        # LIF: v <- v + dt/tau_mem (v_leak - v + i), i decays with tau_syn, i += x (gain 1/V_SCALE)
        p = norse.LIFParameters(
            tau_syn_inv=torch.tensor(1 / wl.tau_syn),
            tau_mem_inv=torch.tensor(1 / wl.tau_mem),
            v_leak=torch.tensor(0.0),
            v_th=torch.tensor(1.0),
            v_reset=torch.tensor(0.0),
            method="super",
            alpha=torch.tensor(SLOPE),
        )
        lif = norse.LIFCell(p, dt=wl.dt)
        readout = norse.LIBoxCell(
            norse.LIBoxParameters(tau_mem_inv=torch.tensor(1 / wl.tau_out)), dt=wl.dt
        )
        gain_in, gain_out = 1 / V_SCALE, wl.tau_out / wl.dt  # LIBox input gain is dt / tau

        def forward(x):
            state, spikes = None, []
            for c in fc_in(x).unbind(0):
                s, state = lif(c, state)
                spikes.append(s)
            s = torch.stack(spikes)
            state, vs = None, []
            for o in fc_out(s).unbind(0):
                v, state = readout(o, state)
                vs.append(v)
            return torch.stack(vs).amax(0), s.mean()

    with torch.no_grad():
        fc_in.weight.copy_(torch.from_numpy(np.ascontiguousarray(w_in.T * gain_in)))
        fc_out.weight.copy_(torch.from_numpy(np.ascontiguousarray(w_out.T * gain_out)))
    return mods, forward


def torch_main(name: str, path: str, wl_json: str, repeats: int) -> dict:
    """Time the torch peer ``name`` in this process (the subprocess side)."""
    import torch

    torch.set_num_threads(2)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    wl = argparse.Namespace(**json.loads(wl_json))
    with np.load(path) as f:
        x = torch.from_numpy(f["x"].astype(np.float32)).to(dev)
        y = torch.from_numpy(f["y"].astype(np.int64)).to(dev)
        w_in, w_out = f["w_in"], f["w_out"]
    mods, forward = _torch_model(name, wl, w_in, w_out)
    mods.to(dev)
    opt = torch.optim.Adam(mods.parameters(), lr=wl.lr)

    def step():
        opt.zero_grad(set_to_none=True)
        logits, rate = forward(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        loss.backward()
        opt.step()
        return loss.item(), rate.item()  # .item() waits for the device

    t = time.perf_counter()
    loss, rate = step()
    first = time.perf_counter() - t
    best = float("inf")
    for _ in range(max(1, repeats)):
        t = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t)
    if dev == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        peak, kind = (torch.cuda.max_memory_allocated() - base) / 2**20, "cuda-max-allocated"
    else:
        peak, kind = _profiled_peak_mb(step), "torch-profiler"
    return {
        "ms_per_step": 1e3 * best,
        "first_step_s": first,
        "compile_s": None,
        "peak_mb": peak,
        "peak_kind": kind,
        "loss": loss,
        "hidden_rate": rate,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": dev,
    }


def _profiled_peak_mb(step) -> float:
    """Highest running sum of the memory allocated (and freed) by the ops of one ``step()``."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    peak = total = 0
    for e in sorted(prof.events(), key=lambda e: e.time_range.start):
        total += e.self_cpu_memory_usage
        peak = max(peak, total)
    return peak / 2**20


if __name__ == "__main__":
    _name, _path, _wl, _rep = sys.argv[1:5]
    print(json.dumps(torch_main(_name, _path, _wl, int(_rep))))
