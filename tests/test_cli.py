"""The ``ssjax`` command's dispatch: demo, compare, validate."""

import json

import pytest

from ssjax.cli import main


def test_demo_trains_and_writes_pictures(tmp_path, capsys):
    assert main(["demo", "--periods", "40", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out[out.find("{") :])
    assert summary["periods"] == 40 and summary["simulated_seconds"] == 20.0
    for name in ("raster.png", "learning_curve.png"):
        assert (tmp_path / name).stat().st_size > 1000


def test_compare_takes_its_own_options(tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["compare", "--rules", "bogus", "bptt"])
    assert e.value.code == 2
    assert (
        main(
            [
                "compare",
                "--sizes",
                "10",
                "2",
                "--rules",
                "superspike:none",
                "bptt",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert (tmp_path / "alignment.png").exists()


def test_validate_exit_codes(tmp_path, capsys):
    good = tmp_path / "c.yaml"
    good.write_text("run: {seeds: 2}\n")
    assert main(["validate", str(good)]) == 0
    assert "valid" in capsys.readouterr().out
    assert main(["validate", str(good), "--set", "run.seeds=0"]) == 2
    assert "run.seeds" in capsys.readouterr().err
    assert main(["demo", "--periods", "0"]) == 2
