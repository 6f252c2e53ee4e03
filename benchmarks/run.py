"""Run the benchmark suite and write ``results.md`` (tables) and ``results.json`` (records).

Usage::

    python -m benchmarks.run [--quick] [--suites SUITE ...] [--out DIR]

Suites: ``bptt`` (SHD-like BPTT step: ssjax, plain JAX, peers, matmul bound), ``superspike``
(online SuperSpike blocks: dense, event, per-step, BPTT, vs the published C++ cost), ``memory``
(peak memory against block length), ``seeds`` (time per seed for 1-64 seeds), ``scale`` (a
1000-256-500 task with a 33.1 s period: speed and whole-process peak RSS, and the RSS against the
period; :mod:`benchmarks.scale`), ``sweep`` (Fig. 1's grid as one sweep against its conditions
one after another, and a 1-64 condition x 16 seed scaling; :mod:`benchmarks.sweep`).
``results.json``
is a list of records, each with ``suite``, ``impl``, the workload's sizes and its figures
(``ms_per_step``, ``wall_per_sim_s``, ``peak_mb``, ``compile_s``, ... as applies); the files are
rewritten after every suite, so an interrupted run keeps what it finished. Records of the suites
not run this time are kept from an existing ``results.json`` in ``--out`` (so ``--suites scale``
updates that section only; the header describes the latest run).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

SUITES = ("bptt", "superspike", "memory", "seeds", "scale", "sweep")
PACKAGES = (
    "ssjax",
    "jax",
    "jaxlib",
    "optax",
    "flax",
    "numpy",
    "torch",
    "snntorch",
    "norse",
    "spyx",
)
ROOT = Path(__file__).resolve().parents[1]
ENV_KEYS = (
    "JAX_PLATFORMS",
    "XLA_FLAGS",
    "JAX_NUM_CPU_DEVICES",
    "SSJAX_XLA_TUNING",
    "SSJAX_CPU_DEVICES",
)


# ------------------------------------------------------------------------- machine
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _git() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            text=True,
            capture_output=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, text=True, capture_output=True, timeout=10
        ).stdout.strip()
        return rev + (" (uncommitted changes)" if dirty else "") if rev else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_info() -> dict:
    """Machine, software versions, date and load average (JSON-able)."""
    import jax

    from benchmarks import peers

    versions = {}
    for p in PACKAGES:
        try:
            versions[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            versions[p] = None
    devices = jax.devices()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": _mem_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax_backend": jax.default_backend(),
        "devices": f"{len(devices)} x {devices[0].device_kind}",
        "versions": versions,
        "peers": {p: peers.status(p) for p in peers.PEERS},
        "git": _git(),
        "command": " ".join(["python -m benchmarks.run", *sys.argv[1:]]),
        "env": {k: os.environ[k] for k in ENV_KEYS if k in os.environ},
        "jax_num_cpu_devices": jax.config.jax_num_cpu_devices,
        "loadavg_start": [round(v, 2) for v in os.getloadavg()],
    }


# ------------------------------------------------------------------------- markdown
def _f(v, spec=".3g") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def _table(head: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(_f(c) for c in row) + " |" for row in rows]
    return out + [""]


BOUNDS = ("matmul-bound", "matmul-needed")


def _bptt_md(recs: list[dict]) -> list[str]:
    out = [
        "## (a) BPTT training step, SHD-like workload",
        "",
        "700 Bernoulli(0.02) inputs -> H current-based LIF (tau_syn 5 ms, tau_mem 10 ms, "
        "dt 1 ms) -> 20 leaky-integrator readouts; cross-entropy of the readout's maximum over "
        "time; Adam. Best-of-N ms per step after compilation. `x bound`: ratio to "
        "`matmul-bound` (the step's 2 forward products + 4 backward products, the brief's "
        "definition; autodiff needs only 5 of the 6: `matmul-needed`). `x best peer`: ratio to "
        "the fastest *other* implementation (bounds excluded). Peak memory: XLA compiled "
        "temp+output (JAX) or the profiler's allocation high-water mark of one step (torch).",
        "",
    ]
    for wl in dict.fromkeys(r["workload"] for r in recs):
        rs = [r for r in recs if r["workload"] == wl]
        r0 = rs[0]
        out.append(f"### {wl}: T = {r0['T']}, batch {r0['batch']}, hidden {r0['hidden']}")
        out.append("")
        timed = {r["impl"]: r["ms_per_step"] for r in rs if "ms_per_step" in r}
        bound = timed.get("matmul-bound")
        rows = []
        for r in rs:
            if "ms_per_step" not in r:
                rows.append([r["impl"], r.get("status"), "", "", "", "", "", ""])
                continue
            ms = r["ms_per_step"]
            others = [v for k, v in timed.items() if k != r["impl"] and k not in BOUNDS]
            peer = ms / min(others) if others and r["impl"] not in BOUNDS else None
            rows.append(
                [
                    r["impl"],
                    f"{ms:.2f}",
                    _f(ms / bound if bound else None),
                    _f(peer),
                    _f(r.get("peak_mb"), ".1f"),
                    _f(r.get("compile_s"), ".2f"),
                    _f(r.get("hidden_rate"), ".3f"),
                    _f(r.get("loss"), ".4f"),
                ]
            )
        out += _table(
            [
                "impl",
                "ms/step",
                "x bound",
                "x best peer",
                "peak MB",
                "compile s",
                "hidden rate/step",
                "loss",
            ],
            rows,
        )
    return out


def _superspike_md(recs: list[dict]) -> list[str]:
    out = [
        "## (b) SuperSpike online training, dt = 0.1 ms, blocks of 0.5 s",
        "",
        "Simulated seconds per wall second of one network (`sim-s/wall-s`; with 16 seeds, "
        "all seeds' simulated seconds are counted) and its inverse (`wall-s/sim-s`); "
        "`x per-step`: speed-up over the per-step reference form at the same size and seeds. "
        "`blocks`: 0.5 s blocks per timed run (one `make_segment_fn` segment). `batching` "
        "of several seeds: `vmap` (one batched program) or `map` (the one-seed program per "
        "seed, the CPU default of `ssjax train`); `devices`: CPU devices the seeds are "
        "sharded over (one per core, `SSJAX_CPU_DEVICES`, as `ssjax train`). Rates: mean "
        "firing rate per layer (Hz).",
        "",
    ]
    rows = []
    step = {
        (r["network"], r["seeds"]): r["sim_s_per_wall_s"]
        for r in recs
        if r.get("method") == "stepwise" and r["impl"] == "ssjax"
    }
    # seeds under vmap (one batched program) or map (the one-seed program per seed)
    for r in recs:
        if r["impl"] != "ssjax":
            rows.append(
                [
                    r["network"],
                    r["seeds"],
                    "",
                    "",
                    f"{r['impl']} ({r['method']})",
                    _f(r["sim_s_per_wall_s"]),
                    _f(r["wall_per_sim_s"]),
                    "",
                    "",
                    "",
                    "",
                    r.get("source", ""),
                ]
            )
            continue
        ref = step.get((r["network"], r["seeds"]))
        rows.append(
            [
                r["network"],
                r["seeds"],
                r.get("batching", "vmap") if r["seeds"] > 1 else "",
                r.get("devices", 1),
                r["method"],
                _f(r["sim_s_per_wall_s"]),
                _f(r["wall_per_sim_s"]),
                _f(r["sim_s_per_wall_s"] / ref if ref else None),
                r["blocks"],
                _f(r.get("peak_mb"), ".1f"),
                _f(r.get("compile_s"), ".2f"),
                ", ".join(f"{v:.1f}" for v in r.get("rate_hz", [])),
            ]
        )
    return out + _table(
        [
            "network",
            "seeds",
            "batching",
            "devices",
            "method",
            "sim-s/wall-s",
            "wall-s/sim-s",
            "x per-step",
            "blocks",
            "peak MB",
            "compile s",
            "rates Hz",
        ],
        rows,
    )


def _memory_md(recs: list[dict]) -> list[str]:
    out = [
        "## (c) Peak memory against run length, 100-4-1, one seed",
        "",
        "XLA compiled temp+output (MB) of one segment, without running it. Columns `1 x L`: "
        "one block of L seconds; the last column is a run of many 0.5 s blocks: blocks are "
        "scanned, so such a run needs the memory of one 0.5 s block whatever its length.",
        "",
    ]
    cols = sorted({(r["blocks"], r["block_s"]) for r in recs}, key=lambda c: (c[0] > 1, c[1]))
    head = ["method"] + [f"{b} x {s:g} s" for b, s in cols]
    rows = []
    for m in dict.fromkeys(r["method"] for r in recs):
        by = {(r["blocks"], r["block_s"]): r["peak_mb"] for r in recs if r["method"] == m}
        rows.append([m] + [_f(by.get(c), ".1f") for c in cols])
    return out + _table(head, rows)


def _seeds_md(recs: list[dict]) -> list[str]:
    out = [
        "## (d) Seed scaling, 100-4-1, SuperSpike (default route: "
        + recs[0].get("method", "dense")
        + ")",
        "",
        "One compiled segment for all seeds: `vmap` batches them (the block's inputs, input "
        "currents and input-layer trace products are shared: every seed is at the same step), "
        "`map` runs the one-seed program once per seed. `x 1 seed`: time per seed relative to "
        "the single-seed run; `x 1 seed` times seeds is the whole run against one seed.",
        "",
    ]
    base = next((r["wall_per_seed_s"] for r in recs if r["seeds"] == 1), None)
    rows = [
        [
            r["seeds"],
            r.get("batching", "vmap"),
            r.get("devices", 1),
            r["blocks"],
            _f(r["wall_s"], ".4f"),
            f"{1e3 * r['wall_per_seed_s']:.2f}",
            _f(r["wall_per_seed_s"] / base if base else None),
            _f(r["sim_s_per_wall_s"]),
            _f(r.get("peak_mb"), ".1f"),
            _f(r.get("compile_s"), ".2f"),
        ]
        for r in recs
    ]
    return out + _table(
        [
            "seeds",
            "batching",
            "devices",
            "blocks",
            "wall s",
            "ms per seed",
            "x 1 seed",
            "sim-s/wall-s",
            "peak MB",
            "compile s",
        ],
        rows,
    )


def _scale_md(recs: list[dict]) -> list[str]:
    speed = [r for r in recs if r["kind"] == "speed"]
    mem = [r for r in recs if r["kind"] == "memory"]
    prof = [r for r in recs if r["kind"] == "profile"]
    cmds = [r for r in recs if r["kind"] == "command"]
    net = recs[0]["network"]
    out = [
        f"## (e) Scale: {net}, 5 Hz Poisson inputs and targets, one seed (issue 15)",
        "",
        "A pattern task generated by `benchmarks/scale.py`: 1000 inputs and 500 targets at 5 Hz "
        "written as `.ras` files, trained as `task.kind: ras` through the config layer "
        "(`load_config`, `build_patterns`: spikes held as events, each block gathered on the "
        "device; `make_segment_fn`), SuperSpike with symmetric feedback, `method: event`, 0.5 s "
        "blocks at dt = 0.1 ms. Each row is a fresh process; `peak RSS` is its whole-process "
        "high-water mark (`resource.getrusage`: interpreter, JAX, compiled program, buffers, "
        "the parsed files). Goal (issue 15): at most 0.15 wall s per simulated s on 2 cores and "
        "1.5 GB peak RSS; before, at 33.1 s: 1.72 wall s per simulated s and 13.6 GB.",
        "",
    ]
    if speed:
        out += _table(
            ["period s", "blocks", "wall-s/sim-s", "peak RSS MB", "compile s", "load s",
             "input events", "capacity", "rates Hz"],
            [
                [_f(r["period_s"]), r["blocks"], _f(r["wall_per_sim_s"]),
                 _f(r["peak_rss_mb"], ".0f"), _f(r["compile_s"], ".2f"), _f(r["load_s"], ".2f"),
                 str(r["input_events"]), str(r["capacity"]),
                 ", ".join(f"{v:.1f}" for v in r.get("rates_hz", []))]
                for r in speed
            ],
        )  # fmt: skip
    if prof:
        out += [
            "Where a block's time goes (ms per 0.5 s block, best of N, one process, after "
            "compilation): the gather of the input and target windows from the events, the "
            "rule's update on a fixed block (event route: simulation, traces, sums), the whole "
            "`block_step` (gather, rule, optimiser, metrics):",
            "",
        ] + _table(
            ["gather ms", "rule update ms", "block_step ms"],
            [[_f(r["gather_ms"]), _f(r["rule_update_ms"]), _f(r["block_step_ms"])] for r in prof],
        )
        p = prof[-1]
        out += [
            f"The gather is {100 * p['gather_ms'] / p['block_step_ms']:.0f}% of `block_step`; "
            "the rule's update (timed alone, with its own fixed costs) is most of the rest."
            + (
                f" The speed goal (0.15) is not reached: {_f(speed[-1]['wall_per_sim_s'])} wall "
                "s per simulated s, set by the rule's event route."
                if speed and speed[-1]["wall_per_sim_s"] > 0.15
                else f" The speed goal (0.15) is met: {_f(speed[-1]['wall_per_sim_s'])} wall s "
                "per simulated s."
                if speed
                else ""
            ),
            "",
        ]
    if cmds:
        out += [
            "The command line on the same task (a fresh process each; `ssjax train` of "
            "`blocks` blocks includes start-up, compilation, logs, the output raster over one "
            "period, a checkpoint and the report):",
            "",
        ] + _table(
            ["command", "period s", "blocks", "peak RSS MB", "wall s"],
            [
                [r["command"], _f(r["period_s"]), r["blocks"], _f(r["peak_rss_mb"], ".0f"),
                 _f(r["wall_s"], ".1f")]
                for r in cmds
            ],
        )  # fmt: skip
    if mem:
        out += [
            "Peak RSS against the period (same program, two blocks run):",
            "",
        ] + _table(
            ["period s", "peak RSS MB", "input events", "target events", "compile s"],
            [
                [_f(r["period_s"]), _f(r["peak_rss_mb"], ".0f"), str(r["input_events"]),
                 str(r["target_events"]), _f(r["compile_s"], ".2f")]
                for r in mem
            ],
        )  # fmt: skip
    return out


def _sweep_md(recs: list[dict]) -> list[str]:
    fig = [r for r in recs if r["kind"] == "fig1"]
    scl = [r for r in recs if r["kind"] == "scaling"]
    out = [
        "## (f) Hyper-parameter sweeps (issue 16)",
        "",
        "Fig. 1's grid (RMaxProp, RMSprop, fixed rate x 5 r0; 100-4-1, symmetric feedback, the "
        "SSBM poisson task) run one condition after another (one program each, as before "
        "sweeps) and as a sweep (`ssjax.experiment.sweep`: one program per optimiser, r0 "
        "traced, condition x seed runs batched). `wall` includes compilation, as a user sees "
        "it; `run` is the best of N executions of the compiled programs. Goal: 5x on 2 cores.",
        "",
    ]
    if fig:
        out += _table(
            ["batching", "conditions x seeds", "blocks", "programs", "sequential wall s",
             "sweep wall s", "wall ratio", "sequential run s", "sweep run s", "run ratio"],
            [[r["batching"], f"{r['conditions']} x {r['seeds']}", r["blocks"], r["programs"],
              _f(r["sequential_wall_s"]), _f(r["sweep_wall_s"]), _f(r["wall_ratio"], ".2f"),
              _f(r["sequential_run_s"]), _f(r["sweep_run_s"]), _f(r["run_ratio"], ".2f")]
             for r in fig],
        )  # fmt: skip
        full = {}
        for r in fig:  # the paper's 500 s = 1000 blocks: compile once, then the run dominates
            k = 1000 / r["blocks"] - 1
            full[r["batching"]] = (r["sequential_wall_s"] + k * r["sequential_run_s"],
                                   r["sweep_wall_s"] + k * r["sweep_run_s"])  # fmt: skip
        out += [
            "",
            "Extrapolated to the full figure (1000 blocks per run; compile once, then `run` per "
            "10 blocks): "
            + "; ".join(
                f"{b}: sequential {q:.0f} s, sweep {w:.0f} s ({q / w:.2f}x)"
                for b, (q, w) in full.items()
            )
            + (
                f"; the sweep with `vmap` against the sequential default (`map`, the CPU "
                f"default): {full['map'][0] / full['vmap'][1]:.1f}x."
                if {"map", "vmap"} <= set(full)
                else "."
            ),
            "One device per program; on CPU the batched condition x seed runs pay about what "
            "the same runs cost one after another once compiled, so the sweep's gain here is "
            "mostly compilation (3 programs instead of 15) and `vmap`'s shared input work.",
        ]
    if scl:
        out += [
            "",
            "Scaling: conditions (r0 values) x 16 seeds of 100-4-1 (the default task) as one "
            "`vmap` program, 10 blocks.",
            "",
        ]
        out += _table(
            ["conditions", "runs", "wall s", "run s", "ms per run-block"],
            [[r["conditions"], r["conditions"] * r["seeds"], _f(r["wall_s"]), _f(r["run_s"]),
              _f(r["run_ms_per_run_block"])] for r in scl],
        )  # fmt: skip
    return out + [""]


def _updated(info: dict, suites) -> list[str]:
    """The provenance line of suites rerun into an existing report."""
    return [
        f"- updated {', '.join(suites)}: {info['date']}, git {info['git']}, "
        f"`{info['command']}`, load average start {info['loadavg_start']}, "
        f"end {info.get('loadavg_end', '-')}, {info.get('wall_s', 0):.0f} s",
    ]


def markdown(info: dict, records: list[dict], header: list[str] | None = None) -> str:
    """The human-readable report; ``header``: the lines before the first section (those of an
    earlier report whose other suites' records are kept, plus an ``updated`` line)."""
    v = info["versions"]
    lines = [
        "# ssjax benchmarks",
        "",
        f"- date: {info['date']}",
        f"- machine: {info['cpu']}, {info['cores']} cores ({info['cores_usable']} usable), "
        f"{info['memory_gib']} GiB; {info['platform']}",
        f"- JAX backend: {info['jax_backend']} ({info['devices']})",
        f"- load average (1, 5, 15 min): start {info['loadavg_start']}, "
        f"end {info.get('loadavg_end', '-')}",
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val),
        "- peers: " + "; ".join(f"{k}: {s}" for k, s in info["peers"].items()),
        f"- git: {info['git']}; command: `{info['command']}`"
        + (f"; env {info['env']}" if info["env"] else ""),
        f"- wall time of the whole run: {info.get('wall_s', 0):.0f} s",
        "",
        "Every JAX timing: ahead-of-time compilation first (`compile s`), one warm-up run, then "
        "the best of N runs with `jax.block_until_ready`. PyTorch peers: `torch.set_num_threads"
        "(2)`, one warm-up step, best of N. Raw numbers: `results.json`.",
        "",
    ]
    sections = {
        "bptt": _bptt_md,
        "superspike": _superspike_md,
        "memory": _memory_md,
        "seeds": _seeds_md,
        "scale": _scale_md,
        "sweep": _sweep_md,
    }
    if header:
        lines = list(header)
    for suite, fn in sections.items():
        recs = [r for r in records if r["suite"] == suite]
        if recs:
            lines += fn(recs)
    return "\n".join(lines + NOTES) + "\n"


