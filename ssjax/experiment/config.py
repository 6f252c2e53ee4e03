"""Typed run configuration: YAML files, ``--set section.key=value`` overrides, validation.

A config has eight sections (network, neuron, rule, feedback, regularizer, optimizer, task, run),
each a frozen dataclass whose defaults are the paper's values (SUPERSPIKE.md; SI units: seconds,
volts, Hz). :func:`load_config` reads a YAML file, applies overrides and validates everything
before any compilation: unknown keys (with the nearest valid one), wrong types, out-of-range values
and missing or malformed data files each raise :class:`ConfigError`, whose message reads
``<file>: <section.key>: <problem, with the allowed range or values>``.

Validate once, build once: the Config that :func:`load_config` (or :func:`validate_config`)
returns is marked validated and holds what its task kind loaded from its data files (parsed once,
:mod:`ssjax.tasks.registry`); :func:`validate_config` returns such a Config as is, and the
builders (:func:`build_task`, :func:`build_heldout`) check nothing more. ``dataclasses.replace``
drops the mark (it does not copy the hidden field), so a Config changed in code is validated
again, its files re-read, the first time it is validated or built.

YAML is read with the YAML 1.2 core rules for booleans and floats: only ``true``/``false`` are
booleans (``yes``/``on`` stay strings and are rejected for a bool key), and ``5e-3`` is a float.
Data paths (``task.input``, ``task.target``, ``task.image``) are relative to the YAML file's
folder, paths given in overrides relative to the current directory; both are stored absolute, so a
dumped config loads back equal wherever it is written.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import operator
import os
import re
from types import SimpleNamespace
from typing import Any

import numpy as np
import yaml

from ssjax.experiment import paths
from ssjax.network import Network
from ssjax.neuron import INTEGRATORS, LIFParams
from ssjax.optim import OPTIMIZERS
from ssjax.rules.bptt import BPTTConfig
from ssjax.rules.feedback import FEEDBACKS
from ssjax.rules.superspike import METHODS, SuperSpikeConfig
from ssjax.spike import KINDS, Surrogate
from ssjax.tasks import registry
from ssjax.tasks.randman import RANDMAN_TAIL
from ssjax.train import RULES, TrainSpec

# fmt: off
__all__ = [
    "Config", "ConfigError", "FeedbackConfig", "NetworkConfig", "NeuronConfig", "OptimizerConfig",
    "RegularizerConfig", "RuleConfig", "RunConfig", "TaskConfig", "build_task", "build_trainer",
    "build_heldout", "config_to_dict", "default_config", "diff_configs", "dump_config",
    "load_config", "n_blocks", "validate_config",
]
# fmt: on


class ConfigError(ValueError):
    """Invalid configuration: ``str()`` is ``"<file>: <dotted.key>: <message>"``."""

    def __init__(self, file, key, message):
        self.file, self.key, self.message = str(file), key, message
        super().__init__(f"{self.file}: {key}: {message}" if key else f"{self.file}: {message}")


# ---------------------------------------------------------------------------------- sections


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    sizes: tuple[int, ...] = (100, 4, 1)  # N_in, hidden..., N_out
    w0: float = 0.05  # initial weight scale (V): std = w0 / sqrt(N_pre)
    w_min: float = -0.1  # weight clip (V)
    w_max: float = 0.1


@dataclasses.dataclass(frozen=True)
class NeuronConfig:
    theta: float = -0.050  # V
    u_rest: float = -0.060
    u_reset: float = -0.060
    tau_mem: float = 0.010  # s
    tau_syn: float = 0.005
    tau_ref: float = 0.005
    dt: float = 1.0e-4
    delay: float = 0.0  # axonal delay (s); the reference code's 0.8 ms is 8e-4
    integrator: str = "euler"
    surrogate: str = "superspike"
    beta: float = 1000.0  # 1/V
    v_floor: float = -0.03  # V, superspike_code only


@dataclasses.dataclass(frozen=True)
class RuleConfig:
    name: str = "superspike"
    reset_grad: bool = False
    tau_rise: float = 0.005  # s, eligibility / error filter
    tau_decay: float = 0.010
    hebbian_delay: float = 0.0
    sigma_prime: str = "surrogate"
    method: str = "dense"  # dense | event | stepwise (ssjax.rules.superspike)
    max_spikes: int = 4096


@dataclasses.dataclass(frozen=True)
class FeedbackConfig:
    kind: str = "symmetric"


@dataclasses.dataclass(frozen=True)
class RegularizerConfig:
    rho: float = 0.0  # reference-code units (the paper's rho = 1), ssjax.rules.regulariser
    a: float = 4.0
    tau: float = 0.1  # s
    error_dependent: bool = False
    layers: str = "hidden"


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    name: str = "rmaxprop"
    r0: float = 1.0e-3
    tau_rms: float = 30.0  # s
    eps: float = 1.0e-12
    burn_in: float = 20.0  # s
    drops: tuple[tuple[float, float], ...] = ((400.0, 0.1),)  # (time s, rate factor)


@dataclasses.dataclass(frozen=True)
class TaskConfig:
    # timing (generated), ras (files input/target), xor (classification), image (target draws
    # an image, ssbm recipe), randman (random-manifold classification)
    kind: str = "timing"
    n_in: int = 100
    n_out: int = 1
    rate_hz: float = 5.0
    period: float = 0.5  # s
    target_times: tuple[float, ...] = (0.083, 0.166, 0.249, 0.332, 0.415)  # s
    input_seed: int = 0
    input: str | None = None
    target: str | None = None
    id_offset: int = 0
    target_id_offset: int = 0
    n_patterns: int = 64  # xor: patterns in the frozen stream; randman: samples per class
    image: str | None = None  # image: PNG path (relative to the YAML folder); None: default_image()
    image_threshold: float = 0.5  # image: a pixel darker than this (0 black, 1 white) is a spike
    randman_dim: int = 1  # randman: intrinsic manifold dimension D
    randman_duration: float = 0.05  # s, randman: each unit fires once within it per sample
    gap: float = 0.05  # s, randman: silence after each sample (>= the 15 ms window tail)
    n_heldout: int = 32  # randman: held-out samples per class, xor: per kind; scored after training


@dataclasses.dataclass(frozen=True)
class RunConfig:
    seeds: int = 1
    seed: int = 0
    duration: float = 60.0  # s
    block: float = 0.5  # s
    checkpoint_every: int = 100  # blocks
    keep_checkpoints: int = 3
    log_every: int = 10
    raster_every: int = 100
    on_nonfinite: str = "halt"
    dtype: str = "float32"
    # seeds of one device: vmap (one batched program: needed on accelerators, and on CPU faster
    # for many seeds of a small network; seeds match single-seed runs to float rounding), map
    # (one seed after another, each bit-identical to a single-seed run), auto (map on CPU, vmap
    # elsewhere)
    seed_batching: str = "auto"


@dataclasses.dataclass(frozen=True)
class Config:
    network: NetworkConfig = dataclasses.field(default_factory=NetworkConfig)
    neuron: NeuronConfig = dataclasses.field(default_factory=NeuronConfig)
    rule: RuleConfig = dataclasses.field(default_factory=RuleConfig)
    feedback: FeedbackConfig = dataclasses.field(default_factory=FeedbackConfig)
    regularizer: RegularizerConfig = dataclasses.field(default_factory=RegularizerConfig)
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    task: TaskConfig = dataclasses.field(default_factory=TaskConfig)
    run: RunConfig = dataclasses.field(default_factory=RunConfig)
    source: str | None = dataclasses.field(default=None, compare=False)  # the YAML path
    # set by validation only (init=False: dataclasses.replace resets it to None)
    _checked: _Checked | None = dataclasses.field(
        default=None, init=False, compare=False, repr=False
    )


@dataclasses.dataclass(frozen=True, eq=False)
class _Checked:
    """The mark of a validated Config: what its task kind's ``load`` returned (None: no files)."""

    data: object


