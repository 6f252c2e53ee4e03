"""The ``ssjax`` command: ``train``, ``validate``, ``reproduce``, ``compare``, ``demo`` (thin
wrappers).

Exit codes: 0 success; 2 invalid config, arguments, environment (``SSJAX_CPU_DEVICES``) or work
directory (not a writable folder, in use by another process, holding another run; nothing was
created or changed); 1 a run that failed (numerical fault, unreadable checkpoint); 128 + signal
number when SIGTERM or SIGINT stopped a run after saving a checkpoint, or when a second signal
(or one during start-up) stopped it at once, keeping the last checkpoint.

Several processes (``ssjax train --distributed`` or ``--coordinator HOST:PORT --num-processes N
--process-id I``; :mod:`ssjax.experiment.distributed`): a bad setting or a failed
``jax.distributed`` start exits 2; a failure of process 0 at start-up ends the others with its
message and code; a process that loses another exits 1 (or 134 when JAX's distributed service
aborts it first). Only process 0 prints the summary.

Before anything else :func:`main` applies the XLA:CPU tuning
(:func:`ssjax.xla.configure_cpu_from_env`: one CPU device per core, single-loop time scans;
``SSJAX_XLA_TUNING=0`` turns it off) and selects matplotlib's Agg backend unless ``MPLBACKEND``
is set. Importing this module does neither.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import warnings
from pathlib import Path


def _err(msg: str, code: int) -> int:
    print(f"ssjax: error: {msg}", file=sys.stderr)
    return code


def _validate(args) -> int:
    from ssjax.experiment.config import ConfigError, config_to_dict, n_blocks
    from ssjax.experiment.config.schema import is_trial
    from ssjax.experiment.runner import prepare

    try:
        cfg = prepare(args.config, overrides=args.set)
    except ConfigError as e:
        return _err(str(e), 2)
    d = config_to_dict(cfg)
    if is_trial(cfg):
        print(
            f"{args.config}: valid; {cfg.run.seeds} seed(s), {cfg.trials.epochs} epochs of "
            f"batches of {cfg.trials.batch_size} trials, rule {d['rule']['name']}, readout "
            f"{cfg.readout.name}, optimizer {cfg.optimizer.name}, network {d['network']['sizes']}"
        )
        return 0
    print(
        f"{args.config}: valid; {cfg.run.seeds} seed(s), {n_blocks(cfg)} blocks of "
        f"{cfg.run.block} s, rule {d['rule']['name']}, network {d['network']['sizes']}"
    )
    return 0


def _enable_x64(cfg) -> None:
    """A float64 config gets JAX's 64-bit mode (before any JAX computation of this process)."""
    if cfg.run.dtype == "float64":
        import jax

        jax.config.update("jax_enable_x64", True)


def _start_processes(args) -> int | None:
    """``jax.distributed`` as the flags and ``SSJAX_*`` variables ask (before any JAX
    computation); exit code 2 for a bad setting or a failed start, else None."""
    from ssjax.experiment.distributed import DistributedError, initialize, settings_from_env

    try:
        dist = settings_from_env(
            args.distributed, args.coordinator, args.num_processes, args.process_id
        )
        if dist is not None:
            initialize(dist)
    except DistributedError as e:
        return _err(str(e), 2)
    return None


def _primary() -> bool:
    import jax

    return jax.process_index() == 0


def _train(args) -> int:
    from ssjax.experiment.config import ConfigError
    from ssjax.experiment.report import json_safe
    from ssjax.experiment.runner import prepare, train

    code = _start_processes(args)
    if code is not None:
        return code
    if args.sweep is not None:
        return _train_sweep(args)
    try:
        cfg = prepare(args.config, seeds=args.seeds, overrides=args.set)
    except ConfigError as e:
        return _err(str(e), 2)
    _enable_x64(cfg)
    workdir = Path(args.workdir or Path("runs") / Path(args.config).stem)
    code, summary = _guarded(train, cfg, workdir, args)
    if code is not None:
        return code
    if not _primary():  # the primary process reports
        return 0
    if summary.get("mode") == "trials":
        print(json.dumps(json_safe({k: summary[k] for k in ("median", "wall_seconds")})))
        print(
            f"wrote {workdir}/summary.json, history.json, learning_curve.png; "
            f"tensorboard --logdir {workdir}/tb"
        )
        return 0
    keys = ("median", "simulated_seconds", "wall_seconds")
    print(json.dumps(json_safe({k: summary[k] for k in keys})))
    print(
        f"wrote {workdir}/summary.json, history.json, learning_curve.png, raster.png; "
        f"tensorboard --logdir {workdir}/tb"
    )
    return 0