NOTES = [
    "## Notes",
    "",
    "- XLA:CPU setting: `python -m benchmarks.run` first applies the tuning of `ssjax train` "
    "(`ssjax.xla.configure_cpu_from_env`): it adds `--xla_backend_extra_options="
    "xla_cpu_small_while_loop_byte_threshold=1000000` to `XLA_FLAGS` (unless the user sets "
    "extra options or `SSJAX_XLA_TUNING=0`; see `ssjax/xla.py`), so that time scans compile "
    "as one loop instead of dispatching each step's kernels. Every JAX implementation of this "
    "run (ssjax, plain-jax, spyx) ran under it. It also asks for one CPU device per usable "
    "core (`SSJAX_CPU_DEVICES`), over which (b) and (d) shard their seeds as `ssjax train` "
    "does (`devices` column); one seed, and every BPTT step of (a), runs on one device.",
    "- Fairness of (a): every implementation computes the input projection for all steps as "
    "one matrix product before its time loop (spyx's `Sequential` would apply it inside the "
    "scan). ssjax and plain-jax are the same model (equal losses and gradients, tested); the "
    "peers use their own neuron updates (update order, Euler vs exact synaptic decay), so "
    "their losses and hidden rates differ a little (listed per row). PyTorch peers step over "
    "`cur.unbind(0)`; `norse.torch.LIF` (the sequence module) indexes `x[t]`, whose backward "
    "in eager PyTorch fills a zero `[T, B, H]` tensor per step (O(T^2)), so `LIFCell` is used.",
    "- `matmul-bound` follows the brief (2 forward products, 2 backward products each); "
    "autodiff never forms the inputs' gradient `[T*B, H] x [H, 700]`, so `matmul-needed` (5 "
    "products) is the tighter bound and a step can beat `matmul-bound`.",
    "- Peers: the `bench` extra of pyproject.toml pins the versions measured (torch 2.13.0, "
    "the CPU wheel). norse 1.1.0 declares torchvision; a plain `pip install norse` pulls the "
    "newest torchvision and with it another (CUDA) torch. With torch pinned, pip picks "
    "torchvision 0.28.0, a build whose compiled ops do not load with the CPU wheel; "
    "`norse.torch` never imports torchvision, so norse runs either way (torchvision was "
    "uninstalled here).",
    "- (b) Initial weights are the reference initialisation x3 so that every layer spikes; "
    "rates are those of the timed run, the first `blocks` blocks from the same weights, so "
    "runs of different lengths (the per-step form runs fewer) show different rates. Each "
    "timed call also pays a fixed cost (fresh buffers: about 15 ms at 200-256-200), which a "
    "long run's segments spread over many more blocks. The `auryn-cpp` row is the cost "
    "published for the authors' C++ code (3.3 wall s per simulated s, 200-256-200, one core), "
    "not measured here.",
]


