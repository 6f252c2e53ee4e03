"""Trial training: BPTT against SuperSpike on randman and on SHD-format data (issue 17, item 6).

Two data sets, both made here (no download):

- ``randman``: 10 classes of random manifolds (:func:`ssjax.data.randman_trials`: 20 units,
  one spike each within 50 ms, dt = 1 ms), held-out samples of the same manifolds as the test
  set; network 20-100-10;
- ``shd``: SHD-like words (:func:`ssjax.data.synthetic_words`: 700 channels, 20 classes, 0.5 s,
  dt = 1 ms) written as an SHD-layout HDF5 file and read back with :func:`ssjax.data.load_hdf5`
  (the route real SHD files take), a separate test file; network 700-128-20.

Rules: ``bptt`` (LI readout, max-over-time cross-entropy), ``superspike`` with symmetric and
with random feedback (count cross-entropy readout; the error of a target train for the correct
class's output, none for the others: on randman it learnt faster than the N-class window error);
Adam for all. ``seeds`` seeds train as one program (``vmap`` over the trial state and the
epoch keys). Each condition runs in a fresh process, so its peak RSS
(``ru_maxrss``: interpreter, JAX, compiled programs, data) is its own. Reported: test accuracy
per seed after the last epoch (median and range), wall seconds per epoch after compilation
(all seeds together), compile + first epoch, peak RSS.

    python -m benchmarks.trials [--quick] [--out docs/trials.md]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RULES = ("bptt", "superspike-symmetric", "superspike-random")
SEEDS = 4
FULL = {
    # at dt = 1 ms, 1000 samples per class exhaust the codes: no distinct held-out samples remain
    "randman": {"n_samples": 300, "n_heldout": 50, "epochs": 15, "batch": 64},
    "shd": {"n_per_class": 20, "n_test": 5, "epochs": 10, "batch": 32},
}
# SuperSpike's per-class target train: the correct output's spikes after the evidence
TARGET_TIMES = {"randman": (0.03, 0.04, 0.05), "shd": (0.3, 0.35, 0.4, 0.45)}
QUICK = {
    "randman": {"n_samples": 60, "n_heldout": 20, "epochs": 3, "batch": 32},
    "shd": {"n_per_class": 6, "n_test": 3, "epochs": 3, "batch": 16},
}


def _data(name: str, size: dict, folder: Path):
    import jax

    from ssjax.data import load_hdf5, randman_heldout_trials, randman_trials, synthetic_words
    from ssjax.data.hdf5 import write_hdf5

    key = jax.random.PRNGKey(0)
    if name == "randman":
        kw = dict(n_classes=10, n_units=20, n_samples=size["n_samples"], dt=1e-3)
        return (
            randman_trials(key, **kw),
            randman_heldout_trials(key, size["n_heldout"], **kw),
            (20, 100, 10),
        )
    kw = dict(n_classes=20, n_units=700, duration=0.5, dt=1e-3)
    paths = []
    for i, n, split in ((1, size["n_per_class"], "train"), (2, size["n_test"], "test")):
        path = folder / f"shd_like_{split}.h5"
        if not path.exists():  # the same words (key), other utterances (trial_key)
            words = synthetic_words(key, n_per_class=n, trial_key=jax.random.PRNGKey(i), **kw)
            write_hdf5(path, *words)
        paths.append(path)
    train, test = (load_hdf5(p, n_units=700, dt=1e-3, duration=0.5, n_classes=20) for p in paths)
    return train, test, (700, 128, 20)


def measure(data: str, rule: str, quick: bool, folder: Path) -> dict:
    """One condition in this process: train ``SEEDS`` seeds, return the record."""
    import jax
    import numpy as np
    import optax

    from ssjax.classification import ClassifierLoss
    from ssjax.data import epoch_key
    from ssjax.network import Network
    from ssjax.neuron import LIFParams
    from ssjax.rules.superspike import SuperSpikeConfig
    from ssjax.trial import TrialSpec, evaluate_trials, init_trial_state, train_epoch

    size = (QUICK if quick else FULL)[data]
    train, test, sizes = _data(data, size, folder)
    train, test = train.with_batch(size["batch"]), test.with_batch(size["batch"])
    net = Network(sizes, LIFParams(dt=1e-3, tau_mem=20e-3, tau_syn=5e-3), w0=2.0)
    if rule == "bptt":
        spec = TrialSpec(net, "bptt", ClassifierLoss("max"))
    else:
        cfg = SuperSpikeConfig(error="van_rossum", feedback=rule.split("-")[1])
        spec = TrialSpec(
            net, "superspike", ClassifierLoss("count_ce"), cfg, target_times=TARGET_TIMES[data]
        )
    tx = optax.adam(2e-3)
    keys = jax.random.split(jax.random.PRNGKey(1), SEEDS)
    states = jax.vmap(lambda k: init_trial_state(spec, tx, k))(keys)
    run_key = jax.random.PRNGKey(2)
    epoch = jax.jit(jax.vmap(lambda st, k: train_epoch(spec, tx, st, train, k)), donate_argnums=0)
    evaluate = jax.jit(jax.vmap(lambda w: evaluate_trials(spec, w, test)["accuracy"]))
    times = []
    for e in range(size["epochs"]):
        ks = jax.vmap(lambda s, e=e: epoch_key(jax.random.fold_in(run_key, s), e))(np.arange(SEEDS))
        t0 = time.perf_counter()
        states, metrics = epoch(states, ks)
        jax.block_until_ready(states)
        times.append(time.perf_counter() - t0)
    acc = np.asarray(evaluate(states.weights), np.float64)
    return {
        "suite": "trials",
        "data": data,
        "rule": rule,
        "sizes": list(sizes),
        "train_trials": train.n_trials,
        "test_trials": test.n_trials,
        "steps": train.n_steps,
        "batch": size["batch"],
        "epochs": size["epochs"],
        "seeds": SEEDS,
        "test_accuracy": acc.tolist(),
        "accuracy_median": float(np.median(acc)),
        "train_loss_last": float(np.mean(np.asarray(metrics.loss)[:, -1])),
        "first_epoch_s": times[0],
        "epoch_s": float(np.median(times[1:])) if len(times) > 1 else float("nan"),
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run(quick: bool = False) -> list[dict]:
    """Every data set x rule, each in a fresh process; returns the records."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for data in ("randman", "shd"):
            for rule in RULES:
                cmd = [sys.executable, "-m", "benchmarks.trials", "--one", data, rule, tmp]
                if quick:
                    cmd.append("--quick")
                env = dict(os.environ, JAX_PLATFORMS="cpu")
                res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
                if res.returncode != 0:
                    raise RuntimeError(f"{data} {rule} failed:\n{res.stderr[-3000:]}")
                rec = json.loads(res.stdout.strip().splitlines()[-1])
                print(json.dumps(rec), file=sys.stderr)
                out.append(rec)
    return out


def markdown(records: list[dict], header: str = "") -> str:
    """The results as a markdown table."""
    lines = [
        header,
        "| data | rule | sizes | train / test trials | epochs | test accuracy, median "
        "[min, max] over seeds | s per epoch (all seeds) | compile + 1st epoch (s) | "
        "peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        acc = r["test_accuracy"]
        lines.append(
            f"| {r['data']} | {r['rule']} | {'-'.join(map(str, r['sizes']))} | "
            f"{r['train_trials']} / {r['test_trials']} | {r['epochs']} | "
            f"{r['accuracy_median']:.3f} [{min(acc):.3f}, {max(acc):.3f}] | "
            f"{r['epoch_s']:.2f} | {r['first_epoch_s']:.1f} | {r['peak_mb']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, help="write the markdown table here")
    ap.add_argument("--one", nargs=3, metavar=("DATA", "RULE", "FOLDER"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        data, rule, folder = args.one
        print(json.dumps(measure(data, rule, args.quick, Path(folder))))
        return
    records = run(args.quick)
    table = markdown(records)
    print(table)
    if args.out:
        args.out.write_text(table)
        args.out.with_suffix(".json").write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
