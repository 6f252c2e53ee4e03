"""Loading and validation: YAML file and ``--set`` overrides in, a validated :class:`Config` out.

:func:`load_config` reads a YAML file, applies overrides and validates everything before any
compilation. Unknown keys (with the nearest valid one, or where a key of an earlier schema moved),
wrong types, out-of-range values and missing or malformed data files each raise
:class:`ConfigError`, whose message reads ``<file>: <section.key>: <problem, with the allowed
range or values>``.

Validation runs the parameters' own declarations (:func:`ssjax.params.check_scopes` over all
sections, so that checks across sections run too), then the few rules that relate sections
without belonging to one parameter (:data:`_CROSS`), then the chosen task kind's checks, then
loads its data files.

Validate once, build once: the Config that :func:`load_config` (or :func:`validate_config`)
returns is marked validated and holds what its task kind loaded from its data files (parsed once,
:mod:`ssjax.tasks.registry`); :func:`validate_config` returns such a Config as is, and the
builders check nothing more. ``dataclasses.replace`` drops the mark (it does not copy the hidden
field), so a Config changed in code is validated again, its files re-read.

Data paths (``task.input``, ``task.target``, ``task.image``) are relative to the YAML file's
folder, paths given in overrides relative to the current directory, and ``data:<path>`` is under
the data root (:mod:`ssjax.experiment.paths`); all are stored absolute, so a dumped config loads
back equal wherever it is written.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import typing
from types import SimpleNamespace

import numpy as np

from ssjax.classification import READOUTS
from ssjax.data.batches import n_batches
from ssjax.experiment import paths
from ssjax.experiment.config.errors import ConfigError
from ssjax.experiment.config.schema import (
    MOVED,
    SECTIONS,
    Config,
    _Checked,
    is_trial,
    variant_keys,
)
from ssjax.experiment.config.yaml_io import config_to_dict, plain, read_yaml
from ssjax.optim import from_name
from ssjax.params import Check, ParamError, TypeProblem, check_scopes, parse
from ssjax.tasks import registry
from ssjax.tasks.trials import TrialData, split_validation

__all__ = ["default_config", "load_config", "trial_optimizer", "validate_config"]

_PATH_KEYS = (
    "task.input",
    "task.target",
    "task.image",
    "task.train_file",
    "task.test_file",
    "task.folder",
    "task.test_folder",
    "task.labels_file",
)


def _sizes_ok(v, c) -> bool:
    return v[0] == c.task.n_in and v[-1] == c.task.n_out


def _needs_stepwise(c) -> str:
    """Why SuperSpike's fast routes cannot run this config ('' if they can): they hold LIF's
    closed forms of a feed-forward network (``SUPPORTED_NEURONS``)."""
    if c.rule.name != "superspike":
        return ""
    if c.neuron.model != "lif":
        return f"neuron.model {c.neuron.model!r}"
    if any(c.network.recurrent):
        return f"network.recurrent {list(c.network.recurrent)}"
    return ""


def _route_ok(v, c) -> bool:
    return v == "stepwise" or not _needs_stepwise(c)


def _readout_ok(v, c) -> bool:
    """Trial kinds: SuperSpike trains output spikes; the LI readout takes LIF's membrane."""
    if not is_trial(c):
        return True
    spikes = READOUTS[v].outputs == "spikes"
    return spikes if c.rule.name == "superspike" else spikes or c.neuron.model == "lif"


# Rules between sections that no single parameter owns: (dotted key, check).
_CROSS = [
    (
        "rule.method",
        Check(
            _route_ok,
            lambda c: (
                f"'stepwise' with {_needs_stepwise(c)} (the fast routes are LIF's closed "
                "forms of a feed-forward network)"
            ),
            ("rule.name", "neuron.model", "network.recurrent"),
        ),
    ),
    (
        "network.sizes",
        Check(
            _sizes_ok,
            lambda c: f"first == task.n_in = {c.task.n_in} and last == task.n_out = {c.task.n_out}",
            ("task.n_in", "task.n_out"),
        ),
    ),
    (
        "readout.name",
        Check(
            _readout_ok,
            lambda c: (
                "'count_ce', 'count_mse' or 'first_spike' with rule.name 'superspike' (it "
                "trains the output spikes)"
                if c.rule.name == "superspike"
                else f"a spike readout with neuron.model {c.neuron.model!r} (the LI readout "
                "takes LIF's membrane)"
            ),
            ("rule.name", "task.kind", "neuron.model"),
        ),
    ),
]


