"""Hyper-parameter sweeps: conditions from a grid and zips of dotted keys, grouped by program.

A sweep is declared in the config's top-level ``sweep`` section, or on the command line
(``--sweep optimizer.r0=1e-2,5e-3``, one grid axis per flag)::

    sweep:
      grid:                      # every combination
        optimizer.r0: [1.0e-2, 5.0e-3, 1.0e-3]
        optimizer.name: [rmaxprop, fixed]
      zip:                       # varied together (equal lengths): one more grid axis
        regularizer.rho: [0.0, 1.0]
        regularizer.a: [4.0, 8.0]

A condition is the base config with its overrides applied (``--set`` style, validated like any
config; :func:`conditions` validates all of them before anything compiles, and an error names
the condition and the key). Conditions that differ only in traced hyper-parameters (the
optimiser's ``r0``, ``eps``, drop factors, ``tau_rms``; the rule's ``beta``, regulariser
``rho`` and ``a``; see :meth:`ssjax.train.TrainSpec.hyper`) share one compiled program:
:func:`groups` puts two conditions in one group when their
:meth:`~ssjax.train.TrainSpec.structure`, task and run settings are equal, and
:func:`group_runs` stacks a group's (condition x seed) runs along one axis, each run with its own
hyper-parameters (:func:`ssjax.experiment.seeds.make_segment_fn` with ``per_run=True``).

A condition's run ``c * S + k`` is seed ``k`` of condition ``c``: it starts from
``PRNGKey(run.seed + k)``, as that condition run alone, so with ``map`` batching its result is
bit-identical to the condition's own run (``vmap``: to float rounding).

Reference: issue 16; DESIGN.md (experiment layer).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import re
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ssjax.experiment.config import (
    Config,
    ConfigError,
    build_trainer,
    config_to_dict,
    load_config,
    run_dtype,
)
from ssjax.experiment.config.yaml_io import read_yaml
from ssjax.experiment.distributed import agree, is_primary
from ssjax.experiment.report import json_safe, seed_stats
from ssjax.experiment.runner import Part, RunError, Runs, check_workdir, exit_code, train_runs
from ssjax.experiment.seeds import init_states, seed_ids
from ssjax.experiment.tb import TBWriter
from ssjax.experiment.workdir import atomic_write, config_differences, open_workdir
from ssjax.train import Hyper, TrainSpec, TrainState

__all__ = [
    "Condition",
    "GroupRuns",
    "condition_dir",
    "conditions",
    "expand",
    "format_table",
    "group_runs",
    "groups",
    "hparams_of",
    "parse_sweep_items",
    "read_sweep",
    "sweep_table",
    "train_sweep",
]


@dataclasses.dataclass(frozen=True)
class Condition:
    """One point of a sweep: its name (``key=value,...``), overrides and validated config."""

    name: str
    overrides: tuple[str, ...]
    cfg: Config


def _fmt(v) -> str:
    return json.dumps(v) if isinstance(v, (list, dict)) else str(v)


def expand(spec: dict, where: str = "sweep") -> list[dict[str, object]]:
    """The conditions of a sweep section ``{"grid": {key: [values]}, "zip": {key: [values]}}``
    as ``[{key: value}]``, grid axes in the given order (the last varies fastest), the zip
    rows as one more axis. ConfigError (naming ``where``) for anything malformed."""
    if not isinstance(spec, dict) or not spec:
        raise ConfigError(where, "sweep", "expected a mapping with 'grid' and/or 'zip'")
    unknown = set(spec) - {"grid", "zip"}
    if unknown:
        raise ConfigError(where, f"sweep.{sorted(unknown)[0]}", "unknown key (valid: grid, zip)")
    axes: list[list[dict]] = []
    for part in ("grid", "zip"):
        body = spec.get(part) or {}
        if not isinstance(body, dict):
            raise ConfigError(where, f"sweep.{part}", "expected a mapping of dotted keys")
        for key, values in body.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(where, f"sweep.{part}.{key}", "expected a non-empty list")
        if part == "grid":
            axes += [[{k: v} for v in vs] for k, vs in body.items()]
        elif body:
            lengths = {k: len(v) for k, v in body.items()}
            if len(set(lengths.values())) > 1:
                raise ConfigError(
                    where, "sweep.zip", f"zipped lists must have equal lengths, got {lengths}"
                )
            n = next(iter(lengths.values()))
            axes.append([{k: body[k][i] for k in body} for i in range(n)])
    points = [dict(kv for d in combo for kv in d.items()) for combo in itertools.product(*axes)]
    names = [",".join(f"{k}={_fmt(v)}" for k, v in p.items()) for p in points]
    if len(set(names)) != len(names):
        raise ConfigError(where, "sweep", "two conditions are the same (a value is repeated)")
    return points


def parse_sweep_items(items, where: str = "--sweep") -> dict:
    """``["optimizer.r0=1e-2,5e-3", ...]`` (the CLI's ``--sweep``) as a sweep section (grid)."""
    grid: dict[str, list] = {}
    for item in items:
        key, sep, text = str(item).partition("=")
        key = key.strip()
        if not sep or "." not in key or not text.strip():
            raise ConfigError(
                where, key or None, f"malformed {item!r}: expected section.key=v1,v2,..."
            )
        if key in grid:
            raise ConfigError(where, key, "swept twice")
        grid[key] = [read_yaml(v.strip(), f"{where} {item!r}") for v in _split(text)]
    return {"grid": grid}


def _split(text: str) -> list[str]:
    """Split on commas outside brackets (a value may be a list: ``[1, 2],[3, 4]``)."""
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += ch in "[{"
        depth -= ch in "]}"
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    return [*out, cur]


def read_sweep(path) -> dict | None:
    """The ``sweep`` section of the YAML file ``path``, or None."""
    with open(path, encoding="utf-8") as fh:
        data = read_yaml(fh.read(), str(path)) or {}
    return data.get("sweep") if isinstance(data, dict) else None


def _yaml_value(v) -> str:
    return json.dumps(v)  # JSON is YAML: lists, numbers, strings and booleans round-trip


def conditions(path, overrides=(), sweep: dict | None = None) -> list[Condition]:
    """Every condition of the sweep (``sweep``, else the file's ``sweep`` section), validated.

    All are loaded and validated before the caller compiles anything; an invalid one raises
    ConfigError whose message starts ``sweep condition i (name):`` and names the key."""
    spec = sweep if sweep is not None else read_sweep(path)
    if spec is None:
        raise ConfigError(str(path), "sweep", "no sweep section and no --sweep given")
    out = []
    for i, point in enumerate(expand(spec, str(path))):
        name = ",".join(f"{k}={_fmt(v)}" for k, v in point.items())
        extra = tuple(f"{k}={_yaml_value(v)}" for k, v in point.items())
        try:
            cfg = load_config(path, [*overrides, *extra], sweep=True)
        except ConfigError as e:
            raise ConfigError(f"sweep condition {i} ({name}): {e.file}", e.key, e.message) from None
        out.append(Condition(name, extra, cfg))
    return out


def _group_key(c: Condition):
    d = config_to_dict(c.cfg)
    return (build_trainer(c.cfg).structure(), json.dumps([d["task"], d["run"]], sort_keys=True))


def groups(conds: list[Condition]) -> list[list[int]]:
    """Indices of the conditions that share a program, in order of first appearance: equal
    trainer structure (sizes, feedback kind, route, neuron, ...), task and run settings."""
    out: dict = {}
    for i, c in enumerate(conds):
        out.setdefault(_group_key(c), []).append(i)
    return list(out.values())


class GroupRuns(NamedTuple):
    """A group's runs stacked along one axis ``[C * S]`` (condition-major)."""

    trainer: TrainSpec  # the shared structure
    conds: list[int]  # indices into the sweep's conditions
    cond: list[int]  # per run: its condition (index into ``conds``)
    ids: list[int]  # per run: its seed id
    state: TrainState  # fresh states, leading axis [C * S]
    hyper: Hyper  # per-run hyper-parameters, leading axis [C * S]


def group_runs(conds: list[Condition], idx: list[int], dtype) -> GroupRuns:
    """Initial states and per-run hyper-parameters of the group ``idx`` of ``conds``."""
    trainers = [build_trainer(conds[i].cfg) for i in idx]
    structure = trainers[0].structure()
    ids_per = [seed_ids(conds[i].cfg) for i in idx]
    # each condition's own initial states: exactly what it would start from alone
    states = [init_states(t, ids, dtype) for t, ids in zip(trainers, ids_per, strict=True)]
    state = jax.tree.map(lambda *xs: jnp.concatenate(xs), *states)
    hypers = [t.hyper(dtype) for t in trainers]
    n = [len(ids) for ids in ids_per]

    def stack(*xs):
        per = [jnp.broadcast_to(x, (k, *jnp.shape(x))) for x, k in zip(xs, n, strict=True)]
        return jnp.concatenate(per)

    hyper = jax.tree.map(stack, *hypers)
    cond = [c for c, k in enumerate(n) for _ in range(k)]
    return GroupRuns(structure, list(idx), cond, [s for ids in ids_per for s in ids], state, hyper)


def condition_dir(i: int, cond: Condition) -> str:
    """The folder of condition ``i`` under the sweep's root: ``003-optimizer.r0=0.001``."""
    return f"{i:03d}-" + re.sub(r"[^A-Za-z0-9._=,+-]", "_", cond.name)[:150]


def _check_sweep(root: Path, listing: list[dict], override: bool) -> None:
    saved = root / SWEEP_JSON
    if not saved.exists():
        return
    try:
        old = json.loads(saved.read_text(encoding="utf-8"))["conditions"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        if override:
            return
        raise RunError(
            f"{saved} cannot be read ({e}); use --override-config to replace it"
        ) from None
    strip = [{k: c[k] for k in ("name", "dir")} for c in listing]
    if [{k: c.get(k) for k in ("name", "dir")} for c in old] != strip and not override:
        names = ", ".join(c.get("name", "?") for c in old)
        raise RunError(
            f"{root} holds a sweep of other conditions ({names}); use another --workdir, or "
            "--override-config to continue it with these"
        )


def sweep_table(conds: list[Condition], summaries: list[dict], histories: list[dict]) -> list:
    """Per condition: its name, seeds, the final van Rossum distance's median and quartiles over
    seeds (and the accuracy's, for classification), and ``success``: the fraction of seeds whose
    final distance is below that of their first pattern period (they learned)."""
    rows = []
    for c, s, h in zip(conds, summaries, histories, strict=True):
        final = np.asarray(s["final"]["van_rossum"], np.float64)
        row = {"condition": c.name, "seeds": len(final), "van_rossum": seed_stats(final)}
        first = np.asarray(h["van_rossum"][0], np.float64) if h["van_rossum"] else None
        row["success"] = None if first is None else float(np.mean(final < first))
        if "accuracy" in s["final"]:
            row["accuracy"] = seed_stats(s["final"]["accuracy"])
        rows.append(row)
    return rows


def format_table(rows: list) -> str:
    """The sweep table as Markdown."""

    def f(x):
        return "-" if x is None or not np.isfinite(x) else f"{x:.4g}"

    acc = any("accuracy" in r for r in rows)
    head = "| condition | seeds | van Rossum median [q1, q3] | success |" + (
        " accuracy median |" if acc else ""
    )
    lines = [head, "|" + "---|" * (5 if acc else 4)]
    for r in rows:
        v = r["van_rossum"]
        line = f"| {r['condition']} | {r['seeds']} | {f(v['median'])} [{f(v['q1'])}, "
        line += f"{f(v['q3'])}] | {f(r['success'])} |"
        if acc:
            line += f" {f(r.get('accuracy', {}).get('median'))} |"
        lines.append(line)
    return "\n".join(lines) + "\n"


SWEEP_JSON = "sweep.json"


def hparams_of(cond: Condition) -> dict:
    """The swept values of a condition as HParams values (lists as their JSON text)."""
    out: dict = {}
    for item in cond.overrides:
        key, _, text = item.partition("=")
        v = json.loads(text)
        out[key] = v if isinstance(v, (bool, int, float, str)) else json.dumps(v)
    out["run.seeds"] = cond.cfg.run.seeds
    return out


def _write_hparams(workdir: Path, cond: Condition) -> None:
    """The condition's hyper-parameters into its TensorBoard run, once (a resumed condition
    keeps the step-0 events of its first start)."""
    tb = workdir / "tb"
    if tb.exists():
        return
    writer = TBWriter(tb)
    try:
        writer.hparams(hparams_of(cond))
    finally:
        writer.close()


def train_sweep(
    conds: list[Condition],
    root,
    *,
    dirs: list[str] | None = None,
    override_config=False,
    fallback=False,
    progress=True,
) -> list:
    """Train every condition, each group of :func:`groups` as one compiled program; returns the
    :func:`sweep_table` rows.

    ``root`` is locked for the sweep and receives ``sweep.json`` (the conditions, their folders,
    at the end the table), ``sweep.md`` (the table), ``group-<hash>/checkpoints`` (one checkpoint
    of a group's condition x seed runs; the hash is of the group's condition names, so another
    set of conditions never meets it) and per condition ``<dir>/`` (``dirs``, default
    :func:`condition_dir`) with what a single
    run writes there (config.yaml, metrics.jsonl, tb/ with the seeds as one TensorBoard run,
    summary.json, history.json, plots), so a condition's folder reads like its own run's, plus
    the HParams plugin's summary of its swept values (``tensorboard --logdir <root>``: one run
    per condition, the seeds in one chart, the conditions compared in the HParams dashboard). A
    killed sweep resumes from the groups' checkpoints, bit-identically (CPU).

    With several processes (:mod:`ssjax.experiment.distributed`) each calls it with the same
    conditions; every group's run count must be a multiple of the process count (RunError
    before anything is written); the primary writes everything and returns the rows, the
    others return ``[]``."""
    root = Path(root)
    if dirs is None:
        dirs = [condition_dir(i, c) for i, c in enumerate(conds)]
    listing = [
        {"name": c.name, "dir": d, "overrides": list(c.overrides)}
        for c, d in zip(conds, dirs, strict=True)
    ]
    parts_of = groups(conds)
    n_proc = jax.process_count()
    for idx in parts_of:  # several processes: every group's runs shared evenly, checked first
        n_runs = sum(conds[i].cfg.run.seeds for i in idx)
        if n_runs % n_proc:
            names = ", ".join(conds[i].name for i in idx)
            raise RunError(
                f"the group of conditions {names} has {n_runs} runs (conditions x seeds), "
                f"which {n_proc} processes cannot share evenly; use a multiple of {n_proc}"
            )

    def start():  # the primary process alone reads and writes the folders
        lock = open_workdir(root)
        try:
            _check_sweep(root, listing, override_config)
            atomic_write(root / SWEEP_JSON, json.dumps({"conditions": listing}, indent=2))
        except BaseException:
            lock.release()
            raise
        return lock

    def open_group(idx):
        for i in idx:
            check_workdir(conds[i].cfg, root / listing[i]["dir"], override_config)
        for i in idx:
            _write_hparams(root / listing[i]["dir"], conds[i])

    with agree(start, exit_code) or contextlib.nullcontext():
        summaries: list = [None] * len(conds)
        for idx in parts_of:
            digest = hashlib.sha1("\n".join(conds[i].name for i in idx).encode()).hexdigest()
            agree(lambda idx=idx: open_group(idx), exit_code)
            cfg0 = conds[idx[0]].cfg
            g = group_runs(conds, idx, run_dtype(cfg0))
            parts, pos = [], 0
            for i in idx:
                n = conds[i].cfg.run.seeds
                tr = dataclasses.replace(
                    build_trainer(conds[i].cfg), on_nonfinite=cfg0.run.on_nonfinite
                )
                parts.append(Part(root / listing[i]["dir"], slice(pos, pos + n), conds[i].cfg, tr))
                pos += n
            config = {listing[i]["name"]: config_to_dict(conds[i].cfg) for i in idx}

            def diff(saved, config=config):
                return [
                    (f"{name}: {k}", a, b)
                    for name in dict.fromkeys([*saved, *config])
                    for k, a, b in config_differences(saved.get(name, {}), config.get(name, {}))
                ]

            runs = Runs(
                cfg=cfg0,
                trainer=dataclasses.replace(g.trainer, on_nonfinite=cfg0.run.on_nonfinite),
                ids=g.ids,
                template=g.state,
                hyper=g.hyper,
                parts=parts,
                checkpoints=root / f"group-{digest[:12]}" / "checkpoints",
                config=config,
                diff=diff,
            )
            for i, summary in zip(idx, train_runs(runs, override_config, fallback, progress),
                                  strict=True):  # fmt: skip
                summaries[i] = summary
        if not is_primary():
            return []
        histories = [
            json.loads((root / c["dir"] / "history.json").read_text(encoding="utf-8"))
            for c in listing
        ]
        rows = sweep_table(conds, summaries, histories)
        atomic_write(
            root / SWEEP_JSON,
            json.dumps(json_safe({"conditions": listing, "table": rows}), indent=2),
        )
        atomic_write(root / "sweep.md", format_table(rows))
    return rows