def _guarded(run, what, workdir, args):
    """``(None, run(...))``, or ``(exit code, None)`` with the message printed: 2 for a config,
    work directory (another run's config, in use, not a folder), 1 for a failed run."""
    from ssjax.experiment.checkpoint import CheckpointError
    from ssjax.experiment.config import ConfigError
    from ssjax.experiment.distributed import PeerError, PeerLost
    from ssjax.experiment.runner import NumericalError, RunError, WorkdirError

    try:
        return None, run(
            what,
            workdir,
            override_config=args.override_config,
            fallback=args.fallback_checkpoint,
            progress=not args.no_progress,
        )
    except (ConfigError, RunError, WorkdirError) as e:
        return _err(str(e), 2), None
    except (NumericalError, CheckpointError) as e:
        return _err(str(e), 1), None
    except PeerError as e:  # another process's failure, with its exit code
        return _err(str(e), e.code), None
    except PeerLost as e:
        # at once: JAX's exit would wait for the lost process at a shutdown barrier, then abort
        _err(str(e), 1)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)


def _train_sweep(args) -> int:
    from ssjax.experiment.config import ConfigError
    from ssjax.experiment.paths import UnknownConfigError, find_config
    from ssjax.experiment.sweep import conditions, format_table, parse_sweep_items, train_sweep

    overrides = list(args.set) + ([f"run.seeds={args.seeds}"] if args.seeds is not None else [])
    try:
        try:
            path = find_config(args.config)
        except UnknownConfigError as exc:
            raise ConfigError(args.config, None, exc.reason) from None
        spec = parse_sweep_items(args.sweep) if args.sweep else None
        conds = conditions(path, overrides, spec)
    except ConfigError as e:
        return _err(str(e), 2)
    for c in conds:
        _enable_x64(c.cfg)
    workdir = Path(args.workdir or Path("runs") / (Path(args.config).stem + "_sweep"))
    code, rows = _guarded(train_sweep, conds, workdir, args)
    if code is not None:
        return code
    if not _primary():
        return 0
    print(format_table(rows), end="")
    print(f"wrote {workdir}/sweep.md, sweep.json and one folder per condition")
    return 0


def reproduce_command(args) -> str:
    """The ``ssjax reproduce`` command line that ``args`` stand for (for the report header)."""
    words = ["ssjax reproduce", args.figure]
    if args.quick:
        words.append("--quick")
    if args.seeds is not None:
        words.append(f"--seeds {args.seeds}")
    if args.duration is not None:
        words.append(f"--duration {args.duration:g}")
    if args.out != REPRODUCE_OUT:
        words.append(f"--out {args.out}")
    return " ".join(words)


def _reproduce(args) -> int:
    from ssjax.experiment.checkpoint import CheckpointError
    from ssjax.experiment.config import ConfigError
    from ssjax.experiment.reproduce import FIGURES, format_list, run_figure
    from ssjax.experiment.runner import NumericalError, RunError, WorkdirError

    if args.figure is not None and args.figure not in FIGURES:
        return _err(f"unknown figure {args.figure!r} (one of {', '.join(FIGURES)})", 2)
    if args.list:
        print(format_list(args.figure))
        return 0
    if args.figure is None:
        return _err(f"name a figure ({', '.join(FIGURES)}) or give --list", 2)
    try:
        report = run_figure(
            args.figure,
            quick=args.quick,
            seeds=args.seeds,
            duration=args.duration,
            out=args.out,
            progress=not args.no_progress,
            command=reproduce_command(args),
        )
    except (ConfigError, RunError, WorkdirError) as e:
        return _err(str(e), 2)
    except (NumericalError, CheckpointError) as e:
        return _err(str(e), 1)
    print(f"{args.figure}: {report['wall_seconds']:.1f} s; wrote " + ", ".join(report["files"]))
    if report["failed"]:
        return _err(f"non-finite values in: {', '.join(report['failed'])} (see the report)", 1)
    return 0


