"""Parameter declarations: each parameter is declared once, with its type, default and range.

A library dataclass (``LIFParams``, ``Surrogate``, ``Network``, ``SuperSpikeConfig``, ...)
declares a field with :func:`param`, which attaches its range checks (:class:`Check`) to the
field. :func:`check_fields` evaluates those declarations: the dataclass's ``__post_init__`` calls
it, and the config layer (:mod:`ssjax.experiment.config`) calls it again with every section in
view, so that checks which relate two sections (``rule.tau_rise > neuron.dt``) run too. The
config's sections are generated from these fields (:func:`ssjax.experiment.config.schema`):
there is no second list of names, defaults or ranges.

A check names the other parameters it reads (``refs``, dotted ``scope.name`` keys). A dataclass
checking itself sees only its own scope (its ``SCOPE`` class attribute, e.g. ``"neuron"``); a
check that reads another scope waits for a caller that has it. Checks run in two passes: those
that read nothing else first (so that ``neuron.dt`` is known to be valid before ``tau_mem > dt``
is checked), then the relational ones, each pass in declaration order.

:func:`parse` turns a value of a declared type from YAML (or any Python caller) into the
canonical form, or raises :class:`TypeProblem` with what was expected.
"""

from __future__ import annotations

import dataclasses
import json
import math
import operator
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = [
    "Check",
    "FrozenDict",
    "ParamError",
    "TypeProblem",
    "check_fields",
    "check_scopes",
    "choice",
    "compare",
    "ge",
    "gt",
    "int_ge",
    "multiple_of",
    "borrow",
    "param",
    "params_of",
    "same_declaration",
    "parse",
]

_META = "ssjax.param"


class ParamError(ValueError):
    """A parameter out of its declared range: ``str()`` is ``"<scope.name>: <message>"``."""

    def __init__(self, key: str, message: str, owner: str | None = None):
        self.key, self.message, self.owner = key, message, owner
        where = f"{owner}.{key.rpartition('.')[2]} ({key})" if owner else key
        super().__init__(f"{where}: {message}")


class TypeProblem(Exception):
    """A value not of its parameter's type; ``str()`` says what was expected."""


@dataclasses.dataclass(frozen=True)
class Check:
    """A range check: ``ok(value, ctx) -> bool``, ``allowed`` (text, or ``text(ctx)``) for the
    message ``must be <allowed>, got <value>``, and the dotted keys ``refs`` that ``ok`` reads
    from ``ctx`` (``ctx.<scope>.<name>``)."""

    ok: Callable[[Any, Any], bool]
    allowed: str | Callable[[Any], str]
    refs: tuple[str, ...] = ()

    def text(self, ctx) -> str:
        return self.allowed(ctx) if callable(self.allowed) else self.allowed


def _get(ctx, key: str):
    scope, _, name = key.partition(".")
    return getattr(getattr(ctx, scope), name)


def gt(x: float, unit: str = "") -> Check:
    return Check(lambda v, c: v > x, f"> {x:g}{unit}")


def ge(x: float, unit: str = "") -> Check:
    return Check(lambda v, c: v >= x, f">= {x:g}{unit}")


def int_ge(lo: int) -> Check:
    return Check(lambda v, c: v >= lo, f"an integer >= {lo}")


def choice(options: Iterable[Any]) -> Check:
    opts = tuple(options)
    return Check(lambda v, c: v in opts, "one of " + ", ".join(repr(o) for o in opts))


def compare(op: str, key: str, unit: str = "", lo: str = "") -> Check:
    """``value op <key>``, e.g. ``compare(">", "neuron.u_rest", " V")``; ``lo`` prefixes the
    text (``"> 0 and "``)."""
    cmp = {">": operator.gt, "<": operator.lt, ">=": operator.ge, "<=": operator.le}[op]
    return Check(
        lambda v, c: cmp(v, _get(c, key)),
        lambda c: f"{lo}{op} {key} = {_get(c, key)}{unit}",
        (key,),
    )


def multiple_of(key: str, strict: bool = False) -> Check:
    """``>= 0`` (``> 0`` if strict) and an integer multiple of ``<key>`` (to 1e-6 relative)."""
    lo = "> 0" if strict else ">= 0"

    def ok(v, c):
        q = _get(c, key)
        return (v > 0 if strict else v >= 0) and q > 0 and abs(v / q - round(v / q)) <= 1e-6

    return Check(ok, lambda c: f"{lo} s and a multiple of {key} = {_get(c, key)} s", (key,))


@dataclasses.dataclass(frozen=True)
class _Param:
    checks: tuple[Check, ...]
    doc: str


def param(
    default: Any = dataclasses.MISSING,
    *checks: Check,
    doc: str = "",
    default_factory: Any = dataclasses.MISSING,
    compare_field: bool = True,
) -> Any:
    """A dataclass field with its range ``checks`` and a one-line ``doc`` (units included)."""
    return dataclasses.field(
        default=default,
        default_factory=default_factory,
        compare=compare_field,
        metadata={_META: _Param(tuple(checks), doc)},
    )


def borrow(cls, name: str) -> Any:
    """A field declared by ``cls.name`` reused in another dataclass: the same default, checks
    and doc (one declaration; :func:`same_declaration` tells them apart from a second one)."""
    (f,) = [f for f in dataclasses.fields(cls) if f.name == name]
    return dataclasses.field(
        default=f.default, default_factory=f.default_factory, metadata=f.metadata
    )


def same_declaration(a: dataclasses.Field, b: dataclasses.Field) -> bool:
    """Whether two fields come from one :func:`param` declaration (directly or borrowed)."""
    return a.metadata.get(_META) is b.metadata.get(_META) is not None


