"""Tests of ssjax.experiment.config: YAML schema, overrides, validation, dump/diff, builders."""

from __future__ import annotations

import dataclasses
import os
import pathlib

import numpy as np
import pytest
import yaml

import ssjax.experiment.config as C
from ssjax.experiment import paths
from ssjax.experiment.config import (
    Config,
    ConfigError,
    build_heldout,
    build_task,
    build_trainer,
    config_to_dict,
    default_config,
    diff_configs,
    dump_config,
    load_config,
    n_blocks,
    validate_config,
)
from ssjax.losses import VanRossum
from ssjax.rules.bptt import BPTTConfig
from ssjax.rules.superspike import SuperSpikeConfig
from ssjax.tasks import registry
from ssjax.train import TrainSpec

REPO = pathlib.Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


def _ssbm() -> pathlib.Path:
    shared = os.environ.get("SSJAX_SHARED")
    return (pathlib.Path(shared) if shared else REPO.parent / "shared") / "data" / "ssbm"


POISSON = _ssbm() / "poisson"
needs_poisson = pytest.mark.skipif(
    not (POISSON / "input.ras").is_file(),
    reason=f"SSBM reference rasters not found under {POISSON} (set SSJAX_SHARED)",
)


def write(tmp_path, content, name="cfg.yaml") -> pathlib.Path:
    """Write ``content`` (a YAML string, or a dict dumped as YAML) and return the path."""
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return p


def error(path, overrides=()) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    return info.value


def write_ras(path, lines):
    path.write_text("".join(f"{t} {i}\n" for t, i in lines))
    return path


# ------------------------------------------------------------------------ shipped configs


def _data_missing(cfg_path):
    data = yaml.safe_load(cfg_path.read_text()) or {}
    keys = ("input", "target", "image", "train_file", "test_file", "folder", "test_folder")
    files = [(data.get("task") or {}).get(k) for k in keys]
    try:
        resolved = [paths.resolve_data_path(f, str(cfg_path.parent)) for f in files if f]
    except paths.DataRootError:
        return True
    return not all(pathlib.Path(f).is_file() for f in resolved)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads_and_builds(path):
    if _data_missing(path):
        pytest.skip(f"{path.name}: reference rasters beside the repository are absent")
    assert path.read_text().startswith("#"), "each config starts with a header comment"
    cfg = load_config(path)
    assert cfg.source == str(path)
    if registry.get(cfg.task.kind).trials:  # labelled trials (tests/experiment/test_trials_run.py)
        spec = C.build_trial_spec(cfg)
        train, val, _ = C.build_trial_sets(cfg)
        assert (train.n_units, train.n_classes) == (spec.net.sizes[0], spec.net.sizes[-1])
        assert val is None or val.n_trials > 0
        return
    tr = build_trainer(cfg)
    x, y = build_task(cfg)
    assert tr.net.sizes[0] == x.shape[1] and tr.net.sizes[-1] == y.shape[1]
    if cfg.task.kind == "xor":  # the period is the frozen stream of task.n_patterns patterns
        assert x.shape[0] > cfg.task.n_patterns * 0.06 / cfg.neuron.dt
        assert tr.rule.error == "window" and set(np.unique(y)) <= {-2, -1, 0, 1, 2}
    elif cfg.task.kind == "randman":  # the period is the stream of n_out * n_samples samples
        t = cfg.task
        n = t.n_out * t.n_samples
        assert x.shape[0] == round(n * (t.randman_duration + t.gap) / cfg.neuron.dt)
        assert tr.rule.error == "window" and set(np.unique(y)) <= {-2, -1, 0, 1, 2}
        assert np.all(x.sum(axis=0) == n)  # every unit fires once per sample
    else:
        assert x.shape[0] == round(cfg.task.period / cfg.neuron.dt)
        assert tr.rule.error == "van_rossum"
    assert n_blocks(cfg) * cfg.run.block == pytest.approx(cfg.run.duration)


def test_shipped_configs_are_the_documented_experiments():
    names = {p.name for p in CONFIGS}
    assert {"default.yaml", "fig2.yaml", "fig4_hidden.yaml", "bptt_timing.yaml"} <= names
    d = load_config(REPO / "configs" / "default.yaml")
    assert d.network.sizes == (100, 1) and d.task.kind == "timing" and d.rule.name == "superspike"
    assert (d.run.seeds, d.run.duration, d.optimizer.burn_in) == (4, 500.0, 20.0)
    assert d.optimizer.drops == ((400.0, 0.1),)
    assert (d.run.log_every, d.run.raster_every, d.run.checkpoint_every) == (20, 250, 250)
    assert n_blocks(d) == 1000
    b = load_config(REPO / "configs" / "bptt_timing.yaml")
    assert diff_configs(d, b) == [("rule.name", "superspike", "bptt")]


@needs_poisson
def test_fig_configs_use_the_poisson_rasters():
    f2 = load_config(REPO / "configs" / "fig2.yaml")
    assert f2.task.kind == "ras" and f2.network.sizes == (100, 1)
    assert os.path.samefile(f2.task.input, POISSON / "input.ras")
    assert os.path.samefile(f2.task.target, POISSON / "target.ras")
    assert (f2.run.seeds, f2.run.duration, f2.optimizer.burn_in) == (20, 500.0, 20.0)
    assert f2.optimizer.drops == ((400.0, 0.1),)
    f4 = load_config(REPO / "configs" / "fig4_hidden.yaml")
    assert f4.network.sizes == (100, 4, 1) and f4.rule.feedback == "symmetric"
    assert (f4.run.seeds, f4.run.duration) == (10, 500.0)


# -------------------------------------------------------------------------------- defaults


