"""Tests of ssjax.tasks.registry: every task kind registers itself, views, lookups."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

import ssjax.experiment.config as C
from ssjax.pattern import EventPattern
from ssjax.tasks import image, randman, registry, xor
from ssjax.tasks.timing import timing_task


def test_every_entry_is_registered_by_its_module():
    patterns = ("timing", "ras", "xor", "image", "randman")
    trials = ("shd", "ras_folder", "randman_trials")
    assert registry.names() == patterns + trials == C.TASK_KINDS
    assert registry.trial_kinds() == trials
    for name, module in registry.KINDS.items():
        kind = registry.get(name)
        if kind.trials:  # labelled trials: load only (ssjax.tasks.trials)
            assert kind.build is None and kind.load.__module__ == module
            continue
        assert kind.name == name and kind.build.__module__ == module
        assert callable(kind.build) and (kind.load is None or callable(kind.load))
        assert (kind.heldout is not None) <= kind.window  # held-out sets are window tasks'
    assert registry.window_kinds() == ("xor", "randman") == C.WINDOW_TASKS


def test_kinds_read_only_task_keys():
    """The config's task section is the union of the kinds' declarations, and nothing else."""
    fields = {f.name for f in dataclasses.fields(C.TaskConfig)}
    union = set()
    for name in registry.names():
        kind = registry.get(name)
        reads = registry.reads(kind)
        assert set(reads) <= fields - {"kind"}, name
        union |= set(reads)
        for key, _, _ in kind.checks:
            assert key.startswith("task.") and key[5:] in fields, (name, key)
    assert union == fields - {"kind"}


def test_a_key_two_kinds_read_is_one_declaration():
    """n_in of timing and of xor: the same declaration (borrowed from TaskCommon)."""
    from ssjax.params import same_declaration

    def field(kind, name):
        (f,) = [f for f in dataclasses.fields(registry.get(kind).params) if f.name == name]
        return f

    assert same_declaration(field("timing", "n_in"), field("xor", "n_in"))
    assert not same_declaration(field("xor", "n_patterns"), field("randman", "n_samples"))


def test_task_view_holds_the_declared_keys_only():
    kind = registry.get("timing")
    view = registry.task_view(kind, C.TaskConfig())
    assert view.period == 0.5 and view.n_in == 100
    with pytest.raises(AttributeError):
        view.input  # noqa: B018  (ras's key, not timing's)


def test_unknown_kinds():
    with pytest.raises(KeyError, match="one of timing, ras, xor, image, randman, shd"):
        registry.get("mnist")
    with pytest.raises(ValueError, match=r"no entry in ssjax.tasks.registry.KINDS"):
        registry.register(registry.TaskKind("mnist", (), build=lambda *a: None))


def test_build_through_the_registry_equals_build_task():
    cfg = C.default_config()
    kind = registry.get("timing")
    x, y = kind.build(registry.task_view(kind, cfg.task), cfg.neuron.dt, np.dtype("float32"), None)
    assert isinstance(x, EventPattern) and isinstance(y, EventPattern)  # no dense raster
    want = C.build_task(cfg)
    np.testing.assert_array_equal(x.to_dense(), want[0])
    np.testing.assert_array_equal(y.to_dense(), want[1])
    assert x.shape == (5000, 100) and y.shape == (5000, 1)  # [P, N_in], [P, N_out]
    assert want[0].dtype == np.float32


def _config(kind, **task):
    c = C.default_config()
    net = dataclasses.replace(c.network, sizes=(task["n_in"], 4, task["n_out"]))
    task = dataclasses.replace(c.task, kind=kind, **task)
    return C.validate_config(dataclasses.replace(c, task=task, network=net))


def _dense_routes(kind: str, task, dt):
    """The kinds' patterns as the library's dense functions build them (independent routes)."""
    key = jax.random.PRNGKey(task.input_seed)
    if kind == "timing":
        t = timing_task(
            key, task.n_in, task.rate_hz, task.period, task.target_times, task.n_out, dt
        )
        return np.asarray(t.inputs), np.asarray(t.targets)
    if kind == "image":
        img = image.default_image()
        return image.image_task(
            img, n_in=task.n_in, duration=task.period, dt=dt, key=key, rate_hz=task.rate_hz
        )
    if kind == "xor":
        st = xor.xor_stream(key, xor.task_spec(task.n_in, dt), task.n_patterns)
        return st.inputs, st.code.astype(np.float32)
    inputs, code, _ = randman._randman_stream(task, dt, key)
    return inputs, code.astype(np.float32)


@pytest.mark.parametrize(
    "kind,sets",
    [
        ("timing", {"n_in": 40, "n_out": 2, "period": 0.3, "target_times": (0.0, 0.1, 0.2999)}),
        ("image", {"n_in": 30, "n_out": 100, "period": 0.35}),
        ("xor", {"n_in": 12, "n_out": 2, "n_patterns": 6}),
        ("randman", {"n_in": 9, "n_out": 3, "n_samples": 4}),
    ],
)
def test_event_builds_equal_the_dense_routes(kind, sets):
    """Each kind's patterns, densified, equal its dense library function's rasters exactly
    (negative control: another input seed differs)."""
    cfg = _config(kind, **sets)
    x, y = C.build_patterns(cfg)
    assert isinstance(x, EventPattern) and x.block == 5000
    want_x, want_y = _dense_routes(kind, registry.task_view(registry.get(kind), cfg.task), 1e-4)
    np.testing.assert_array_equal(x.to_dense(), want_x)
    np.testing.assert_array_equal(y.to_dense(), want_y)
    other = _config(kind, **sets, input_seed=7)
    assert not np.array_equal(C.build_patterns(other)[0].to_dense(), want_x)


def test_task_error_carries_the_key():
    e = registry.TaskError("task.input", "data file not found: x")
    assert (e.key, e.message, str(e)) == (
        "task.input",
        "data file not found: x",
        "task.input: data file not found: x",
    )