# section name -> dataclass, in schema order
_SECTIONS: dict[str, Any] = {  # section name -> its dataclass
    f.name: f.default_factory
    for f in dataclasses.fields(Config)
    if f.default_factory is not dataclasses.MISSING
}
_PATH_KEYS = ("task.input", "task.target", "task.image")

# ------------------------------------------------------------------------------------- types


class _TypeProblem(Exception):
    pass


def _is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _float(v):
    if not _is_num(v):
        raise _TypeProblem("a number")
    if not math.isfinite(v):
        raise _TypeProblem("a finite number")
    return float(v)


def _int(v):
    if not isinstance(v, int) or isinstance(v, bool):
        raise _TypeProblem("an integer (no decimal point)")
    return v


def _bool(v):
    if not isinstance(v, bool):
        raise _TypeProblem("a boolean (true or false)")
    return v


def _str(v):
    if not isinstance(v, str):
        raise _TypeProblem("a string")
    return v


def _list_of(item, what):
    def parse(v):
        if not isinstance(v, (list, tuple)):
            raise _TypeProblem(f"a list of {what}")
        try:
            return tuple(item(x) for x in v)
        except _TypeProblem:
            raise _TypeProblem(f"a list of {what}") from None

    return parse


def _pair(v):
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise _TypeProblem("a pair")
    return (_float(v[0]), _float(v[1]))