def test_defaults_are_the_papers_values(tmp_path):
    c = default_config()
    n = c.neuron
    assert (n.theta, n.u_rest, n.u_reset) == (-0.050, -0.060, -0.060)
    assert (n.tau_mem, n.tau_syn, n.tau_ref, n.dt, n.delay) == (0.010, 0.005, 0.005, 1e-4, 0.0)
    assert (n.integrator, n.reset_grad) == ("euler", False)
    s = c.surrogate
    assert (s.kind, s.beta, s.v_floor) == ("superspike", 1000.0, -0.03)
    assert c.network == type(c.network)(sizes=(100, 4, 1), w0=0.05, w_min=-0.1, w_max=0.1)
    r = c.rule
    assert (r.name, r.tau_rise, r.tau_decay) == ("superspike", 0.005, 0.010)
    assert (r.hebbian_delay, r.sigma_prime, r.method, r.max_spikes) == (
        0.0, "surrogate", "dense", 4096,
    )  # fmt: skip
    assert c.rule.feedback == "symmetric"
    g = c.regularizer
    assert (g.rho, g.a, g.tau, g.error_dependent, g.layers) == (0.0, 4.0, 0.1, False, "hidden")
    o = c.optimizer
    assert (o.name, o.r0, o.tau_rms, o.eps, o.burn_in) == ("rmaxprop", 1e-3, 30.0, 1e-12, 20.0)
    assert o.drops == ((400.0, 0.1),)
    t = c.task
    assert (t.kind, t.n_in, t.n_out, t.rate_hz, t.period) == ("timing", 100, 1, 5.0, 0.5)
    assert t.target_times == (0.083, 0.166, 0.249, 0.332, 0.415)
    assert (t.input, t.target, t.id_offset, t.target_id_offset, t.input_seed) == (
        None, None, 0, 0, 0,
    )  # fmt: skip
    u = c.run
    assert (u.seeds, u.seed, u.duration, u.block, u.on_nonfinite, u.dtype) == (
        1, 0, 60.0, 0.5, "halt", "float32",
    )  # fmt: skip
    every = (u.checkpoint_every, u.keep_checkpoints, u.log_every, u.raster_every)
    assert every == (100, 3, 10, 100)
    # an empty file, and sections left empty, give the defaults
    assert load_config(write(tmp_path, "")) == c
    assert load_config(write(tmp_path, "neuron:\nrun:\n", "empty_sections.yaml")) == c
    assert validate_config(c) == c


def test_source_is_kept_but_not_compared(tmp_path):
    a = load_config(write(tmp_path, "run: {seeds: 2}\n", "a.yaml"))
    b = load_config(write(tmp_path, "run: {seeds: 2}\n", "b.yaml"))
    assert a.source.endswith("a.yaml") and b.source.endswith("b.yaml")
    assert a == b and hash(a) == hash(b)
    assert "source" not in config_to_dict(a)


# --------------------------------------------------------------------- unknown keys, types


def test_unknown_key_suggests_the_nearest(tmp_path):
    p = write(tmp_path, "neuron:\n  tau_mme: 0.01\n")
    e = error(p)
    assert e.file == str(p) and e.key == "neuron.tau_mme"
    assert str(e).startswith(f"{p}: neuron.tau_mme: ")
    assert "did you mean 'tau_mem'?" in str(e)


def test_unknown_section_suggests_the_nearest(tmp_path):
    e = error(write(tmp_path, "nueron:\n  tau_mem: 0.01\n"))
    assert "nueron" in str(e) and "did you mean 'neuron'?" in str(e)
    e = error(write(tmp_path, "zzz: {}\n", "far.yaml"))
    assert "unknown key" in str(e) and "network, neuron, surrogate, rule" in str(e)


def test_a_key_of_an_earlier_schema_says_where_it_moved(tmp_path):
    for text, key, now in [
        ("feedback:\n  kind: random\n", "feedback", "rule.feedback"),
        ("neuron:\n  beta: 500\n", "neuron.beta", "surrogate.beta"),
        ("neuron:\n  surrogate: sigmoid\n", "neuron.surrogate", "surrogate.kind"),
        ("rule:\n  reset_grad: true\n", "rule.reset_grad", "neuron.reset_grad"),
    ]:
        e = error(write(tmp_path, text))
        assert e.key == key and f"this key is now {now}" in str(e)


def test_a_key_the_chosen_variant_does_not_read_must_keep_its_default(tmp_path):
    e = error(write(tmp_path, {"rule": {"name": "bptt", "method": "event"}}))
    assert e.key == "rule.method" and "not a key of rule.name 'bptt'" in str(e)
    assert "tau_rise, tau_decay" in str(e)
    e = error(write(tmp_path, {"rule": {"name": "bptt"}, "regularizer": {"rho": 1.0}}))
    assert e.key == "regularizer.rho" and "no regulariser" in str(e)
    e = error(write(tmp_path, {"task": {"n_patterns": 8}}))
    assert e.key == "task.n_patterns" and "not a key of task.kind 'timing'" in str(e)
    # left at its default, a key of another variant is fine (a dumped config holds them all)
    assert load_config(write(tmp_path, {"rule": {"name": "bptt", "method": "dense"}}))


def test_a_range_of_an_unused_key_is_not_checked(tmp_path):
    """task.gap's default (50 ms) is no multiple of a 0.3 ms step; a timing task never reads it."""
    c = load_config(write(tmp_path, {"neuron": {"dt": 2.5e-4}, "task": {"period": 0.5}}))
    assert c.neuron.dt == 2.5e-4


def test_bad_choice_suggests_the_nearest(tmp_path):
    e = error(write(tmp_path, {"optimizer": {"name": "rmaxprp"}}))
    assert "optimizer.name" in str(e) and "did you mean 'rmaxprop'?" in str(e)
    assert "'rmaxprop', 'rmsprop', 'fixed'" in str(e)


