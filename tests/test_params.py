"""Tests of ssjax.params: declarations, parsing, the two passes of checks, scopes and borrowing."""

from __future__ import annotations

import dataclasses
import types
from typing import ClassVar

import pytest

from ssjax.losses import VanRossum
from ssjax.neuron import LIFParams
from ssjax.params import (
    Check,
    ParamError,
    TypeProblem,
    borrow,
    check_fields,
    check_scopes,
    compare,
    gt,
    multiple_of,
    param,
    params_of,
    parse,
    same_declaration,
)
from ssjax.rules.bptt import BPTTConfig
from ssjax.rules.superspike import SuperSpikeConfig


@dataclasses.dataclass(frozen=True)
class _Toy:
    SCOPE: ClassVar[str] = "toy"
    dt: float = param(1e-3, gt(0, " s"), doc="step (s)")
    tau: float = param(1e-2, compare(">", "toy.dt", " s"), doc="time constant (s)")
    lag: float = param(0.0, multiple_of("other.dt"), doc="refers to another scope")
    sizes: tuple[int, ...] = param((2, 3), doc="ints")

    def __post_init__(self):
        check_fields(self)


def test_parse_canonicalises_and_refuses_with_what_was_expected():
    assert parse(float, 3) == 3.0 and isinstance(parse(float, 3), float)
    assert parse(tuple[int, ...], [1, 2]) == (1, 2)
    assert parse(tuple[tuple[float, float], ...], [[1, 2]]) == ((1.0, 2.0),)
    assert parse(str | None, None) is None
    for tp, v, expected in [
        (float, True, "a number"),
        (float, float("inf"), "a finite number"),
        (int, 2.0, "an integer"),
        (bool, "yes", "a boolean"),
        (tuple[int, ...], [1, 2.5], "a list of integers"),
    ]:
        with pytest.raises(TypeProblem, match=expected):
            parse(tp, v)


def test_a_dataclass_checks_its_own_scope_on_construction():
    t = _Toy(sizes=[4, 5])
    assert t.sizes == (4, 5) and hash(t) == hash(_Toy(sizes=(4, 5)))  # canonical: hashable
    with pytest.raises(ParamError, match=r"_Toy\.dt \(toy\.dt\): must be > 0 s, got -1.0"):
        _Toy(dt=-1.0)
    with pytest.raises(ParamError, match=r"toy\.tau.*must be > toy\.dt = 0\.001 s"):
        _Toy(tau=1e-4)
    # a check on another scope waits for a caller that has it (negative control below)
    assert _Toy(lag=1.5e-4).lag == 1.5e-4


def test_check_scopes_runs_cross_scope_checks_and_plain_ones_first():
    toy = _Toy(lag=1.5e-4)
    ctx = types.SimpleNamespace(toy=toy, other=types.SimpleNamespace(dt=1e-4))
    with pytest.raises(ParamError, match=r"toy\.lag\): must be >= 0 s and a multiple of other\.dt"):
        check_scopes({"toy": toy}, ctx)
    check_scopes({"toy": _Toy(lag=2e-4)}, ctx)  # on the grid: passes
    check_scopes({"toy": toy}, ctx, skip=["toy.lag"])  # an unused key is not checked
    # both dt <= 0 and tau <= dt fail: the plain check (dt) is reported first, although tau's
    # relational check would also fire (a holder without __post_init__ lets both values in)

    @dataclasses.dataclass
    class Holder:
        SCOPE: ClassVar[str] = "toy"
        dt: float = param(1e-3, gt(0, " s"))
        tau: float = param(1e-2, compare(">", "toy.dt", " s"))

    h = Holder(dt=-1.0, tau=-2.0)
    with pytest.raises(ParamError) as e:
        check_scopes({"toy": h})
    assert e.value.key == "toy.dt"


def test_borrowed_fields_are_one_declaration():
    sf = {f.name: f for f, _ in params_of(SuperSpikeConfig)}
    bf = {f.name: f for f, _ in params_of(BPTTConfig)}
    vf = {f.name: f for f, _ in params_of(VanRossum)}
    assert same_declaration(sf["tau_rise"], vf["tau_rise"])
    assert same_declaration(bf["tau_decay"], vf["tau_decay"])
    assert not same_declaration(sf["tau_rise"], vf["tau_decay"])  # negative control

    @dataclasses.dataclass(frozen=True)
    class Other:
        SCOPE: ClassVar[str] = "rule"
        tau_rise: float = borrow(VanRossum, "tau_rise")

        def __post_init__(self):
            check_fields(self)

    with pytest.raises(ParamError, match="rule.tau_rise"):
        Other(tau_rise=-1.0)


def test_library_messages_name_class_and_key():
    with pytest.raises(ValueError, match=r"LIFParams\.tau_mem \(neuron\.tau_mem\): must be > 0"):
        LIFParams(tau_mem=5e-5)
    with pytest.raises(ValueError, match=r"rule\.tau_rise.*< rule\.tau_decay"):
        SuperSpikeConfig(tau_rise=0.02)


def test_a_custom_check_sees_the_context():
    chk = Check(lambda v, c: v < c.toy.dt, lambda c: f"< toy.dt = {c.toy.dt}", ("toy.dt",))
    ctx = types.SimpleNamespace(toy=types.SimpleNamespace(dt=2.0))
    assert chk.ok(1.0, ctx) and not chk.ok(3.0, ctx) and chk.text(ctx) == "< toy.dt = 2.0"
