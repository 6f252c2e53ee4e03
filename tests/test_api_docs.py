"""The API reference (scripts/api_docs.py): every public module, built offline from docstrings."""

import importlib.util
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
api_docs = runpy.run_path(str(ROOT / "scripts" / "api_docs.py"))


def test_every_public_module_file_is_listed():
    files = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in (ROOT / "ssjax").rglob("*.py")
    }
    public = {m for m in files if not any(part.startswith("_") for part in m.split("."))}
    listed = set(api_docs["public_modules"]())
    optional = {m for dep, ms in api_docs["OPTIONAL"].items() for m in ms}
    assert public - optional <= listed <= public
    assert "ssjax.experiment.load" in listed and "ssjax._scan" not in listed


@pytest.mark.slow  # ~20 s: renders every module
@pytest.mark.skipif(importlib.util.find_spec("pdoc") is None, reason="needs the docs extra")
def test_the_reference_builds_offline_with_every_page(tmp_path):
    modules = api_docs["build"](tmp_path)
    for m in modules:
        page = tmp_path.joinpath(*m.split(".")).with_suffix(".html")
        assert page.is_file(), m
    load = (tmp_path / "ssjax" / "experiment" / "load.html").read_text()
    assert "Read the run in" in load  # load_run's docstring
    for page in tmp_path.rglob("*.html"):  # offline: nothing is fetched
        html = page.read_text()
        assert '<script src="http' not in html and "cdn" not in html.lower(), page
