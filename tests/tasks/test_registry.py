"""Tests of ssjax.tasks.registry: every task kind registers itself, views, lookups."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import ssjax.experiment.config as C
from ssjax.tasks import registry


def test_every_entry_is_registered_by_its_module():
    assert registry.names() == ("timing", "ras", "xor", "image", "randman") == C.TASK_KINDS
    for name, module in registry.KINDS.items():
        kind = registry.get(name)
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
    with pytest.raises(KeyError, match="one of timing, ras, xor, image, randman"):
        registry.get("mnist")
    with pytest.raises(ValueError, match=r"no entry in ssjax.tasks.registry.KINDS"):
        registry.register(registry.TaskKind("mnist", (), build=lambda *a: None))


def test_build_through_the_registry_equals_build_task():
    cfg = C.default_config()
    kind = registry.get("timing")
    x, y = kind.build(registry.task_view(kind, cfg.task), cfg.neuron.dt, np.dtype("float32"), None)
    want = C.build_task(cfg)
    np.testing.assert_array_equal(x, want[0])
    np.testing.assert_array_equal(y, want[1])
    assert x.shape == (5000, 100) and y.shape == (5000, 1)  # [P, N_in], [P, N_out]


def test_task_error_carries_the_key():
    e = registry.TaskError("task.input", "data file not found: x")
    assert (e.key, e.message, str(e)) == (
        "task.input",
        "data file not found: x",
        "task.input: data file not found: x",
    )