@pytest.mark.parametrize(
    "text, key, expected",
    [
        ("neuron:\n  tau_mem: fast\n", "neuron.tau_mem", "expected a number"),
        ("neuron:\n  tau_mem: '0.01'\n", "neuron.tau_mem", "expected a number"),
        ("surrogate:\n  beta: .inf\n", "surrogate.beta", "expected a finite number"),
        ("run:\n  seeds: 1.5\n", "run.seeds", "expected an integer"),
        ("task:\n  n_in: 100.0\n", "task.n_in", "expected an integer"),
        ("run:\n  seeds: true\n", "run.seeds", "expected an integer"),
        ("neuron:\n  reset_grad: yes\n", "neuron.reset_grad", "expected a boolean (true or false)"),
        ("neuron:\n  reset_grad: 'true'\n", "neuron.reset_grad", "expected a boolean"),
        ("regularizer:\n  error_dependent: 1\n", "regularizer.error_dependent", "a boolean"),
        ("neuron:\n  integrator: 3\n", "neuron.integrator", "expected a string"),
        ("network:\n  sizes: 100\n", "network.sizes", "expected a list of integers"),
        ("network:\n  sizes: [100, 1.0]\n", "network.sizes", "expected a list of integers"),
        ("optimizer:\n  drops: [[1, 2, 3]]\n", "optimizer.drops", "[time, factor] pairs"),
        ("optimizer:\n  drops: [400]\n", "optimizer.drops", "[time, factor] pairs"),
        ("task:\n  target_times: [a]\n", "task.target_times", "a list of numbers"),
        ("task:\n  input: 5\n", "task.input", "expected a string"),
        ("neuron: 5\n", "neuron", "expected a mapping"),
    ],
)
def test_wrong_type(tmp_path, text, key, expected):
    p = write(tmp_path, text)
    e = error(p)
    assert str(e).startswith(f"{p}: {key}: "), str(e)
    assert expected in str(e)


def test_floats_accept_ints_and_yaml12_scalars(tmp_path):
    c = load_config(write(tmp_path, "surrogate:\n  beta: 2000\noptimizer:\n  r0: 5e-3\n"))
    assert c.surrogate.beta == 2000.0 and isinstance(c.surrogate.beta, float)
    assert c.optimizer.r0 == 5e-3
    assert load_config(write(tmp_path, "neuron: {reset_grad: true}\n", "t.yaml")).neuron.reset_grad


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    p = write(tmp_path, "run:\n  seeds: 2\n  duration: [1, 2\n")
    e = error(p)
    assert str(p) in str(e) and "line" in str(e) and "YAML syntax error" in str(e)


def test_unreadable_or_non_mapping_file(tmp_path):
    assert "cannot read config file" in str(error(tmp_path / "absent.yaml"))
    assert "mapping of sections" in str(error(write(tmp_path, "- 1\n- 2\n")))


# ----------------------------------------------------------------------------- out of range

OUT_OF_RANGE = [
    ({"neuron": {"dt": 0.0}}, "neuron.dt", "> 0 s"),
    ({"neuron": {"tau_mem": 0.0}}, "neuron.tau_mem", "> 0 and > neuron.dt = 0.0001 s"),
    ({"neuron": {"tau_syn": -0.005}}, "neuron.tau_syn", "> 0 and > neuron.dt"),
    ({"neuron": {"tau_mem": 5e-5}}, "neuron.tau_mem", "> neuron.dt = 0.0001 s"),
    ({"neuron": {"dt": 0.02}}, "neuron.tau_mem", "> neuron.dt = 0.02 s"),  # dt >= tau
    ({"neuron": {"tau_ref": -0.001}}, "neuron.tau_ref", ">= 0 s and a multiple of neuron.dt"),
    ({"neuron": {"tau_ref": 0.00015}}, "neuron.tau_ref", "a multiple of neuron.dt = 0.0001 s"),
    ({"neuron": {"theta": -0.07}}, "neuron.theta", "> neuron.u_rest = -0.06 V"),
    ({"neuron": {"u_reset": -0.04}}, "neuron.u_reset", "< neuron.theta = -0.05 V"),
    ({"neuron": {"delay": -1e-4}}, "neuron.delay", ">= 0 s and a multiple of neuron.dt"),
    ({"neuron": {"delay": 0.00085}}, "neuron.delay", "a multiple of neuron.dt"),
    ({"surrogate": {"beta": 0.0}}, "surrogate.beta", "> 0 1/V"),
    ({"neuron": {"integrator": "rk4"}}, "neuron.integrator", "one of 'euler', 'exact'"),
    ({"surrogate": {"kind": "fast"}}, "surrogate.kind", "one of 'superspike'"),
    ({"network": {"w_min": 0.2}}, "network.w_min", "< network.w_max = 0.1 V"),
    ({"network": {"w0": -0.01}}, "network.w0", ">= 0 V"),
    ({"network": {"sizes": [100]}}, "network.sizes", "a list of >= 2 positive integers"),
    ({"network": {"sizes": [100, 0, 1]}}, "network.sizes", "a list of >= 2 positive integers"),
    ({"network": {"sizes": [50, 1]}}, "network.sizes", "first == task.n_in = 100"),
    ({"network": {"sizes": [100, 2]}}, "network.sizes", "last == task.n_out = 1"),
    ({"rule": {"name": "eprop"}}, "rule.name", "one of 'superspike', 'bptt'"),
    ({"rule": {"method": "sparse"}}, "rule.method", "one of 'dense', 'event', 'stepwise'"),
    ({"rule": {"sigma_prime": "two"}}, "rule.sigma_prime", "one of 'surrogate', 'one'"),
    ({"rule": {"tau_rise": 0.02}}, "rule.tau_rise", "< rule.tau_decay = 0.01 s"),
    ({"rule": {"tau_decay": 0.0}}, "rule.tau_decay", "> 0 s"),
    ({"rule": {"hebbian_delay": -1e-4}}, "rule.hebbian_delay", ">= 0 s and a multiple of"),
    ({"rule": {"hebbian_delay": 5e-5}}, "rule.hebbian_delay", "a multiple of neuron.dt"),
    ({"rule": {"max_spikes": 0}}, "rule.max_spikes", "an integer >= 1"),
    ({"rule": {"feedback": "transpose"}}, "rule.feedback", "'symmetric', 'random', 'uniform'"),
    ({"regularizer": {"rho": -1.0}}, "regularizer.rho", ">= 0"),
    ({"regularizer": {"a": -1.0}}, "regularizer.a", ">= 0"),
    ({"regularizer": {"tau": 0.0}}, "regularizer.tau", "> 0 and > neuron.dt"),
    ({"regularizer": {"layers": "output"}}, "regularizer.layers", "one of 'hidden', 'all'"),
    ({"optimizer": {"name": "adam"}}, "optimizer.name", "one of 'rmaxprop', 'rmsprop', 'fixed'"),
    ({"optimizer": {"r0": 0.0}}, "optimizer.r0", "> 0"),
    ({"optimizer": {"tau_rms": -1.0}}, "optimizer.tau_rms", "> 0 s"),
    ({"optimizer": {"eps": -1e-12}}, "optimizer.eps", ">= 0"),
    ({"optimizer": {"burn_in": -1.0}}, "optimizer.burn_in", ">= 0 s"),
    ({"optimizer": {"drops": [[-1.0, 0.1]]}}, "optimizer.drops", "[time >= 0 s, factor >= 0]"),
    ({"optimizer": {"drops": [[100.0, -0.1]]}}, "optimizer.drops", "[time >= 0 s, factor >= 0]"),
    ({"task": {"kind": "mnist"}}, "task.kind", "one of 'timing', 'ras', 'xor', 'image', 'randman'"),
    (
        {"task": {"kind": "image", "n_out": 100, "image_threshold": 0.0}},
        "task.image_threshold",
        "> 0 and <= 1",
    ),
    (
        {"task": {"kind": "image", "n_out": 100, "image_threshold": 1.5}},
        "task.image_threshold",
        "> 0 and <= 1",
    ),
    ({"task": {"n_in": 0}}, "task.n_in", "an integer >= 1"),
    ({"task": {"rate_hz": -1.0}}, "task.rate_hz", ">= 0 Hz"),
    ({"task": {"rate_hz": 20000.0}}, "task.rate_hz", "<= 1 / neuron.dt = 10000 Hz"),
    ({"task": {"period": 0.0}}, "task.period", "> 0 s and a multiple of neuron.dt"),
    ({"task": {"period": 0.50005}}, "task.period", "a multiple of neuron.dt = 0.0001 s"),
    ({"task": {"target_times": [0.5]}}, "task.target_times", "within [0, task.period = 0.5) s"),
    ({"task": {"target_times": [-0.01]}}, "task.target_times", "within [0, task.period"),
    ({"task": {"input_seed": -1}}, "task.input_seed", "an integer >= 0"),
    ({"run": {"seeds": 0}}, "run.seeds", "an integer >= 1"),
    ({"run": {"seed": -1}}, "run.seed", "an integer >= 0"),
    ({"run": {"duration": 0.0}}, "run.duration", "> 0 s"),
    ({"run": {"duration": 10.25}}, "run.duration", "a multiple of run.block = 0.5 s"),
    ({"run": {"block": 0.0}}, "run.block", "> 0 s and a multiple of neuron.dt"),
    ({"run": {"block": 0.50005, "duration": 0.50005}}, "run.block", "a multiple of neuron.dt"),
    ({"run": {"checkpoint_every": 0}}, "run.checkpoint_every", "an integer >= 1"),
    ({"run": {"keep_checkpoints": 0}}, "run.keep_checkpoints", "an integer >= 1"),
    ({"run": {"log_every": 0}}, "run.log_every", "an integer >= 1"),
    ({"run": {"raster_every": -3}}, "run.raster_every", "an integer >= 1"),
    ({"run": {"on_nonfinite": "ignore"}}, "run.on_nonfinite", "one of 'halt', 'skip'"),
    ({"run": {"dtype": "float16"}}, "run.dtype", "one of 'float32', 'float64'"),
]


