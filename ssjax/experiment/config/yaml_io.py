"""YAML in and out: the YAML 1.2 loader, plain dicts, dump and diff of configs.

YAML is read with the YAML 1.2 core rules for booleans and floats: only ``true``/``false`` are
booleans (``yes``/``on`` stay strings and are rejected for a bool key), and ``5e-3`` is a float.
"""

from __future__ import annotations

import dataclasses
import os
import re

import yaml

from ssjax.experiment.config.errors import ConfigError
from ssjax.experiment.config.schema import SECTIONS, Config
from ssjax.experiment.workdir import atomic_write

__all__ = ["DuplicateKey", "config_to_dict", "diff_configs", "dump_config", "plain", "read_yaml"]


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


class DuplicateKey(yaml.YAMLError):
    """A mapping names the same key twice (PyYAML would silently keep the last value)."""

    def __init__(self, key, first, mark):
        super().__init__(f"duplicate key {key!r} (first on line {first.line + 1})")
        self.problem, self.problem_mark = str(self), mark


def _mapping(loader, node, deep=False):
    seen = {}
    for k, _ in node.value:
        key = loader.construct_object(k, deep=True)
        try:
            first = seen.setdefault(key, k.start_mark)
        except TypeError:  # an unhashable key: PyYAML's own error follows
            continue
        if first is not k.start_mark:
            raise DuplicateKey(key, first, k.start_mark)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


def _map_without_duplicates(loader, node):
    data: dict = {}
    yield data  # PyYAML's two-step construction (for recursive nodes)
    data.update(_mapping(loader, node))


_Loader.add_constructor("tag:yaml.org,2002:map", _map_without_duplicates)


def read_yaml(text: str, where: str):
    """Parse ``text``; a syntax error or a duplicate key is a ConfigError naming ``where`` and
    the line."""
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: safe
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = f"{where}, line {mark.line + 1}" if mark is not None else where
        problem = getattr(exc, "problem", None) or str(exc)
        kind = "YAML" if isinstance(exc, DuplicateKey) else "YAML syntax error"
        raise ConfigError(loc, None, f"{kind}: {problem}") from None


def plain(v):
    """Tuples as lists and mappings as plain dicts, recursively (YAML and JSON friendly)."""
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    return [plain(x) for x in v] if isinstance(v, (tuple, list)) else v


def config_to_dict(cfg: Config) -> dict:
    """Nested plain dict (lists, not tuples) of all sections; ``source`` is left out."""
    return {
        sec: {f.name: plain(getattr(getattr(cfg, sec), f.name)) for f in dataclasses.fields(cls)}
        for sec, cls in SECTIONS.items()
    }


def dump_config(cfg: Config, path) -> None:
    """Write ``cfg`` as YAML; ``load_config(path) == cfg``."""
    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=None)
    origin = f" from {cfg.source}" if cfg.source else ""
    # atomic: a full disk must not leave an empty file that would load as the defaults
    atomic_write(os.fspath(path), f"# ssjax config (written by dump_config{origin})\n" + text)


def diff_configs(a: Config, b: Config) -> list[tuple[str, object, object]]:
    """``(dotted key, value in a, value in b)`` for every key that differs, in schema order."""
    da, db = config_to_dict(a), config_to_dict(b)
    return [(f"{s}.{k}", da[s][k], db[s][k]) for s in da for k in da[s] if da[s][k] != db[s][k]]