# Field annotation (a string under postponed evaluation) -> parser.
_PARSERS = {
    "float": _float, "int": _int, "bool": _bool, "str": _str,
    "str | None": lambda v: None if v is None else _str(v),
    "tuple[int, ...]": _list_of(_int, "integers"),
    "tuple[float, ...]": _list_of(_float, "numbers"),
    "tuple[tuple[float, float], ...]": _list_of(_pair, "[time, factor] pairs of numbers"),
}  # fmt: skip

# ------------------------------------------------------------------------------------ ranges


def _multiple(x, q):
    return q > 0 and abs(x / q - round(x / q)) <= 1e-6


def _gt0(key, unit=""):
    return (key, lambda v, c: v > 0, f"> 0{unit}")


def _ge0(key, unit=""):
    return (key, lambda v, c: v >= 0, f">= 0{unit}")


def _int_ge(key, lo):
    return (key, lambda v, c: v >= lo, f"an integer >= {lo}")


def _tau(key):
    return (key, lambda v, c: v > c.neuron.dt, lambda c: f"> 0 and > neuron.dt = {c.neuron.dt} s")


def _on_grid(key, lo=">= 0"):
    ok = (lambda v: v >= 0) if lo == ">= 0" else (lambda v: v > 0)
    return (
        key,
        lambda v, c: ok(v) and _multiple(v, c.neuron.dt),
        lambda c: f"{lo} s and a multiple of neuron.dt = {c.neuron.dt} s",
    )


def _choice(key, options):
    return (key, lambda v, c: v in options, "one of " + ", ".join(repr(o) for o in options))


def _rel(key, op, other, unit=""):
    """``key op other`` with ``other`` another dotted key, e.g. theta > neuron.u_rest."""
    cmp = {">": operator.gt, "<": operator.lt}[op]
    sec, name = other.split(".")
    get = lambda c: getattr(getattr(c, sec), name)  # noqa: E731
    return (key, lambda v, c: cmp(v, get(c)), lambda c: f"{op} {other} = {get(c)}{unit}")


def _sizes_ok(v, c):
    return len(v) >= 2 and min(v) >= 1 and v[0] == c.task.n_in and v[-1] == c.task.n_out


TASK_KINDS = registry.names()
# tasks whose targets are window annotations (classification) rather than spike trains
WINDOW_TASKS = registry.window_kinds()


def _sizes_text(c):
    return (
        f"a list of >= 2 positive integers, first == task.n_in = {c.task.n_in} and "
        f"last == task.n_out = {c.task.n_out}"
    )


