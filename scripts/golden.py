"""Golden outputs: record, or compare against, the results of a fixed set of training runs.

A refactor that is meant to keep the numbers must leave these bit-identical on CPU: per run the
``summary.json`` and ``history.json`` (less wall times and paths; the history as a sha256) and the
sha256 of every final weight array, for ``configs/default.yaml``, ``fig2_quick``,
``fig4_quick``, ``fig5_xor_quick``, ``oxford_quick`` (1 seed), ``bptt_timing``, and
``default.yaml`` killed with SIGKILL after a checkpoint and resumed. Runs go through the
``ssjax train`` command line, so the script survives changes to the library's internals;
:func:`final_weights` is the one place that reads a run's state back.

    python scripts/golden.py record  [--out DIR]   # writes tests/golden/outputs.json
    python scripts/golden.py compare [--out DIR]   # exit 1 and a list of differences otherwise

About 4 minutes on 2 CPU cores; ``--reuse`` reads back the finished runs of an earlier ``--out``.

Recorded at the commit named in the file (``recorded_at``), on CPU, float32. None of these
configs uses the regulariser, the one numerical change of that commit, so they are also the
outputs of its parent.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden" / "outputs.json"
CONFIGS = REPO / "ssjax" / "configs"
RUNS = {
    "default": ("default.yaml", []),
    "fig2_quick": ("fig2_quick.yaml", []),
    "fig4_quick": ("fig4_quick.yaml", []),
    "fig5_xor_quick": ("fig5_xor_quick.yaml", []),
    "oxford_quick": ("oxford_quick.yaml", ["--seeds", "1"]),
    "bptt_timing": ("bptt_timing.yaml", []),
}
KILL_AT = 300  # the killed run is stopped once a checkpoint at or past this block exists
KILLED = ["--set", "run.checkpoint_every=100"]


def _ssjax(*args) -> list[str]:
    return [sys.executable, "-m", "ssjax.experiment.cli", *args]


def _env() -> dict:
    return {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONHASHSEED": "0"}


def final_weights(workdir: Path) -> list:
    """Final weights of every seed, per layer (``[seeds, N_pre, N_post]``), from the run's newest
    checkpoint. The only function here that uses the library's internals."""
    import jax.numpy as jnp

    from ssjax.experiment.checkpoint import Checkpointer
    from ssjax.experiment.config import build_trainer, load_config
    from ssjax.experiment.seeds import init_states, seed_ids

    cfg = load_config(workdir / "config.yaml")
    dtype = jnp.float64 if cfg.run.dtype == "float64" else jnp.float32
    template = init_states(build_trainer(cfg), seed_ids(cfg), dtype)
    _, state, _ = Checkpointer(workdir / "checkpoints").restore(template)
    return list(state.weights)


def _strip(obj):
    """Drop wall times, file paths and the run's warnings (diagnostics of its length, not
    results): everything else must match bit for bit."""
    if isinstance(obj, dict):
        skip = ("config", "warnings")
        return {k: _strip(v) for k, v in obj.items() if "wall" not in k and k not in skip}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _outputs(workdir: Path) -> dict:
    """What must stay bit-identical: the summary (as it is, for a readable diff), the sha256 of
    the history (canonical JSON; its last period as it is) and of every final weight array."""
    import numpy as np

    summary = _strip(json.loads((workdir / "summary.json").read_text()))
    history = _strip(json.loads((workdir / "history.json").read_text()))
    canonical = json.dumps(history, sort_keys=True).encode()
    last = {k: v[-1] for k, v in history.items() if isinstance(v, list) and v}
    weights = [_sha(np.ascontiguousarray(np.asarray(w)).tobytes()) for w in final_weights(workdir)]
    return {
        "summary": summary,
        "history_sha256": _sha(canonical),
        "history_last_period": last,
        "weights_sha256": weights,
    }


def _run(name: str, out: Path, reuse: bool) -> dict:
    config, extra = RUNS[name]
    wd = out / name
    if reuse and (wd / "summary.json").is_file():
        return _outputs(wd)
    cmd = _ssjax("train", str(CONFIGS / config), "--workdir", str(wd), "--no-progress", *extra)
    subprocess.run(cmd, check=True, env=_env(), stdout=subprocess.DEVNULL)
    return _outputs(wd)


def _killed_and_resumed(out: Path, reuse: bool) -> dict:
    """``default.yaml`` with a checkpoint every 100 blocks, SIGKILLed once block ``KILL_AT`` is
    saved, then run again to the end."""
    wd = out / "default_killed"
    if reuse and (wd / "summary.json").is_file():
        return _outputs(wd)
    cmd = _ssjax(
        "train", str(CONFIGS / "default.yaml"), "--workdir", str(wd), "--no-progress", *KILLED
    )
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL)
    ckpts = wd / "checkpoints"
    while proc.poll() is None:
        # a step_<digits> folder appears complete (orbax renames it into place last)
        steps = [int(p.name[5:]) for p in ckpts.glob("step_*") if p.name[5:].isdigit()]
        if steps and max(steps) >= KILL_AT:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    if proc.returncode != -signal.SIGKILL:
        raise RuntimeError(f"the run ended before it could be killed (exit {proc.returncode})")
    subprocess.run(cmd, check=True, env=_env(), stdout=subprocess.DEVNULL)
    return _outputs(wd)


def collect(out: Path, reuse: bool = False) -> dict:
    """Train every golden run in ``out`` (``reuse``: read back the finished ones there)."""
    results = {name: _run(name, out, reuse) for name in RUNS}
    results["default_killed"] = _killed_and_resumed(out, reuse)
    return results


def _diff(a, b, path="") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b))
        return [d for k in keys for d in _diff(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _diff(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [f"{path}: golden {a!r}, now {b!r}"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=["record", "compare"])
    p.add_argument("--out", help="folder for the runs (default: a temporary folder)")
    p.add_argument("--reuse", action="store_true", help="read back finished runs in --out")
    args = p.parse_args(argv)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="ssjax-golden-"))
    results = collect(out, reuse=args.reuse)
    killed = _diff(
        results["default"]["weights_sha256"], results["default_killed"]["weights_sha256"]
    )
    if args.mode == "record":
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps({"recorded_at": commit, "runs": results}, indent=1) + "\n")
        print(
            f"wrote {GOLDEN} ({len(results)} runs; killed-and-resumed == uninterrupted: "
            f"{not killed})"
        )
        return 0
    golden = json.loads(GOLDEN.read_text())["runs"]
    diffs = _diff(golden, results)
    for d in diffs[:50]:
        print(d)
    if killed:
        print("the killed-and-resumed run's weights differ from the uninterrupted run's")
    print(f"{len(diffs)} difference(s) from {GOLDEN}")
    return 1 if diffs or killed else 0


if __name__ == "__main__":
    raise SystemExit(main())