def _origin(key, overridden) -> str:
    return " (value from --set)" if key in overridden else ""


def _unknown(file, key, name, valid):
    moved = MOVED.get(key)
    if moved is not None:
        return ConfigError(file, key, f"this key is now {moved}")
    near = difflib.get_close_matches(name, valid, n=1)
    hint = f"did you mean '{near[0]}'? " if near else ""
    return ConfigError(file, key, f"unknown key; {hint}(valid: {', '.join(valid)})")


def _error(file, key, message, overridden):
    hint = ""
    m = re.match(r"must be one of (.*), got '([^']*)'$", message)
    if m:
        near = difflib.get_close_matches(m.group(2), re.findall(r"'([^']*)'", m.group(1)), n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
    return ConfigError(file, key, message + hint + _origin(key, overridden))


def _run_kind_checks(checks, c, file, overridden):
    for key, ok, allowed in checks:
        sec, name = key.split(".")
        v = getattr(getattr(c, sec), name)
        if not ok(v, c):
            text = allowed(c) if callable(allowed) else allowed
            raise _error(file, key, f"must be {text}, got {plain(v)!r}", overridden)


def _check_values(raw, file, overridden=()) -> Config:
    """Type-check, range-check and resolve ``raw`` ({section: {key: value}}); returns Config."""
    vals: dict[str, dict] = {}
    for sec, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        vals[sec] = {}
        for f in dataclasses.fields(cls):
            key, v = f"{sec}.{f.name}", raw[sec][f.name]
            try:
                vals[sec][f.name] = parse(hints[f.name], v)
            except TypeProblem as exc:
                raise ConfigError(
                    file,
                    key,
                    f"expected {exc}, got {v!r} ({type(v).__name__})" + _origin(key, overridden),
                ) from None
    sections = {s: SECTIONS[s](**d) for s, d in vals.items()}
    c = SimpleNamespace(**sections)

    def fail(err: ParamError):
        raise _error(file, err.key, err.message, overridden)

    # the variants first: which keys of the union sections count depends on them
    check_scopes(
        {"rule": c.rule, "task": c.task, "neuron": c.neuron},
        c,
        skip=[
            f"{s}.{f.name}"
            for s in ("rule", "task", "neuron")
            for f in dataclasses.fields(SECTIONS[s])
            if f.name not in ("name", "kind", "model")
        ],
        on_error=fail,
    )
    # a key the chosen rule or task kind does not declare must keep its default
    unused = []
    for sec, keys in variant_keys(c).items():
        default = SECTIONS[sec]()
        for f in dataclasses.fields(SECTIONS[sec]):
            if f.name in keys:
                continue
            unused.append(f"{sec}.{f.name}")
            if vals[sec][f.name] != getattr(default, f.name):
                mode = "a trial" if is_trial(c) else "a pattern"
                who = {
                    "rule": f"rule.name {c.rule.name!r}"
                    + (" with a trial task.kind (the readout is the loss)" if is_trial(c) else ""),
                    "task": f"task.kind {c.task.kind!r}",
                    "neuron": f"neuron.model {c.neuron.model!r}",
                    **{
                        s: f"task.kind {c.task.kind!r} ({mode} task)"
                        for s in ("optimizer", "readout", "trials", "run")
                    },
                }
                owner = who.get(sec, f"rule.name {c.rule.name!r} (no regulariser)")
                fail(
                    ParamError(
                        f"{sec}.{f.name}",
                        f"not a key of {owner}; it reads: {', '.join(keys) or 'none'}",
                    )
                )
    check_scopes(sections, c, skip=unused, on_error=fail)
    for key, chk in _CROSS:
        sec, name = key.split(".")
        v = vals[sec][name]
        if not chk.ok(v, c):
            fail(ParamError(key, f"must be {chk.text(c)}, got {plain(v)!r}"))
    _run_kind_checks(registry.get(c.task.kind).checks, c, file, overridden)
    return Config(**sections)


def _floats(v):
    if isinstance(v, float):
        yield v
    elif isinstance(v, (tuple, list)):
        for x in v:
            yield from _floats(x)


def _check_representable(cfg: Config, file, overridden) -> None:
    """Every float must survive the cast to ``run.dtype``: one that overflows to inf (or a
    nonzero one that underflows to 0) would change the run silently."""
    info = np.finfo(np.dtype(cfg.run.dtype))
    big, small = float(info.max), float(info.smallest_subnormal)
    for sec, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            for x in _floats(getattr(getattr(cfg, sec), f.name)):
                if np.isfinite(x) and (abs(x) > big or 0 < abs(x) < small / 2):
                    what = "overflows" if abs(x) > big else "underflows to 0 in"
                    raise _error(
                        file,
                        f"{sec}.{f.name}",
                        f"{x!r} {what} run.dtype {cfg.run.dtype} (magnitudes {small:.3g} .. "
                        f"{big:.4g}); use run.dtype: float64 or a value in that range",
                        overridden,
                    )


def _validate(raw, file, source, overridden=()) -> Config:
    """Values (_check_values, _check_representable), then the task kind's data files (read
    once); returns the Config with ``source`` set, marked validated and holding the loaded
    data."""
    cfg = _check_values(raw, file, overridden)
    _check_representable(cfg, file, overridden)
    kind = registry.get(cfg.task.kind)
    data = None
    if kind.load is not None:
        task = registry.task_view(kind, cfg.task)
        try:
            data = kind.load(task, cfg.neuron.dt, np.dtype(cfg.run.dtype))
        except registry.TaskError as exc:
            raise ConfigError(file, exc.key, exc.message) from None
    if kind.trials:
        assert isinstance(data, TrialData)  # a trial kind's load returns it
        _check_trials(cfg, data, file, overridden)
    cfg = dataclasses.replace(cfg, source=source)
    object.__setattr__(cfg, "_checked", _Checked(data))  # a new object: nobody else holds it
    return cfg


def trial_optimizer(optimizer):
    """The optax transformation of a trial config's ``optimizer`` section:
    ``ssjax.optim.from_name(name, learning_rate=learning_rate, **kwargs)``, where
    ``kwargs.learning_rate`` may replace the number by a schedule (``{schedule: name, ...}``,
    :func:`ssjax.optim.schedule_from_name`); ValueError with the key (``(dotted key,
    message)`` in ``args``) when it cannot be built."""
    kwargs = {"learning_rate": optimizer.learning_rate, **optimizer.kwargs}
    if "learning_rate" in optimizer.kwargs:  # only a schedule: a number is learning_rate's
        lr = optimizer.kwargs["learning_rate"]
        if not (isinstance(lr, dict) and "schedule" in lr):
            raise ValueError(
                "optimizer.kwargs",
                "learning_rate here must be a schedule ({schedule: name, ...}); a number is "
                "optimizer.learning_rate",
            )
        if optimizer.learning_rate != 1e-3:
            raise ValueError(
                "optimizer.learning_rate",
                "set either it or a schedule in optimizer.kwargs.learning_rate, not both",
            )
    try:
        return from_name(optimizer.name, **kwargs)
    except (TypeError, ValueError) as exc:
        key = "optimizer.learning_rate" if "'learning_rate'" in str(exc) else "optimizer.kwargs"
        raise ValueError(key, str(exc)) from None


def _check_trials(cfg: Config, data: TrialData, file, overridden) -> None:
    """What a trial config's values say about its data: a validation split that holds trials,
    batches, the SuperSpike window and target times inside a trial, and the optimiser."""
    t = cfg.trials
    try:
        trial_optimizer(cfg.optimizer)
    except ValueError as exc:
        key, msg = exc.args
        raise _error(file, key, msg, overridden) from None
    train, val = split_validation(data.train, t.validation_fraction, t.split_seed)
    n = data.train.n_trials
    if val is not None and (val.n_trials == 0 or train.n_trials == 0):
        raise _error(
            file,
            "trials.validation_fraction",
            f"{t.validation_fraction} of {n} trials leaves {val.n_trials} for validation and "
            f"{train.n_trials} for training; both need at least one",
            overridden,
        )
    if n_batches(train.n_trials, t.batch_size, t.drop_last) == 0:
        raise _error(
            file,
            "trials.batch_size",
            f"{t.batch_size} > the {train.n_trials} training trials with trials.drop_last: "
            "an epoch would have no batch",
            overridden,
        )
    if cfg.rule.name != "superspike":
        return
    duration = data.train.duration
    if t.error == "window" and t.window_start >= duration:
        raise _error(
            file,
            "trials.window_start",
            f"must be < the trial length {duration:g} s, got {t.window_start!r}",
            overridden,
        )
    if t.error == "van_rossum" and max(t.target_times) >= duration:
        raise _error(
            file,
            "trials.target_times",
            f"must lie in [0, {duration:g} s) (the trial), got {list(t.target_times)}",
            overridden,
        )


def label(cfg: Config) -> str:
    return cfg.source or "<config>"


def validate_config(cfg: Config) -> Config:
    """Validate a Config built in code (e.g. with dataclasses.replace); returns it validated.

    A Config that load_config or validate_config returned is already validated and comes back
    as is (nothing is checked or read again); otherwise the result is a new, equal Config with
    the values normalised (tuples, floats) and the task's data files read."""
    if cfg._checked is not None:
        return cfg
    return _validate(config_to_dict(cfg), label(cfg), cfg.source)


def default_config() -> Config:
    """The paper's values (the library's declarations, :mod:`ssjax.experiment.config.schema`)."""
    return Config()


def _resolve_path(value: str, base: str, file: str, key: str) -> str:
    """Absolute path of the data path ``value`` of ``key``: ``data:<rel>`` under the data root,
    else relative to the folder ``base`` (:func:`ssjax.experiment.paths.resolve_data_path`);
    ConfigError naming ``file`` and ``key`` when there is no data root."""
    try:
        return paths.resolve_data_path(value, base)
    except paths.PathError as exc:
        raise ConfigError(file, key, str(exc)) from None


def load_config(path, overrides=(), *, sweep: bool = False) -> Config:
    """Read ``path`` (YAML), apply ``overrides`` (``"section.key=value"``, values parsed as YAML)
    and validate, data files included (each parsed once: the result holds the data, see the
    module docstring); raises ConfigError. A top-level ``sweep`` section is refused unless
    ``sweep`` (the caller runs the sweep: :mod:`ssjax.experiment.sweep`), which ignores it."""
    file = os.fspath(path)
    try:
        with open(file, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, None, f"cannot read config file: {exc}") from None
    data = read_yaml(text, file)
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(
            file,
            None,
            "the top level must be a mapping of sections "
            f"({', '.join(SECTIONS)}), got {type(data).__name__}",
        )
    raw = config_to_dict(Config())
    if "sweep" in data:
        if not sweep:
            raise ConfigError(
                file,
                "sweep",
                "this config declares a sweep: run it with `ssjax train CONFIG --sweep` "
                "(or ssjax.experiment.sweep.conditions), or remove the section",
            )
        data = {k: v for k, v in data.items() if k != "sweep"}
    for sec, body in data.items():
        if sec not in SECTIONS:
            raise _unknown(file, str(sec), str(sec), list(SECTIONS))
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
        if sec not in SECTIONS:
            raise _unknown(file, key, sec, list(SECTIONS))
        if name not in raw[sec]:
            raise _unknown(file, key, name, list(raw[sec]))
        v = read_yaml(text, f"{file} (override {item!r})")
        if key in _PATH_KEYS and isinstance(v, str):  # relative to the current directory
            v = _resolve_path(v, os.getcwd(), file, key)
        raw[sec][name] = v
        overridden.add(key)
    return _validate(raw, file, file, overridden)