def _rate_ok(v, c):
    return v >= 0 and v * c.neuron.dt <= 1


# (dotted key, predicate(value, all values), allowed text or text(all values)); checked in order,
# so that a value other checks refer to (neuron.dt first) is known to be valid when they run.
# Key-level ranges, whatever task.kind; each kind's own checks follow (ssjax.tasks.registry).
# fmt: off
_CHECKS = [
    _gt0("neuron.dt", " s"), _tau("neuron.tau_mem"), _tau("neuron.tau_syn"),
    _on_grid("neuron.tau_ref"),
    _rel("neuron.theta", ">", "neuron.u_rest", " V"),
    _rel("neuron.u_reset", "<", "neuron.theta", " V"),
    _on_grid("neuron.delay"),
    _choice("neuron.integrator", INTEGRATORS), _choice("neuron.surrogate", KINDS),
    _gt0("neuron.beta", " 1/V"),
    _int_ge("task.n_in", 1), _int_ge("task.n_out", 1), ("network.sizes", _sizes_ok, _sizes_text),
    _ge0("network.w0", " V"), _rel("network.w_min", "<", "network.w_max", " V"),
    _choice("rule.name", RULES), _tau("rule.tau_rise"), _tau("rule.tau_decay"),
    _rel("rule.tau_rise", "<", "rule.tau_decay", " s"),
    _on_grid("rule.hebbian_delay"), _choice("rule.sigma_prime", ("surrogate", "one")),
    _choice("rule.method", METHODS), _int_ge("rule.max_spikes", 1),
    _choice("feedback.kind", FEEDBACKS),
    _ge0("regularizer.rho"), _ge0("regularizer.a"), _tau("regularizer.tau"),
    _choice("regularizer.layers", ("hidden", "all")),
    _choice("optimizer.name", OPTIMIZERS), _gt0("optimizer.r0"), _gt0("optimizer.tau_rms", " s"),
    _ge0("optimizer.eps"), _ge0("optimizer.burn_in", " s"),
    ("optimizer.drops", lambda v, c: all(t >= 0 and f >= 0 for t, f in v),
     "a list of [time >= 0 s, factor >= 0] pairs"),
    _choice("task.kind", TASK_KINDS),
    _int_ge("task.n_patterns", 1),
    ("task.image_threshold", lambda v, c: 0 < v <= 1,
     "> 0 and <= 1 (pixel values: 0 black, 1 white)"),
    _int_ge("task.randman_dim", 1), _int_ge("task.n_heldout", 0),
    _on_grid("task.randman_duration", "> 0"),
    ("task.gap", lambda v, c: v >= RANDMAN_TAIL - 1e-12 and _multiple(v, c.neuron.dt),
     lambda c: f">= {RANDMAN_TAIL} s (the window's response tail) and a multiple of "
     f"neuron.dt = {c.neuron.dt} s"),
    ("task.rate_hz", _rate_ok, lambda c: f">= 0 Hz and <= 1 / neuron.dt = {1 / c.neuron.dt:g} Hz"),
    _on_grid("task.period", "> 0"),
    _int_ge("task.input_seed", 0),
    _int_ge("run.seeds", 1), _int_ge("run.seed", 0), _gt0("run.duration", " s"),
    _on_grid("run.block", "> 0"),
    ("run.duration", lambda v, c: _multiple(v, c.run.block),
     lambda c: f"> 0 s and a multiple of run.block = {c.run.block} s"),
    *(_int_ge(f"run.{k}", 1)
      for k in ("checkpoint_every", "keep_checkpoints", "log_every", "raster_every")),
    _choice("run.on_nonfinite", ("halt", "skip")), _choice("run.dtype", ("float32", "float64")),
    _choice("run.seed_batching", ("auto", "vmap", "map")),
]
# fmt: on

# -------------------------------------------------------------------------------- validation


def _unknown(file, key, name, valid):
    near = difflib.get_close_matches(name, valid, n=1)
    hint = f"did you mean '{near[0]}'? " if near else ""
    return ConfigError(file, key, f"unknown key; {hint}(valid: {', '.join(valid)})")


