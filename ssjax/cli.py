"""The ``ssjax`` command: ``train``, ``validate``, ``reproduce``, ``compare``, ``demo`` (thin
wrappers).

Exit codes: 0 success; 2 invalid config, arguments, environment (``SSJAX_CPU_DEVICES``) or work
directory (nothing was created); 1 a run that failed (numerical fault, unreadable checkpoint);
128 + signal number when SIGTERM or SIGINT stopped a run after saving a checkpoint.

Before anything else :func:`main` applies the XLA:CPU tuning
(:func:`ssjax.xla.configure_cpu_from_env`: one CPU device per core, single-loop time scans;
``SSJAX_XLA_TUNING=0`` turns it off) and selects matplotlib's Agg backend unless ``MPLBACKEND``
is set. Importing this module does neither.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path


def _err(msg: str, code: int) -> int:
    print(f"ssjax: error: {msg}", file=sys.stderr)
    return code


def _validate(args) -> int:
    from ssjax.config import ConfigError, config_to_dict, n_blocks
    from ssjax.runner import prepare

    try:
        cfg = prepare(args.config, overrides=args.set)
    except ConfigError as e:
        return _err(str(e), 2)
    d = config_to_dict(cfg)
    print(
        f"{args.config}: valid; {cfg.run.seeds} seed(s), {n_blocks(cfg)} blocks of "
        f"{cfg.run.block} s, rule {d['rule']['name']}, network {d['network']['sizes']}"
    )
    return 0


def _train(args) -> int:
    from ssjax.checkpoint import CheckpointError
    from ssjax.config import ConfigError
    from ssjax.runner import NumericalError, RunError, check_workdir, prepare, train

    try:
        cfg = prepare(args.config, seeds=args.seeds, overrides=args.set)
        workdir = Path(args.workdir or Path("runs") / Path(args.config).stem)
        check_workdir(cfg, workdir, args.override_config)
    except (ConfigError, RunError) as e:
        return _err(str(e), 2)
    try:
        summary = train(
            cfg,
            workdir,
            override_config=args.override_config,
            fallback=args.fallback_checkpoint,
            progress=not args.no_progress,
        )
    except (NumericalError, CheckpointError) as e:
        return _err(str(e), 1)
    print(json.dumps({k: summary[k] for k in ("median", "simulated_seconds", "wall_seconds")}))
    print(
        f"wrote {workdir}/summary.json, history.json, learning_curve.png, raster.png; "
        f"tensorboard --logdir {workdir}/tb"
    )
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
    from ssjax.checkpoint import CheckpointError
    from ssjax.config import ConfigError
    from ssjax.reproduce import FIGURES, format_list, run_figure
    from ssjax.runner import NumericalError, RunError

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
    except (ConfigError, RunError) as e:
        return _err(str(e), 2)
    except (NumericalError, CheckpointError) as e:
        return _err(str(e), 1)
    print(f"{args.figure}: {report['wall_seconds']:.1f} s; wrote " + ", ".join(report["files"]))
    if report["failed"]:
        return _err(f"non-finite values in: {', '.join(report['failed'])} (see the report)", 1)
    return 0


def _demo(args) -> int:
    from ssjax.demo import run_demo

    if args.periods < 1:
        return _err("--periods must be >= 1", 2)
    summary = run_demo(
        args.out, n_periods=args.periods, hidden=args.hidden, seed=args.seed, r0=args.r0
    )
    print(json.dumps(summary, indent=2))
    return 0


REPRODUCE_OUT = "runs/reproduce"


def build_parser() -> argparse.ArgumentParser:
    """The ``ssjax`` argument parser."""
    p = argparse.ArgumentParser(prog="ssjax", description="SuperSpike in JAX")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train (or resume) a run described by a YAML config")
    t.add_argument("config", help="YAML file, e.g. configs/default.yaml")
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
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=_train)

    v = sub.add_parser("validate", help="check a config without running anything")
    v.add_argument("config")
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

    # handled in main() by ssjax.rules.compare's own parser; listed here for --help
    sub.add_parser(
        "compare", help="alignment of SuperSpike and BPTT updates on one block", add_help=False
    )

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


def main(argv=None) -> int:
    """Entry point of the ``ssjax`` command."""
    code = setup()
    if code is not None:
        return code
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["compare"]:  # its own parser takes every option that follows
        from ssjax.rules.compare import main as compare_main

        return compare_main(argv[1:])
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