@pytest.mark.parametrize("content, key, allowed", OUT_OF_RANGE, ids=[c[1] for c in OUT_OF_RANGE])
def test_out_of_range(tmp_path, content, key, allowed):
    p = write(tmp_path, content, "bad_range.yaml")
    e = error(p)
    assert e.key == key, str(e)
    assert str(e).startswith(f"{p}: {key}: must be "), str(e)
    assert allowed in str(e)
    assert "bad_range.yaml" in str(e)


def test_validate_catches_configs_built_in_code():
    bad = dataclasses.replace(
        default_config(), neuron=dataclasses.replace(default_config().neuron, tau_mem=-1.0)
    )
    with pytest.raises(ConfigError, match=r"<config>: neuron.tau_mem: must be > 0"):
        build_trainer(bad)
    with pytest.raises(ConfigError, match="neuron.tau_mem"):
        build_task(bad)


# -------------------------------------------------------------------------------- overrides


def test_overrides_are_parsed_as_yaml(tmp_path):
    p = write(tmp_path, "")
    c = load_config(
        p,
        [
            "run.seeds=4",
            "optimizer.r0=5e-3",
            "optimizer.drops=[[100, 0.5], [200, 0.1]]",
            "neuron.reset_grad=true",
            "network.sizes=[100, 3, 1]",
            "surrogate.beta=500",
            "rule.feedback=random",
        ],
    )
    assert c.run.seeds == 4 and isinstance(c.run.seeds, int)
    assert c.optimizer.r0 == 5e-3 and isinstance(c.optimizer.r0, float)
    assert c.optimizer.drops == ((100.0, 0.5), (200.0, 0.1))
    assert c.neuron.reset_grad is True
    assert c.network.sizes == (100, 3, 1)
    assert c.surrogate.beta == 500.0 and c.rule.feedback == "random"
    # later overrides win, and an override beats the file
    p2 = write(tmp_path, "run: {seeds: 3}\n", "s.yaml")
    assert load_config(p2, ["run.seeds=5", "run.seeds=6"]).run.seeds == 6


def test_override_errors(tmp_path):
    p = write(tmp_path, "")
    e = error(p, ["neuron.tau_mme=0.01"])
    assert "neuron.tau_mme" in str(e) and "did you mean 'tau_mem'?" in str(e)
    e = error(p, ["nueron.tau_mem=0.01"])
    assert "did you mean 'neuron'?" in str(e)
    e = error(p, ["run.seeds"])
    assert str(p) in str(e) and "malformed override 'run.seeds'" in str(e)
    assert "malformed override" in str(error(p, ["seeds=4"]))
    e = error(p, ["run.seeds=1.5"])
    assert e.key == "run.seeds" and "expected an integer" in str(e) and "--set" in str(e)
    e = error(p, ["neuron.reset_grad=yes"])
    assert e.key == "neuron.reset_grad" and "a boolean" in str(e)
    e = error(p, ["optimizer.r0=0"])
    assert e.key == "optimizer.r0" and "must be > 0" in str(e) and "--set" in str(e)
    assert "YAML syntax error" in str(error(p, ["network.sizes=[100, 1"]))