def write(out: Path, info: dict, records: list[dict], header: list[str] | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(records, indent=1) + "\n")
    (out / "results.md").write_text(markdown(info, records, header))


def _old_header(out: Path) -> list[str] | None:
    """The lines of ``out/results.md`` before its first section, or None."""
    path = out / "results.md"
    if not path.exists():
        return None
    lines = path.read_text().splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.startswith("## ")), len(lines))
    return [ln for ln in lines[:first] if not ln.startswith("- updated ")]


# ------------------------------------------------------------------------------ main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n")[0]
    )
    ap.add_argument(
        "--quick", action="store_true", help="short workloads and few repeats (for tests)"
    )
    ap.add_argument("--suites", nargs="+", choices=SUITES, default=list(SUITES))
    ap.add_argument(
        "--out", default=str(ROOT / "benchmarks"), help="folder for results.md and results.json"
    )
    ap.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="best-of-N repeats (default 10 for BPTT steps, 3 otherwise; 2 quick)",
    )
    args = ap.parse_args(argv)
    out = Path(args.out)

    from benchmarks import bptt, scale, superspike, sweep

    def rep(full: int) -> int:
        return args.repeats or (2 if args.quick else full)

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.1f} s] {msg}", flush=True)

    t0 = time.perf_counter()
    info = machine_info()
    log(f"{info['cpu']}, {info['devices']}, load {info['loadavg_start']}")
    old = out / "results.json"
    kept = json.loads(old.read_text()) if old.exists() else []
    records: list[dict] = [r for r in kept if r.get("suite") not in args.suites]
    # other suites' records are kept: so is the header that describes their run
    base = _old_header(out) if records else None
    for suite in args.suites:
        if suite == "bptt":
            records += bptt.run(args.quick, rep(10), log)
        elif suite == "superspike":
            records += superspike.run(args.quick, rep(3), log)
        elif suite == "memory":
            records += superspike.run_memory(args.quick, log)
        elif suite == "scale":
            records += scale.run(args.quick, rep(3), log)
        elif suite == "sweep":
            records += sweep.run(args.quick, rep(3), log)
        else:
            records += superspike.run_seeds(args.quick, rep(3), log)
        info["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
        info["wall_s"] = time.perf_counter() - t0
        header = None
        if base is not None:
            cut = next((i for i, ln in enumerate(base) if ln.startswith("Every JAX timing")), -1)
            header = base[:cut] + _updated(info, args.suites) + [""] + base[cut:]
        write(out, info, records, header)
    log(f"wrote {out / 'results.md'} and {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    from ssjax.xla import configure_cpu_from_env

    configure_cpu_from_env()  # before JAX starts: the settings `ssjax train` runs under
    sys.exit(main())
