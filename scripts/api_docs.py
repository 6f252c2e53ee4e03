"""Build ssjax's API reference (HTML) from its docstrings with pdoc, offline.

    python scripts/api_docs.py [OUT]          # default: build/api; open OUT/index.html

Every public module (``ssjax`` and each ``ssjax.*`` whose name has no leading underscore) gets
a page; no asset is fetched from the network (pdoc's MathJax and Mermaid are off, its search
index is local). CI builds it (``.ci/run``); a module that fails to import fails the build.
Needs the ``docs`` extra (``pip install -e '.[docs]'``); modules whose optional dependency is
missing (``ssjax.nn`` without flax) are skipped with a note.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
import warnings
from pathlib import Path

import ssjax

# optional dependency -> the modules that need it
OPTIONAL = {"flax": ("ssjax.nn",)}


def public_modules() -> list[str]:
    """``ssjax`` and its public submodules, sorted; optional ones only where importable."""
    names = ["ssjax"]
    for info in pkgutil.walk_packages(ssjax.__path__, "ssjax."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    missing = {m for d, ms in OPTIONAL.items() if not importlib.util.find_spec(d) for m in ms}
    for m in sorted(missing & set(names)):
        print(f"note: {m} skipped (its optional dependency is not installed)", file=sys.stderr)
    return sorted(set(names) - missing)


def build(out) -> list[str]:
    """Render every public module into ``out``; returns the module names. Raises RuntimeError
    naming the modules that could not be imported."""
    import pdoc
    import pdoc.render

    modules = public_modules()
    broken = []
    for m in modules:  # pdoc only warns; an API reference missing a module is a failed build
        try:
            importlib.import_module(m)
        except Exception as e:  # noqa: BLE001 - reported with the module's name
            broken.append(f"{m}: {type(e).__name__}: {e}")
    if broken:
        raise RuntimeError("cannot import " + "; ".join(broken))
    pdoc.render.configure(docformat="google", math=False, mermaid=False, search=True)
    with warnings.catch_warnings():
        # forward references to private aliases (Array, PyTree) cannot be resolved on re-export
        warnings.filterwarnings("ignore", message="Error parsing type annotation")
        # a package's page already walks its submodules; listing them too is harmless
        warnings.filterwarnings("ignore", message="The module specification")
        pdoc.pdoc(*modules, output_directory=Path(out))
    return modules


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "build/api")
    mods = build(target)
    print(f"API reference: {len(mods)} modules in {target}/index.html")