# ------------------------------------------------------------------------------- data files


def _ras_config(tmp_path, **task):
    body = {"kind": "ras", "input": "data/in.ras", "target": "data/tgt.ras", **task}
    return write(tmp_path, {"network": {"sizes": [3, 1]}, "task": {"n_in": 3, **body}})


def _ras_files(tmp_path, inp=((0.01, 0), (0.2, 2)), tgt=((0.083, 0), (0.4, 0))):
    (tmp_path / "data").mkdir(exist_ok=True)
    write_ras(tmp_path / "data" / "in.ras", inp)
    write_ras(tmp_path / "data" / "tgt.ras", tgt)


def test_ras_task_from_files_relative_to_the_yaml(tmp_path):
    _ras_files(tmp_path)
    c = load_config(_ras_config(tmp_path))
    assert c.task.input == str(tmp_path / "data" / "in.ras")
    x, y = build_task(c)
    assert x.shape == (5000, 3) and y.shape == (5000, 1) and x.dtype == np.float32
    assert x[100, 0] == 1 and x[2000, 2] == 1 and x.sum() == 2
    assert y[830, 0] == 1 and y[4000, 0] == 1 and y.sum() == 2


def test_override_paths_are_relative_to_the_working_directory(tmp_path, monkeypatch):
    _ras_files(tmp_path)
    cfg_path = _ras_config(tmp_path / "sub")
    monkeypatch.chdir(tmp_path)
    c = load_config(cfg_path, ["task.input=data/in.ras", "task.target=data/tgt.ras"])
    assert c.task.input == str(tmp_path / "data" / "in.ras")


def test_missing_data_file_names_task_input(tmp_path):
    _ras_files(tmp_path)
    (tmp_path / "data" / "in.ras").unlink()
    p = _ras_config(tmp_path)
    e = error(p)
    assert e.key == "task.input" and str(e).startswith(f"{p}: task.input: ")
    assert "not found" in str(e) and "in.ras" in str(e)
    e = error(write(tmp_path, {"task": {"kind": "ras"}}, "noinput.yaml"))
    assert e.key == "task.input" and "required" in str(e)


@pytest.mark.parametrize(
    "inp, expected",
    [
        (((0.01, 0), ("abc", 1)), "in.ras"),  # unparsable line
        (((0.01, 0), (0.02, 3)), "out of range [0, 3)"),  # id beyond n_in
        (((0.01, 0), (0.6, 1)), "task.period = 0.5"),  # spike after the period
    ],
)
def test_malformed_ras_names_task_input(tmp_path, inp, expected):
    _ras_files(tmp_path, inp=inp)
    p = _ras_config(tmp_path)
    e = error(p)
    assert e.key == "task.input" and str(e).startswith(f"{p}: task.input: malformed raster")
    assert expected in str(e)


def test_malformed_target_names_task_target(tmp_path):
    _ras_files(tmp_path, tgt=((0.1, 1),))  # id 1 with n_out 1
    e = error(_ras_config(tmp_path))
    assert e.key == "task.target" and "target_id_offset" in str(e)
    c = load_config(_ras_config(tmp_path), ["task.target_id_offset=1"])
    assert build_task(c)[1][1000, 0] == 1


# --------------------------------------------------------------- validate once, parse once


def _count_ras_parses(monkeypatch) -> list:
    """Count calls of the .ras parser (ssjax.tasks.raster.read_ras, as the ras task calls it)."""
    import ssjax.tasks.raster as R

    n, orig = [0], R.read_ras

    def counting(*a, **k):
        n[0] += 1
        return orig(*a, **k)

    monkeypatch.setattr(R, "read_ras", counting)
    return n


FIG2_QUICK = REPO / "configs" / "fig2_quick.yaml"


@pytest.mark.skipif(_data_missing(FIG2_QUICK), reason="SSBM poisson rasters not found")
def test_fig2_quick_parses_each_ras_file_once(monkeypatch):
    n = _count_ras_parses(monkeypatch)
    cfg = load_config(FIG2_QUICK)
    assert n[0] == 2  # task.input and task.target
    build_trainer(cfg)
    x, y = build_task(cfg)
    build_task(cfg)
    assert validate_config(cfg) is cfg
    assert n[0] == 2, f"{n[0]} .ras parses for load_config + build_trainer + build_task"
    assert x.shape == (5000, 100) and y.shape == (5000, 1) and y.sum() == 5


def test_ras_data_is_read_at_validation_and_built_from_memory(tmp_path, monkeypatch):
    _ras_files(tmp_path)
    n = _count_ras_parses(monkeypatch)
    c = load_config(_ras_config(tmp_path))
    assert n[0] == 2
    x, y = build_task(c)
    x[:] = 7.0  # the caller's arrays: the data on the config stays untouched
    assert build_task(c)[0].sum() == 2
    assert isinstance(build_trainer(c), TrainSpec) and n[0] == 2
    # dataclasses.replace drops the mark: a changed config is validated (and read) again, once
    f64 = dataclasses.replace(c, run=dataclasses.replace(c.run, dtype="float64"))
    assert f64._checked is None
    v = validate_config(f64)
    assert v == f64 and n[0] == 4 and validate_config(v) is v
    assert build_task(v)[0].dtype == np.float64 and n[0] == 4
    # the files changed on disk after validation: the validated config keeps what it read
    write_ras(tmp_path / "data" / "in.ras", ((0.3, 1),))
    np.testing.assert_array_equal(build_task(c)[0], build_task(v)[0].astype(np.float32))