def params_of(cls) -> list[tuple[dataclasses.Field, Any]]:
    """``(field, resolved type)`` of every :func:`param` field of ``cls``, in order."""
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls) if _META in f.metadata]


def _checks(f: dataclasses.Field) -> tuple[Check, ...]:
    return f.metadata[_META].checks


def doc(f: dataclasses.Field) -> str:
    """The one-line description a :func:`param` field was declared with."""
    return f.metadata[_META].doc


def check_scopes(
    scopes: Mapping[str, Any],
    ctx=None,
    *,
    skip: Iterable[str] = (),
    on_error: Callable[[ParamError], None] | None = None,
) -> None:
    """Run the declared checks of every ``scope -> dataclass instance`` of ``scopes``.

    ``ctx`` (default: the scopes themselves) provides ``ctx.<scope>.<name>`` for the checks'
    ``refs``; a check whose refs name a scope ``ctx`` lacks is skipped, and so are the dotted
    keys in ``skip`` (keys a config holds but its chosen variant does not read). Raises the first
    :class:`ParamError` (or passes it to ``on_error``, which must raise), checks without refs
    first, then the relational ones.
    """
    ctx = types.SimpleNamespace(**scopes) if ctx is None else ctx
    have, skip = set(vars(ctx)), set(skip)
    for relational in (False, True):
        for scope, obj in scopes.items():
            for f, _ in params_of(type(obj)):
                if f"{scope}.{f.name}" in skip:
                    continue
                v = getattr(obj, f.name)
                for chk in _checks(f):
                    if bool(chk.refs) != relational:
                        continue
                    if any(r.partition(".")[0] not in have for r in chk.refs):
                        continue
                    if not chk.ok(v, ctx):
                        err = ParamError(
                            f"{scope}.{f.name}",
                            f"must be {chk.text(ctx)}, got {_plain(v)!r}",
                            type(obj).__name__,
                        )
                        if on_error is not None:
                            on_error(err)
                        raise err


def check_fields(obj, **others) -> None:
    """Parse and check ``obj``'s own :func:`param` fields; canonical values (tuples, floats)
    are written back, so that the frozen instance hashes as a jit static argument. The checks
    see ``obj`` as its ``SCOPE`` plus the scopes in ``others`` (e.g. ``neuron=net.neuron``).
    Called from ``__post_init__``; raises ParamError."""
    scope = type(obj).SCOPE
    for f, tp in params_of(type(obj)):
        try:
            object.__setattr__(obj, f.name, parse(tp, getattr(obj, f.name)))
        except TypeProblem as exc:
            raise ParamError(
                f"{scope}.{f.name}",
                f"expected {exc}, got {getattr(obj, f.name)!r}",
                type(obj).__name__,
            ) from None
    check_scopes({scope: obj}, types.SimpleNamespace(**{scope: obj}, **others))


class FrozenDict(dict):
    """A read-only dict that hashes (by its JSON text): the value of a ``dict`` parameter, so
    that a frozen dataclass holding one still hashes (a jit static argument, a config)."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(json.dumps(self, sort_keys=True, default=repr))

    def _read_only(self, *args, **kwargs):
        raise TypeError("a parameter's mapping is read-only")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _read_only  # type: ignore[assignment]


def _plain(v):
    return [_plain(x) for x in v] if isinstance(v, (tuple, list)) else v


# ------------------------------------------------------------------------------------- types


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _describe(tp) -> str:
    if tp is float:
        return "a number"
    if tp is int:
        return "an integer (no decimal point)"
    if tp is bool:
        return "a boolean (true or false)"
    if tp is str:
        return "a string"
    if tp is dict:
        return "a mapping of names to values"
    args = typing.get_args(tp)
    if typing.get_origin(tp) is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            inner = args[0]
            if typing.get_origin(inner) is tuple:
                return "a list of [time, factor] pairs of numbers"
            return "a list of " + {int: "integers", float: "numbers"}.get(inner, "values")
        return "a pair" if len(args) == 2 else f"a list of {len(args)} values"
    return str(tp)


def parse(tp, v):
    """``v`` as type ``tp`` (float, int, bool, str, ``X | None``, ``tuple[X, ...]``,
    ``tuple[X, Y]``, ``dict``: a mapping with string keys, its values kept as YAML gives them,
    tuples as lists): lists become tuples, integers floats where a float is declared, and
    anything else raises TypeProblem (a bool is not a number; a float must be finite)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if v is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return parse(inner, v)
    if tp is float:
        if not _is_num(v):
            raise TypeProblem("a number")
        if not math.isfinite(v):
            raise TypeProblem("a finite number")
        return float(v)
    if tp is int:
        if not isinstance(v, int) or isinstance(v, bool):
            raise TypeProblem("an integer (no decimal point)")
        return v
    if tp is bool:
        if not isinstance(v, bool):
            raise TypeProblem("a boolean (true or false)")
        return v
    if tp is str:
        if not isinstance(v, str):
            raise TypeProblem("a string")
        return v
    if tp is dict:
        if not isinstance(v, dict) or not all(isinstance(k, str) for k in v):
            raise TypeProblem("a mapping of names to values")
        return FrozenDict({k: _plain(x) for k, x in v.items()})
    if origin is tuple:
        if not isinstance(v, (list, tuple)):
            raise TypeProblem(_describe(tp))
        if len(args) == 2 and args[1] is Ellipsis:
            try:
                return tuple(parse(args[0], x) for x in v)
            except TypeProblem:
                raise TypeProblem(_describe(tp)) from None
        if len(v) != len(args):
            raise TypeProblem(_describe(tp))
        return tuple(parse(a, x) for a, x in zip(args, v, strict=True))
    raise TypeError(f"parse: unsupported parameter type {tp!r}")  # a declaration bug
