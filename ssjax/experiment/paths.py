"""Where ssjax finds its files: the shipped configs and the data root.

**Shipped configs.** The experiment YAML files live inside the package (``ssjax/configs/``,
package data), so ``ssjax train default`` and ``ssjax reproduce`` work from an installed wheel.
:func:`find_config` takes a path or the name of a shipped config (``default`` or
``default.yaml``); a path that exists wins over a name.

**Data root.** A config's data path (``task.input``, ``task.target``, ``task.image``) written
``data:<relative path>`` (e.g. ``data:ssbm/poisson/input.ras``) is resolved against the data
root, which is

1. the folder named by the environment variable ``SSJAX_DATA``, when it is set; else
2. in a source checkout (the folder above the package holds ``pyproject.toml``), its
   ``shared/data`` or, beside the checkout, ``../shared/data``, the first that exists.

Any other data path is a file path, relative to the YAML file's folder (``~`` expanded). The
shipped configs use ``data:`` only, since a wheel puts their folder in site-packages.

Nothing here runs at import time beyond locating the package folder; the environment is read
when a path is resolved.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

__all__ = [
    "CONFIGS",
    "DATA_ENV",
    "DATA_PREFIX",
    "DataRootError",
    "PathError",
    "UnknownConfigError",
    "data_root",
    "find_config",
    "resolve_data_path",
    "shipped_configs",
]

# a regular package on disk (wheel or editable install), so the Traversable is a Path
CONFIGS = Path(str(resources.files("ssjax").joinpath("configs")))
DATA_ENV = "SSJAX_DATA"
DATA_PREFIX = "data:"
_CHECKOUT = Path(str(resources.files("ssjax"))).parent
_CONFIG_SUFFIXES = (".yaml", ".yml")


class PathError(ValueError):
    """A config name or data path that cannot be resolved; ``str()`` says how to fix it."""


class UnknownConfigError(PathError):
    """Neither an existing file nor the name of a shipped config; ``reason`` is the message
    without the name (for callers that print the name already)."""

    def __init__(self, name: str, shipped: list[str]):
        self.name, self.shipped = name, shipped
        self.reason = (
            "neither a config file nor the name of a shipped config; shipped configs "
            f"({CONFIGS}): {', '.join(shipped)}"
        )
        super().__init__(f"{name!r}: {self.reason}")


class DataRootError(PathError):
    """A ``data:`` path with no usable data root."""


def shipped_configs() -> list[str]:
    """Names (file stems, sorted) of the configs shipped in ``ssjax/configs/``."""
    return sorted(p.stem for p in CONFIGS.glob("*.yaml"))


def find_config(spec: str | os.PathLike) -> Path:
    """The YAML file ``spec`` stands for: ``spec`` itself when it exists or looks like a path
    (it holds a folder separator), else the shipped config of that name (``.yaml`` optional).

    Raises UnknownConfigError for a bare name that is not shipped, naming it and listing the
    shipped ones. A path that does not exist is returned as is: loading it gives the usual
    "cannot read config file" error.
    """
    text = os.fspath(spec)
    path = Path(text)
    if path.exists() or os.sep in text or (os.altsep and os.altsep in text):
        return path
    stem = path.stem if path.suffix in _CONFIG_SUFFIXES else path.name
    shipped = CONFIGS / f"{stem}.yaml"
    if shipped.is_file():
        return shipped
    if path.suffix in _CONFIG_SUFFIXES:  # meant as a file in the current folder
        return path
    raise UnknownConfigError(text, shipped_configs())


def _checkout_data() -> list[Path]:
    """The default data roots of a source checkout, most specific first ([] in a wheel)."""
    if not (_CHECKOUT / "pyproject.toml").is_file():
        return []
    return [_CHECKOUT / "shared" / "data", _CHECKOUT.parent / "shared" / "data"]


def data_root(environ: Mapping[str, str] | None = None) -> Path:
    """The folder ``data:`` paths are relative to (see the module docstring).

    ``environ`` defaults to ``os.environ``. Raises DataRootError when ``SSJAX_DATA`` names no
    folder, or when it is unset and no checkout default exists; the message says how to set it.
    """
    env = os.environ if environ is None else environ
    value = env.get(DATA_ENV, "")
    if value:
        root = Path(value).expanduser()
        if not root.is_dir():
            raise DataRootError(
                f"{DATA_ENV}={value} is not a folder; set {DATA_ENV} to the folder that holds "
                "ssbm/, or unset it to use the checkout's shared/data"
            )
        return root.resolve()
    for root in _checkout_data():
        if root.is_dir():
            return root.resolve()
    looked = ", ".join(str(p) for p in _checkout_data()) or "none: not a source checkout"
    raise DataRootError(
        f"no data root for {DATA_PREFIX} paths: set {DATA_ENV} to the folder that holds "
        f"ssbm/ (e.g. export {DATA_ENV}=/path/to/shared/data); checkout defaults looked at: "
        f"{looked}"
    )


def resolve_data_path(
    value: str, base: str | os.PathLike, environ: Mapping[str, str] | None = None
) -> str:
    """Absolute, normalised path of the data path ``value``: ``data:<rel>`` under
    :func:`data_root`, anything else relative to the folder ``base`` (``~`` expanded).

    Raises DataRootError for a ``data:`` path without a data root, or one that leaves it
    (``data:/abs`` or ``data:../x``), so a config cannot silently read outside the data.
    """
    if not value.startswith(DATA_PREFIX):
        return os.path.normpath(os.path.join(os.fspath(base), os.path.expanduser(value)))
    rel = value[len(DATA_PREFIX) :]
    if not rel or os.path.isabs(rel) or ".." in Path(rel).parts:
        raise DataRootError(
            f"{value!r}: a {DATA_PREFIX} path is relative to the data root and stays inside it, "
            f"e.g. {DATA_PREFIX}ssbm/poisson/input.ras"
        )
    return os.path.normpath(os.path.join(data_root(environ), rel))