def test_image_file_is_read_once(tmp_path, monkeypatch):
    import matplotlib.image

    import ssjax.tasks.image as I

    (tmp_path / "data").mkdir()
    matplotlib.image.imsave(tmp_path / "data" / "pic.png", np.eye(12), cmap="gray")
    n, orig = [0], I.load_image
    monkeypatch.setattr(I, "load_image", lambda p: (n.__setitem__(0, n[0] + 1), orig(p))[1])
    c = load_config(_image_cfg(tmp_path, image="data/pic.png", n_out=12))
    build_trainer(c)
    a, b = build_task(c), build_task(c)
    assert n[0] == 1
    np.testing.assert_array_equal(a[1], b[1])


# ------------------------------------------------------------------------ dump, dict, diff


def test_dump_load_round_trip(tmp_path):
    _ras_files(tmp_path)
    overrides = ["optimizer.eps=1e-9", "optimizer.r0=5e-3", "neuron.reset_grad=true",
                 "regularizer.rho=1", "run.dtype=float64", "run.seeds=3"]  # fmt: skip
    for cfg in (default_config(), load_config(_ras_config(tmp_path), overrides)):
        out = tmp_path / "dumped" / "config.yaml"
        out.parent.mkdir(exist_ok=True)
        dump_config(cfg, out)
        back = load_config(out)
        assert back == cfg and diff_configs(back, cfg) == []
        assert back.source == str(out)


def test_config_to_dict_is_plain_and_yaml_dumpable():
    d = config_to_dict(default_config())
    assert list(d) == ["network", "neuron", "surrogate", "rule", "regularizer", "optimizer",
                       "task", "readout", "trials", "run"]  # fmt: skip
    assert d["network"]["sizes"] == [100, 4, 1] and d["optimizer"]["drops"] == [[400.0, 0.1]]
    assert isinstance(d["task"]["target_times"], list)
    assert yaml.safe_load(yaml.safe_dump(d)) == d


def test_diff_configs_lists_exactly_the_changed_keys(tmp_path):
    a = default_config()
    b = load_config(write(tmp_path, ""), ["run.seeds=4", "optimizer.r0=5e-3", "surrogate.beta=500"])
    assert diff_configs(a, b) == [
        ("surrogate.beta", 1000.0, 500.0),
        ("optimizer.r0", 1e-3, 5e-3),
        ("run.seeds", 1, 4),
    ]
    assert diff_configs(b, b) == []


# ----------------------------------------------------------------------------------- build


def test_build_trainer_fields_match_the_config(tmp_path):
    c = load_config(
        write(tmp_path, ""),
        ["rule.feedback=random", "regularizer.rho=1.0", "neuron.reset_grad=true",
         "surrogate.kind=superspike_code", "surrogate.beta=2000", "rule.method=event",
         "optimizer.name=rmsprop", "neuron.delay=8e-4", "rule.hebbian_delay=8e-4"],
    )  # fmt: skip
    tr = build_trainer(c)
    assert isinstance(tr, TrainSpec)
    assert tr.block_steps == 5000 and tr.net.sizes == (100, 4, 1)
    assert (tr.net.w0, tr.net.w_min, tr.net.w_max) == (0.05, -0.1, 0.1)
    n = tr.net.neuron
    assert (n.tau_mem, n.tau_syn, n.dt, n.reset_grad, n.delay_steps) == (0.01, 0.005, 1e-4, True, 8)
    assert (n.surrogate.kind, n.surrogate.beta, n.surrogate.v_floor) == (
        "superspike_code", 2000.0, -0.03,
    )  # fmt: skip
    s = tr.rule
    assert isinstance(s, SuperSpikeConfig)
    assert (s.feedback, s.regularizer.rho, s.regularizer.a, s.regularizer.tau, s.method) == (
        "random", 1.0, 4.0, 0.1, "event",
    )  # fmt: skip
    assert s.delay_steps(1e-4) == 8
    o = tr.optimizer
    assert (o.name, o.r0, o.tau_rms, o.eps) == ("rmsprop", 1e-3, 30.0, 1e-12)
    assert o.burn_in == 20.0 and o.drops == ((400.0, 0.1),)
    bptt = build_trainer(load_config(write(tmp_path, "rule: {name: bptt}\n", "b.yaml"))).rule
    assert isinstance(bptt, BPTTConfig) and bptt.loss == VanRossum(5e-3, 10e-3)
    short = load_config(write(tmp_path, "run: {block: 0.25, duration: 1.0}\n", "k.yaml"))
    assert build_trainer(short).block_steps == 2500 and n_blocks(short) == 4


def test_build_task_timing():
    c = default_config()
    x, y = build_task(c)
    assert x.shape == (5000, 100) and y.shape == (5000, 1)
    assert x.dtype == np.float32 and y.dtype == np.float32
    assert set(np.nonzero(y[:, 0])[0]) == {830, 1660, 2490, 3320, 4150}
    assert 100 < x.sum() < 400  # about 100 inputs * 5 Hz * 0.5 s = 250 spikes
    x2, _ = build_task(c)
    np.testing.assert_array_equal(x, x2)  # frozen: same input_seed, same pattern
    other = dataclasses.replace(c, task=dataclasses.replace(c.task, input_seed=1))
    assert not np.array_equal(build_task(other)[0], x)
    f64 = dataclasses.replace(c, run=dataclasses.replace(c.run, dtype="float64"))
    assert build_task(f64)[0].dtype == np.float64


@needs_poisson
def test_build_task_ras_from_the_shared_poisson_files(tmp_path):
    p = write(
        tmp_path,
        {
            "network": {"sizes": [100, 1]},
            "task": {"kind": "ras", "input": str(POISSON / "input.ras"),
                     "target": str(POISSON / "target.ras")},
        },
    )  # fmt: skip
    c = load_config(p)
    x, y = build_task(c)
    assert x.shape == (5000, 100) and y.shape == (5000, 1)
    assert set(np.nonzero(y[:, 0])[0]) == {830, 1660, 2490, 3320, 4150}
    assert x.sum() > 100 and x.max() == 1
    assert isinstance(build_trainer(c), TrainSpec)


# ------------------------------------------------------------------------ image, randman