def _demo(args) -> int:
    from ssjax.experiment.demo import run_demo

    if args.periods < 1:
        return _err("--periods must be >= 1", 2)
    summary = run_demo(
        args.out, n_periods=args.periods, hidden=args.hidden, seed=args.seed, r0=args.r0
    )
    print(json.dumps(summary, indent=2))
    return 0


COMPARE_DOC = """\
Gradient vs local rule: per-layer alignment of SuperSpike and BPTT updates on a block.

Usage: ``ssjax compare [--sizes 100 4 1] [--seed 0] [--rules R ...] [--out DIR]
[--gain 3.0] [--periods 1]``. Builds the timing task of the paper's Fig. 2 (every output unit
gets the same target) and draws weights ``gain x`` the reference initialisation, clipped to the
weight bounds and redrawn (up to 20 times) until every layer spikes in the block. From the
resting network it computes every rule's update on one block of ``periods`` pattern periods
(0.5 s each), prints the table and writes ``DIR/alignment.png``. Exit code 2 for an unknown
rule name.
"""

MAX_DRAWS = 20  # weight draws of ``ssjax compare`` before giving up on a spiking network


def _compare(args) -> int:
    import jax
    import jax.numpy as jnp

    from ssjax.analysis.alignment import RULES, compare_rules
    from ssjax.network import Network, init_weights, simulate
    from ssjax.plots import format_table, plot_alignment
    from ssjax.tasks.timing import timing_task

    ap = args.parser
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


REPRODUCE_OUT = "runs/reproduce"