def _run_checks(checks, vals, c, file, overridden):
    """Raise ConfigError for the first ``(key, ok, allowed)`` of ``checks`` that fails."""
    for key, ok, allowed in checks:
        sec, name = key.split(".")
        v = vals[sec][name]
        if not ok(v, c):
            text = allowed(c) if callable(allowed) else allowed
            hint = ""
            if isinstance(v, str) and text.startswith("one of "):
                near = difflib.get_close_matches(v, re.findall(r"'([^']*)'", text), n=1)
                hint = f"; did you mean '{near[0]}'?" if near else ""
            raise ConfigError(
                file, key, f"must be {text}, got {_plain(v)!r}{hint}" + _origin(key, overridden)
            )


def _check_values(raw, file, overridden=()):
    """Type-check, range-check and resolve ``raw`` ({section: {key: value}}); returns Config.

    The key-level ranges of every section first (_CHECKS), then the checks of the task kind."""
    vals = {}
    for sec, cls in _SECTIONS.items():
        vals[sec] = {}
        for f in dataclasses.fields(cls):
            key, v = f"{sec}.{f.name}", raw[sec][f.name]
            try:
                vals[sec][f.name] = _PARSERS[f.type](v)
            except _TypeProblem as exc:
                raise ConfigError(
                    file,
                    key,
                    f"expected {exc}, got {v!r} ({type(v).__name__})" + _origin(key, overridden),
                ) from None
    c = SimpleNamespace(**{s: SimpleNamespace(**d) for s, d in vals.items()})
    _run_checks(_CHECKS, vals, c, file, overridden)
    _run_checks(registry.get(c.task.kind).checks, vals, c, file, overridden)
    return Config(**{s: _SECTIONS[s](**d) for s, d in vals.items()})


def _origin(key, overridden):
    return " (value from --set)" if key in overridden else ""


def _validate(raw, file, source, overridden=()) -> Config:
    """Values (_check_values), then the task kind's data files (read once); returns the Config
    with ``source`` set, marked validated and holding the loaded data."""
    cfg = _check_values(raw, file, overridden)
    kind = registry.get(cfg.task.kind)
    data = None
    if kind.load is not None:
        task = registry.task_view(kind, cfg.task)
        try:
            data = kind.load(task, cfg.neuron.dt, np.dtype(cfg.run.dtype))
        except registry.TaskError as exc:
            raise ConfigError(file, exc.key, exc.message) from None
    cfg = dataclasses.replace(cfg, source=source)
    object.__setattr__(cfg, "_checked", _Checked(data))  # a new object: nobody else holds it
    return cfg


def _label(cfg):
    return cfg.source or "<config>"


def validate_config(cfg: Config) -> Config:
    """Validate a Config built in code (e.g. with dataclasses.replace); returns it validated.

    A Config that load_config or validate_config returned is already validated and comes back
    as is (nothing is checked or read again); otherwise the result is a new, equal Config with
    the values normalised (tuples, floats) and the task's data files read."""
    if cfg._checked is not None:
        return cfg
    return _validate(config_to_dict(cfg), _label(cfg), cfg.source)


# ---------------------------------------------------------------------------------- loading


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core booleans (true/false only) and floats (``5e-3``)."""


_BOOL, _FLOAT = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:float"
_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in lst if tag not in (_BOOL, _FLOAT)]
    for ch, lst in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _yaml(text, where):
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: safe
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = f"{where}, line {mark.line + 1}" if mark is not None else where
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(loc, None, f"YAML syntax error: {problem}") from None


def default_config() -> Config:
    """The paper's values (see the section dataclasses)."""
    return Config()


def _resolve_path(value: str, base: str, file: str, key: str) -> str:
    """Absolute path of the data path ``value`` of ``key``: ``data:<rel>`` under the data root,
    else relative to the folder ``base`` (:func:`ssjax.experiment.paths.resolve_data_path`);
    ConfigError naming ``file`` and ``key`` when there is no data root."""
    try:
        return paths.resolve_data_path(value, base)
    except paths.PathError as exc:
        raise ConfigError(file, key, str(exc)) from None