def _task_cfg(tmp_path, defaults: dict, task: dict):
    """A ``<kind>.yaml`` with a ``task`` section (``defaults`` updated by ``task``) and a
    one-layer network sized to it."""
    body = {**defaults, **task}
    sizes = [body["n_in"], body["n_out"]]
    return write(tmp_path, {"network": {"sizes": sizes}, "task": body}, f"{body['kind']}.yaml")


def _image_cfg(tmp_path, **task):
    return _task_cfg(tmp_path, {"kind": "image", "n_in": 10, "n_out": 100, "period": 0.7}, task)


def test_image_task_draws_the_default_image(tmp_path):
    from ssjax.tasks.image import default_image

    c = load_config(_image_cfg(tmp_path))
    x, y = build_task(c)
    img = default_image()
    assert img.shape == (100, 70)
    assert x.shape == (7000, 10) and y.shape == (7000, 100) and y.dtype == np.float32
    assert y.sum() == np.count_nonzero(img < 0.5) > 0  # one spike per dark pixel
    assert set(np.unique(x)) <= {0.0, 1.0} and x.sum() > 0
    assert build_trainer(c).rule.error == "van_rossum"
    np.testing.assert_array_equal(build_task(c)[1], y)  # frozen
    # every target spike lies in its pixel column's bin: column c spans steps [100 c, 100 c + 100)
    steps, ids = np.nonzero(y)
    assert np.all(img[99 - ids, steps // 100] < 0.5)
    dark = load_config(_image_cfg(tmp_path, image_threshold=1.0))
    assert build_task(dark)[1].sum() == np.count_nonzero(img < 1.0)


def test_image_n_out_must_be_the_image_height(tmp_path):
    e = error(_image_cfg(tmp_path, n_out=50))
    assert e.key == "task.n_out" and "height" in str(e) and "100" in str(e) and "50" in str(e)


def test_image_file_relative_to_the_yaml_and_missing(tmp_path):
    import matplotlib.image

    pixels = np.ones((12, 8))
    pixels[3, 2] = pixels[5, 6] = 0.0
    (tmp_path / "data").mkdir()
    matplotlib.image.imsave(tmp_path / "data" / "pic.png", pixels, cmap="gray", vmin=0, vmax=1)
    c = load_config(_image_cfg(tmp_path, image="data/pic.png", n_out=12))
    assert os.path.samefile(c.task.image, tmp_path / "data" / "pic.png")
    x, y = build_task(c)
    assert y.shape == (7000, 12) and y.sum() == 2
    e = error(_image_cfg(tmp_path, image="data/pic.png", n_out=100))
    assert e.key == "task.n_out" and "12" in str(e)
    e = error(_image_cfg(tmp_path, image="data/missing.png", n_out=12))
    assert e.key == "task.image" and "not found" in str(e)


def _randman_cfg(tmp_path, **task):
    return _task_cfg(tmp_path, {"kind": "randman", "n_in": 8, "n_out": 3, "n_samples": 5}, task)


def test_randman_stream_windows(tmp_path):
    c = load_config(_randman_cfg(tmp_path))
    x, y = build_task(c)
    n, S, G, W = 15, 500, 500, 650  # samples; steps of sample, gap, window (sample + 15 ms)
    assert x.shape == (n * (S + G), 8) and y.shape == (n * (S + G), 3)
    assert build_trainer(c).rule.error == "window"
    assert set(np.unique(y)) <= {-2, -1, 0, 1, 2}
    code = y.reshape(n, S + G, 3)
    inputs = x.reshape(n, S + G, 8)
    assert np.all(inputs[:, :S].sum(axis=1) == 1) and inputs[:, S:].sum() == 0
    assert np.all(code[:, W:] == 0) and np.all(code[:, :W] != 0)
    # exactly one positive output per window step, the same output over the whole window
    assert np.all((code[:, :W] > 0).sum(axis=2) == 1)
    labels = np.argmax(code[:, 0], axis=1)
    assert np.all(np.argmax(code[:, :W], axis=2) == labels[:, None])
    assert np.bincount(labels, minlength=3).tolist() == [5, 5, 5]  # n_samples per class
    # one window end (+2 on the label, -2 elsewhere) per sample: n_out * n_samples windows
    ends = np.flatnonzero(np.any(np.abs(y) == 2, axis=1))
    assert len(ends) == n and np.all(ends == np.arange(n) * (S + G) + W - 1)
    assert np.all(y[ends].sum(axis=1) == 2 - 2 * 2)
    np.testing.assert_array_equal(build_task(c)[0], x)  # frozen


def test_randman_heldout_stream(tmp_path):
    c = load_config(_randman_cfg(tmp_path, n_heldout=4))
    x, y = build_heldout(c)
    n, S, G, W = 12, 500, 500, 650  # n_out * n_heldout samples; steps of sample, gap, window
    assert x.shape == (G + n * (S + G), 8) and y.shape == (G + n * (S + G), 3)
    assert not x[:G].any() and not y[:G].any()  # a silent gap first, as before every sample
    inputs, code = x[G:].reshape(n, S + G, 8), y[G:].reshape(n, S + G, 3)
    assert np.all(inputs[:, :S].sum(axis=1) == 1) and inputs[:, S:].sum() == 0
    assert np.all(code[:, W:] == 0) and np.all(np.abs(code[:, W - 1]) == 2)
    assert np.bincount(np.argmax(code[:, 0], axis=1), minlength=3).tolist() == [4, 4, 4]
    # new samples: none of them is one of the training stream's
    train = build_task(c)[0].reshape(15, S + G, 8)[:, :S]
    assert not (inputs[:, None, :S] == train[None]).all(axis=(2, 3)).any()
    np.testing.assert_array_equal(build_heldout(c)[0], x)  # frozen
    e = error(_randman_cfg(tmp_path, n_heldout=-1))
    assert e.key == "task.n_heldout" and "an integer >= 0" in str(e)
    with pytest.raises(ConfigError, match="task.n_heldout"):
        build_heldout(load_config(_randman_cfg(tmp_path, n_heldout=0)))
    with pytest.raises(ConfigError, match="randman"):
        build_heldout(default_config())


def test_xor_heldout_stream_same_patterns_new_context(tmp_path):
    xor = {"kind": "xor", "n_in": 12, "n_out": 2, "n_patterns": 8, "n_heldout": 3}
    c = load_config(_task_cfg(tmp_path, xor, {}))
    stim = 100  # 10 ms of noise-free stimulus at dt = 0.1 ms

    def windows(x, y):
        starts = np.flatnonzero(np.diff(np.concatenate([[0], (y[:, 0] != 0).astype(int)])) == 1)
        return [x[o : o + stim] for o in starts], y[starts, 1] > 0  # stimuli, label (output 1)

    train, train_lab = windows(*build_task(c))
    held, held_lab = windows(*build_heldout(c))
    assert len(held) == 4 * 3 and held_lab.sum() == 2 * 3  # n_heldout of each of the 4 kinds
    # every held-out stimulus is one of the training stimuli (same task), with the same label
    for h, lab in zip(held, held_lab, strict=True):
        match = [k for k, t in enumerate(train) if np.array_equal(h, t)]
        assert match and all(train_lab[k] == lab for k in match)
    # ... but the order, the gaps and the background noise are new
    xt, xh = build_task(c)[0], build_heldout(c)[0]
    n = min(len(xt), len(xh))
    assert not np.array_equal(xh[:n], xt[:n])
    np.testing.assert_array_equal(build_task(c)[0][:n], xt[:n])  # control: the same draw is equal
    np.testing.assert_array_equal(build_heldout(c)[0], build_heldout(c)[0])  # frozen


@pytest.mark.parametrize(
    "task, key, allowed",
    [
        ({"randman_dim": 0}, "task.randman_dim", "an integer >= 1"),
        ({"randman_duration": 0.0}, "task.randman_duration", "> 0 s and a multiple of neuron.dt"),
        ({"randman_duration": 0.05005}, "task.randman_duration", "a multiple of neuron.dt"),
        ({"gap": 0.01}, "task.gap", ">= 0.015 s"),
        ({"gap": 0.05005}, "task.gap", "a multiple of neuron.dt"),
        ({"n_out": 1}, "task.n_out", ">= 2 for task.kind randman"),
        ({"n_samples": 0}, "task.n_samples", "an integer >= 1"),
    ],
)
def test_bad_randman_keys(tmp_path, task, key, allowed):
    e = error(_randman_cfg(tmp_path, **task))
    assert e.key == key and allowed in str(e), str(e)


def test_config_is_hashable_and_frozen():
    c = default_config()
    assert isinstance(c, Config) and hash(c) == hash(default_config())
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.run.seeds = 3  # type: ignore[misc]


# ------------------------------------------------------------ inputs that were accepted silently


def test_duplicate_yaml_key_names_both_lines(tmp_path):
    p = write(tmp_path, "optimizer:\n  r0: 1.0e-3\n  r0: 5.0e-3\n")
    e = error(p)
    assert str(e) == f"{p}, line 3: YAML: duplicate key 'r0' (first on line 2)"
    e = error(write(tmp_path, "run: {seeds: 2}\nrun: {seeds: 3}\n", "sec.yaml"))
    assert "duplicate key 'run' (first on line 1)" in str(e)
    assert load_config(write(tmp_path, "optimizer: {r0: 2.0e-3}\n", "ok.yaml")).optimizer.r0 == 2e-3


@pytest.mark.parametrize(
    "override, what",
    [("network.w_max=1.0e39", "overflows"), ("optimizer.eps=1.0e-50", "underflows to 0 in")],
)
def test_a_float_the_run_dtype_cannot_hold_is_an_error(tmp_path, override, what):
    p = write(tmp_path, {})
    e = error(p, [override])
    assert e.key == override.split("=")[0] and f"{what} run.dtype float32" in str(e)
    load_config(p, ["network.w_max=3.0e38", "optimizer.eps=1.0e-44"])  # still representable


def test_float64_without_64_bit_jax_is_refused_by_name(tmp_path):
    import jax

    from ssjax.experiment.config import run_dtype

    cfg = load_config(write(tmp_path, {"run": {"dtype": "float64"}}))
    assert not jax.config.read("jax_enable_x64")  # the test process runs 32-bit
    with pytest.raises(ConfigError, match="run.dtype: float64 needs JAX's 64-bit mode"):
        run_dtype(cfg)
    assert run_dtype(load_config(write(tmp_path, {}, "f32.yaml"))) == np.float32


def test_ras_header_contradicting_n_in_is_an_error(tmp_path):
    _ras_files(tmp_path)
    ras = tmp_path / "data" / "in.ras"
    ras.write_text("# neurons 5\n" + ras.read_text())
    e = error(_ras_config(tmp_path))
    assert e.key == "task.input" and "line 1: the header says 5 neurons, but 3 are expected" in str(
        e
    )


def test_empty_input_raster_is_an_error(tmp_path):
    _ras_files(tmp_path, inp=())
    e = error(_ras_config(tmp_path))
    assert e.key == "task.input" and "holds no spike" in str(e)


def test_out_of_range_advice_names_config_keys(tmp_path):
    _ras_files(tmp_path, tgt=((0.083, 1), (0.4, 1)))  # 1-based ids of a 1-neuron target
    e = error(_ras_config(tmp_path))
    assert e.key == "task.target" and "set task.target_id_offset: 1" in str(e)
    assert "id_offset=" not in str(e)
    assert load_config(_ras_config(tmp_path, target_id_offset=1)).task.target_id_offset == 1
    _ras_files(tmp_path, inp=((0.01, 0), (0.2, 7)), tgt=((0.083, 1), (0.4, 1)))
    e = error(_ras_config(tmp_path, target_id_offset=1))
    assert "set task.on_out_of_range: drop" in str(e)
    with pytest.warns(UserWarning, match="dropped 1 of 2 spikes"):
        c = load_config(_ras_config(tmp_path, target_id_offset=1, on_out_of_range="drop"))
    assert build_task(c)[0].sum() == 1