def build_parser() -> argparse.ArgumentParser:
    """The ``ssjax`` argument parser."""
    p = argparse.ArgumentParser(prog="ssjax", description="SuperSpike in JAX")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train (or resume) a run described by a YAML config")
    t.add_argument(
        "config", help="YAML file, or a shipped config's name (e.g. default, fig2_quick)"
    )
    t.add_argument("--seeds", type=int, default=None, help="number of seeds (run.seeds)")
    t.add_argument("--workdir", default=None, help="run folder (default runs/<config name>)")
    t.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set optimizer.r0=5e-3",
    )
    t.add_argument(
        "--override-config",
        action="store_true",
        help="continue a work directory whose saved config differs",
    )
    t.add_argument(
        "--fallback-checkpoint",
        action="store_true",
        help="if the newest checkpoint is corrupt, resume from the previous one",
    )
    t.add_argument(
        "--sweep",
        nargs="*",
        default=None,
        metavar="KEY=V1,V2",
        help="run a sweep: the config's sweep section, or these grid axes (e.g. "
        "--sweep optimizer.r0=1e-2,5e-3); conditions that differ only in traced "
        "hyper-parameters run as one program; default workdir runs/<config name>_sweep",
    )
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = t.add_argument_group(
        "several processes (jax.distributed; see ssjax.experiment.distributed)",
        "each process runs the same command; process 0 writes the work directory",
    )
    g.add_argument(
        "--distributed",
        action="store_true",
        help="one of several processes; alone, JAX reads the cluster's environment (SLURM, "
        "Open MPI, JAX_COORDINATOR_ADDRESS)",
    )
    g.add_argument(
        "--coordinator", default=None, metavar="HOST:PORT",
        help="process 0's address and a free port (SSJAX_COORDINATOR)",
    )  # fmt: skip
    g.add_argument(
        "--num-processes", type=int, default=None, metavar="N",
        help="number of processes (SSJAX_NUM_PROCESSES)",
    )  # fmt: skip
    g.add_argument(
        "--process-id", type=int, default=None, metavar="I",
        help="this process's index, 0 .. N-1 (SSJAX_PROCESS_ID)",
    )  # fmt: skip
    t.set_defaults(func=_train)

    v = sub.add_parser("validate", help="check a config without running anything")
    v.add_argument("config", help="YAML file, or a shipped config's name")
    v.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    v.set_defaults(func=_validate)

    r = sub.add_parser(
        "reproduce",
        help="one of the paper's figures: train every condition, write <fig>.md/.json/.png",
    )
    r.add_argument(
        "figure", nargs="?", help="fig1, fig2, fig4, fig5, fig6 (Figs. 6-7), fig8, oxford, randman"
    )
    r.add_argument("--quick", action="store_true", help="the quick settings (a few minutes)")
    r.add_argument("--seeds", type=int, default=None, help="override run.seeds of every condition")
    r.add_argument(
        "--duration", type=float, default=None, help="override run.duration (s) of every condition"
    )
    r.add_argument("--out", default=REPRODUCE_OUT, help=f"output folder (default {REPRODUCE_OUT})")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    r.add_argument("--list", action="store_true", help="list figures, conditions, seeds x duration")
    r.set_defaults(func=_reproduce)

    from ssjax.analysis.alignment import RULES

    c = sub.add_parser(
        "compare",
        help="alignment of SuperSpike and BPTT updates on one block",
        description=COMPARE_DOC,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    c.add_argument("--sizes", type=int, nargs="+", default=[100, 4, 1], help="N_in ... N_out")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--rules", nargs="+", default=list(RULES), help=f"any of {', '.join(RULES)}")
    c.add_argument("--out", default="runs/compare", help="folder for alignment.png")
    c.add_argument("--gain", type=float, default=3.0, help="factor on the initial weights")
    c.add_argument("--periods", type=int, default=1, help="pattern periods in the block")
    c.set_defaults(func=_compare, parser=c)

    d = sub.add_parser("demo", help="BPTT on the paper's 5-spike timing task (no config)")
    d.add_argument("--out", default="runs/demo", help="output folder (PNG files)")
    d.add_argument("--periods", type=int, default=1000, help="0.5 s pattern periods to train")
    d.add_argument("--hidden", type=int, default=0, help="hidden units (0: 100 -> 1)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--r0", type=float, default=1e-3, help="RMaxProp learning rate")
    d.set_defaults(func=_demo)
    return p


def setup() -> int | None:
    """What :func:`main` does before anything else: the XLA:CPU tuning the environment asks for
    (:func:`ssjax.xla.configure_cpu_from_env`) and matplotlib's Agg backend unless
    ``MPLBACKEND`` is set. Returns exit code 2 for an invalid ``SSJAX_CPU_DEVICES``, else None;
    warns (and goes on untuned) when JAX has already started its backend in this process."""
    from ssjax.xla import configure_cpu_from_env

    try:
        configure_cpu_from_env()
    except ValueError as e:
        return _err(str(e), 2)
    except RuntimeError as e:  # main() called in-process after a JAX computation
        warnings.warn(str(e), RuntimeWarning, stacklevel=3)
    if not os.environ.get("MPLBACKEND"):
        import matplotlib

        matplotlib.use("Agg")
    return None


def _quit(signum, _frame):
    # os._exit, not an exception: a KeyboardInterrupt raised inside a callback (XLA's gc hook,
    # say) is printed and swallowed; before the training loop only atomic writes have happened
    name = signal.Signals(signum).name
    print(f"ssjax: {name}: interrupted before training started", file=sys.stderr, flush=True)
    os._exit(128 + signum)


def main(argv=None) -> int:
    """Entry point of the ``ssjax`` command.

    A SIGINT or SIGTERM outside the training loop (imports, validation, restoring, the final
    report) ends the process with 128 + signal number and one line on stderr, no traceback;
    the training loop installs its own handlers (:mod:`ssjax.experiment.runner`)."""
    previous = {s: signal.signal(s, _quit) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = setup()
        if code is not None:
            return code
        args = build_parser().parse_args(argv)
        return args.func(args)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


if __name__ == "__main__":
    sys.exit(main())