def load_config(path, overrides=()) -> Config:
    """Read ``path`` (YAML), apply ``overrides`` (``"section.key=value"``, values parsed as YAML)
    and validate, data files included (each parsed once: the result holds the data, see the
    module docstring); raises ConfigError."""
    file = os.fspath(path)
    try:
        with open(file, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, None, f"cannot read config file: {exc}") from None
    data = _yaml(text, file)
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(
            file,
            None,
            "the top level must be a mapping of sections "
            f"({', '.join(_SECTIONS)}), got {type(data).__name__}",
        )
    raw = config_to_dict(Config())
    for sec, body in data.items():
        if sec not in _SECTIONS:
            raise _unknown(file, str(sec), str(sec), list(_SECTIONS))
        if body is None:
            continue
        if not isinstance(body, dict):
            raise ConfigError(file, sec, f"expected a mapping of keys, got {body!r}")
        for key, v in body.items():
            if key not in raw[sec]:
                raise _unknown(file, f"{sec}.{key}", str(key), list(raw[sec]))
            raw[sec][key] = v
    base = os.path.dirname(os.path.abspath(file))
    for key in _PATH_KEYS:  # file paths: relative to the YAML folder
        sec, name = key.split(".")
        if isinstance(raw[sec][name], str):
            raw[sec][name] = _resolve_path(raw[sec][name], base, file, key)
    overridden = set()
    for item in overrides:
        key, sep, text = str(item).partition("=")
        key = key.strip()
        if not sep:
            raise ConfigError(
                file,
                key or None,
                f"malformed override {item!r}: expected section.key=value, e.g. run.seeds=4",
            )
        sec, dot, name = key.partition(".")
        if not dot:
            raise ConfigError(
                file,
                key,
                f"malformed override {item!r}: expected "
                "section.key=value (a whole section cannot be set)",
            )
        if sec not in _SECTIONS:
            raise _unknown(file, key, sec, list(_SECTIONS))
        if name not in raw[sec]:
            raise _unknown(file, key, name, list(raw[sec]))
        v = _yaml(text, f"{file} (override {item!r})")
        if key in _PATH_KEYS and isinstance(v, str):  # relative to the current directory
            v = _resolve_path(v, os.getcwd(), file, key)
        raw[sec][name] = v
        overridden.add(key)
    return _validate(raw, file, file, overridden)


# ------------------------------------------------------------------------------- dict, dump


def _plain(v):
    return [_plain(x) for x in v] if isinstance(v, (tuple, list)) else v


def config_to_dict(cfg: Config) -> dict:
    """Nested plain dict (lists, not tuples) of all sections; ``source`` is left out."""
    return {
        sec: {f.name: _plain(getattr(getattr(cfg, sec), f.name)) for f in dataclasses.fields(cls)}
        for sec, cls in _SECTIONS.items()
    }


def dump_config(cfg: Config, path) -> None:
    """Write ``cfg`` as YAML; ``load_config(path) == cfg``."""
    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=None)
    with open(os.fspath(path), "w", encoding="utf-8") as fh:
        origin = f" from {cfg.source}" if cfg.source else ""
        fh.write(f"# ssjax config (written by dump_config{origin})\n" + text)


def diff_configs(a: Config, b: Config) -> list[tuple[str, object, object]]:
    """``(dotted key, value in a, value in b)`` for every key that differs, in schema order."""
    da, db = config_to_dict(a), config_to_dict(b)
    return [(f"{s}.{k}", da[s][k], db[s][k]) for s in da for k in da[s] if da[s][k] != db[s][k]]


# ------------------------------------------------------------------------------------ build


def n_blocks(cfg: Config) -> int:
    """Number of blocks of a run: ``run.duration / run.block``."""
    return int(round(cfg.run.duration / cfg.run.block))


