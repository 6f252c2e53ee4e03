"""The trial workload of :mod:`benchmarks.trials` in ssjax, spyx and snnTorch (issue 17, item 6).

Data: the SHD-format set of :mod:`benchmarks.trials` (SHD-like words, 700 channels, 20 classes,
0.5 s at dt = 1 ms, written as HDF5 and read with ``ssjax.data.load_hdf5``). Model, the same
in every library and as :mod:`benchmarks.peers` builds it: 700 -> 128 current-based LIF
(tau_syn 5 ms, tau_mem 20 ms) -> 20 leaky-integrator readouts (tau 20 ms), cross-entropy of the
readout's maximum over time, Adam (lr 2e-3), BPTT through the SuperSpike surrogate; initial
weights drawn once and rescaled to each library's units (``benchmarks.peers``). Every
implementation trains on the same batches in the same order (the epochs' index arrays are drawn
once with ``ssjax.data.epoch_indices`` and ``drop_last``), one seed.

- ``ssjax``: ``benchmarks.bptt.ssjax_loss`` (``ssjax.network.simulate`` + the readout filter);
  an epoch is one jitted ``lax.scan`` whose batches ``ssjax.data.dense_batch`` builds on the
  device from the events;
- ``spyx``: ``benchmarks.peers.spyx_model`` (flax nnx), an epoch as one jitted ``lax.scan`` over
  batches gathered from the dense data set on the device;
- ``snntorch``: ``benchmarks.peers._torch_model``, eager PyTorch (2 threads), a Python loop
  over batches of the dense data set.

Each runs in a fresh process: wall seconds per epoch (median after the first; the first
includes compilation), test accuracy after the last epoch, peak RSS (``ru_maxrss``).

    python -m benchmarks.trial_peers [--quick] [--out docs/trial_peers.md]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

IMPLS = ("ssjax", "spyx", "snntorch")


def _workload(quick: bool):
    from benchmarks.bptt import Workload

    return Workload(
        "shd-trials", steps=500, batch=32, n_in=700, hidden=128, n_out=20,
        tau_mem=20e-3, tau_out=20e-3, lr=2e-3, w0=0.5,
    )  # fmt: skip


def _setup(folder: Path, quick: bool):
    """Trials, epoch orders ``[E, nb, B]`` and initial weights, identical in every process."""
    import jax

    from benchmarks.trials import FULL, QUICK, _data
    from ssjax.data import epoch_indices, epoch_key

    size = (QUICK if quick else FULL)["shd"]
    train, test, _ = _data("shd", size, folder)
    wl = _workload(quick)
    key = jax.random.PRNGKey(3)
    orders = np.stack(
        [
            np.asarray(
                epoch_indices(epoch_key(key, e), train.n_trials, wl.batch, drop_last=True)[0]
            )
            for e in range(size["epochs"])
        ]
    )
    k_in, k_out = jax.random.split(jax.random.PRNGKey(4))
    w_in = np.asarray(jax.random.normal(k_in, (wl.n_in, wl.hidden))) * (wl.w0 / math.sqrt(wl.n_in))
    w_out = np.asarray(jax.random.normal(k_out, (wl.hidden, wl.n_out))) / math.sqrt(wl.hidden)
    return wl, train, test, orders, (w_in.astype(np.float32), w_out.astype(np.float32))


def _dense(trials) -> np.ndarray:
    """All trials as ``[n, T, N]`` bool (the peers' input; ssjax gathers from the events)."""
    return np.stack([trials.trial_raster(i, bool) for i in range(trials.n_trials)])


def _jax_run(impl: str, wl, train, test, orders, weights) -> dict:
    """ssjax or spyx: epochs as jitted scans over the given orders, then the test accuracy."""
    import jax
    import jax.numpy as jnp
    import optax

    from benchmarks.bptt import cross_entropy, ssjax_readout
    from benchmarks.peers import spyx_model
    from ssjax.data import dense_batch

    if impl == "ssjax":
        params = tuple(jnp.asarray(w) for w in weights)

        def readout(p, x):
            return ssjax_readout(p, x, wl)

        sets = {"train": train.with_batch(wl.batch), "test": test.with_batch(wl.batch)}

        def batch(which, idx, mask=None):
            return dense_batch(sets[which], idx, mask)  # built from the events on the device
    else:
        params, readout, _ = spyx_model(wl, *weights)
        xs = {w: jnp.asarray(_dense(t)) for w, t in (("train", train), ("test", test))}
        ys = {w: jnp.asarray(np.asarray(t.labels)) for w, t in (("train", train), ("test", test))}

        def batch(which, idx, mask=None):
            x = jnp.swapaxes(xs[which][idx], 0, 1).astype(jnp.float32)
            return x, ys[which][idx]

    opt = optax.adam(wl.lr)

    def loss_fn(p, x, y):
        return cross_entropy(readout(p, x)[0], y)

    @jax.jit
    def epoch(params, opt_state, order):
        def step(carry, idx):
            p, o = carry
            x, y = batch("train", idx)
            loss, g = jax.value_and_grad(loss_fn)(p, x, y)
            u, o = opt.update(g, o, p)
            return (optax.apply_updates(p, u), o), loss

        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), order)
        return params, opt_state, losses

    @jax.jit
    def predict(p, idx):
        x, _ = batch("test", idx)
        return jnp.argmax(jnp.max(readout(p, x)[0], axis=0), axis=-1)

    opt_state = opt.init(params)
    times, losses = [], np.zeros(1)
    for order in orders:
        t0 = time.perf_counter()
        params, opt_state, losses = epoch(params, opt_state, jnp.asarray(order))
        jax.block_until_ready(losses)
        times.append(time.perf_counter() - t0)
    n = test.n_trials
    idx = np.arange(-(-n // wl.batch) * wl.batch) % n  # whole batches; the wrap is cut below
    pred = np.concatenate(
        [np.asarray(predict(params, jnp.asarray(b))) for b in idx.reshape(-1, wl.batch)]
    )
    acc = float(np.mean(pred[:n] == np.asarray(test.labels)))
    return _record(impl, times, float(np.mean(np.asarray(losses))), acc)


def _torch_run(wl, train, test, orders, weights) -> dict:
    """snnTorch, eager: a Python loop over the same batches."""
    import torch

    from benchmarks.peers import _torch_model

    torch.set_num_threads(2)
    mods, forward = _torch_model("snntorch", wl, *weights)
    opt = torch.optim.Adam(mods.parameters(), lr=wl.lr)
    x_train, x_test = (torch.from_numpy(_dense(t)) for t in (train, test))
    y_train, y_test = (torch.from_numpy(np.asarray(t.labels, np.int64)) for t in (train, test))
    times, losses = [], []
    for order in orders:
        t0 = time.perf_counter()
        losses = []
        for idx in torch.from_numpy(np.asarray(order, np.int64)):
            x = x_train[idx].transpose(0, 1).float()
            opt.zero_grad(set_to_none=True)
            logits, _ = forward(x)
            loss = torch.nn.functional.cross_entropy(logits, y_train[idx])
            loss.backward()
            opt.step()
            losses.append(loss.item())
        times.append(time.perf_counter() - t0)
    with torch.no_grad():
        pred = torch.cat(
            [
                forward(x_test[lo : lo + wl.batch].transpose(0, 1).float())[0].argmax(-1)
                for lo in range(0, test.n_trials, wl.batch)
            ]
        )
    acc = float((pred == y_test).float().mean())
    return _record("snntorch", times, float(np.mean(losses)), acc)


def _record(impl: str, times: list, loss: float, acc: float) -> dict:
    return {
        "suite": "trial_peers",
        "impl": impl,
        "epochs": len(times),
        "first_epoch_s": times[0],
        "epoch_s": float(np.median(times[1:])) if len(times) > 1 else float("nan"),
        "train_loss_last_epoch": loss,
        "test_accuracy": acc,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure(impl: str, folder: Path, quick: bool) -> dict:
    """One implementation in this process."""
    wl, train, test, orders, weights = _setup(folder, quick)
    if impl == "snntorch":
        rec = _torch_run(wl, train, test, orders, weights)
    else:
        rec = _jax_run(impl, wl, train, test, orders, weights)
    return {**rec, **wl.sizes(), "train_trials": train.n_trials, "test_trials": test.n_trials}


def run(quick: bool = False) -> list[dict]:
    """Every implementation in a fresh process (a missing peer is a record saying so)."""
    from benchmarks.peers import status

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        _setup(Path(tmp), quick)  # writes the data files once
        for impl in IMPLS:
            st = "installed" if impl == "ssjax" else status(impl)
            if not st.startswith("installed"):
                out.append({"suite": "trial_peers", "impl": impl, "status": st})
                continue
            cmd = [sys.executable, "-m", "benchmarks.trial_peers", "--one", impl, tmp]
            cmd += ["--quick"] if quick else []
            env = dict(os.environ, JAX_PLATFORMS="cpu")
            res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            if res.returncode:
                out.append({"suite": "trial_peers", "impl": impl, "status": res.stderr[-500:]})
                continue
            out.append(json.loads(res.stdout.strip().splitlines()[-1]))
            print(json.dumps(out[-1]), file=sys.stderr)
    return out


def markdown(records: list[dict]) -> str:
    """The records as a markdown table."""
    lines = [
        "| impl | train / test trials | epochs | s per epoch | first epoch (s) | "
        "test accuracy | train loss (last epoch) | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        if "status" in r:
            lines.append(f"| {r['impl']} | {r['status']} | | | | | | |")
            continue
        lines.append(
            f"| {r['impl']} | {r['train_trials']} / {r['test_trials']} | {r['epochs']} | "
            f"{r['epoch_s']:.2f} | {r['first_epoch_s']:.1f} | {r['test_accuracy']:.3f} | "
            f"{r['train_loss_last_epoch']:.3f} | {r['peak_mb']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, help="write the markdown table (and .json) here")
    ap.add_argument("--one", nargs=2, metavar=("IMPL", "FOLDER"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one[0], Path(args.one[1]), args.quick)))
        return
    records = run(args.quick)
    table = markdown(records)
    print(table)
    if args.out:
        args.out.write_text(table)
        args.out.with_suffix(".json").write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