def build_trainer(cfg: Config):
    """The :class:`ssjax.train.TrainSpec` the config describes (validates first)."""
    cfg = validate_config(cfg)
    n, r, g, o = cfg.neuron, cfg.rule, cfg.regularizer, cfg.optimizer

    def pick(obj, names, prefix=""):
        return {prefix + k: getattr(obj, k) for k in names.split()}

    try:
        surrogate = Surrogate(kind=n.surrogate, beta=n.beta, v_floor=n.v_floor)
        lif = pick(n, "theta u_rest u_reset tau_mem tau_syn tau_ref dt delay integrator")
        neuron = LIFParams(**lif, reset_grad=r.reset_grad, surrogate=surrogate)
        net = Network(cfg.network.sizes, neuron, **pick(cfg.network, "w0 w_min w_max"))
        error = "window" if cfg.task.kind in WINDOW_TASKS else "van_rossum"
        rule: BPTTConfig | SuperSpikeConfig
        if r.name == "bptt":
            rule = BPTTConfig(tau_rise=r.tau_rise, tau_decay=r.tau_decay, error=error)
        else:
            rule = SuperSpikeConfig(
                feedback=cfg.feedback.kind,
                error=error,
                **pick(r, "tau_rise tau_decay hebbian_delay sigma_prime method max_spikes"),
                **pick(g, "rho a tau error_dependent layers", prefix="het_"),
            )
            rule.delay_steps(n.dt)
        return TrainSpec(
            net,
            rule=rule,
            optimizer=o.name,
            **pick(o, "r0 tau_rms eps burn_in"),
            drops=tuple(tuple(d) for d in o.drops),
            block_steps=int(round(cfg.run.block / n.dt)),
        )
    except ValueError as exc:
        raise ConfigError(_label(cfg), None, f"invalid configuration: {exc}") from None


def _kind_of(cfg: Config) -> tuple[Config, registry.TaskKind, object, float, np.dtype]:
    """``(cfg validated, its task kind, the kind's view of cfg.task, neuron.dt, run.dtype)``;
    a validated Config (load_config's) is taken as is."""
    cfg = validate_config(cfg)
    kind = registry.get(cfg.task.kind)
    return cfg, kind, registry.task_view(kind, cfg.task), cfg.neuron.dt, np.dtype(cfg.run.dtype)


def build_heldout(cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """Held-out stream of a window task ``(inputs [T, n_in], code [T, n_out])`` in ``run.dtype``.

    The task kind's ``heldout`` (ssjax.tasks.registry). randman: ``task.n_heldout`` new samples
    per class of the training stream's manifolds, after one ``task.gap`` of silence; xor:
    ``task.n_heldout`` patterns of each of the 4 kinds with the training stream's stimulus timing
    but a new order, new gaps and new background noise (ssjax.tasks.randman, ssjax.tasks.xor).
    Raises ConfigError unless the kind has a held-out set and ``task.n_heldout >= 1``.
    """
    cfg, kind, task, dt, dtype = _kind_of(cfg)
    if kind.heldout is None or cfg.task.n_heldout < 1:
        have = " or ".join(sorted(n for n in TASK_KINDS if registry.get(n).heldout is not None))
        raise ConfigError(
            _label(cfg), "task.n_heldout", f"a held-out set needs task.kind {have} and >= 1"
        )
    assert cfg._checked is not None  # validate_config attaches it
    return kind.heldout(task, dt, dtype, cfg._checked.data)


def build_task(cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """One pattern period: ``(inputs [P, N_in], targets [P, N_out])`` in ``run.dtype``.

    For window tasks (WINDOW_TASKS) the period is the whole frozen stream and the targets are its
    window annotation; for image, P = task.period / neuron.dt and the targets draw the image.
    The task kind's ``build`` (ssjax.tasks.registry), on the data files read at validation.
    """
    cfg, kind, task, dt, dtype = _kind_of(cfg)
    assert cfg._checked is not None  # validate_config attaches it
    return kind.build(task, dt, dtype, cfg._checked.data)
