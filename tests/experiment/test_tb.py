"""Run logging: TensorBoard events read back without TensorFlow, metrics file, resume, progress."""

import glob
import json
import os

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
from tensorboard.compat.proto import event_pb2

from ssjax import plots
from ssjax.experiment.tb import RunLogger, TBWriter, png_bytes_of

SEEDS = [0, 1, 2]


def _accumulator(logdir):
    # purge_orphaned_data=False: uniqueness must hold in the files, not via TensorBoard's purging.
    acc = ea.EventAccumulator(
        str(logdir), size_guidance={ea.SCALARS: 0, ea.IMAGES: 0}, purge_orphaned_data=False
    )
    return acc.Reload()


def _all_summary_steps(logdir):
    """Every (tag, step) in every event file under ``logdir``, with multiplicity."""
    out = []
    for path in sorted(glob.glob(os.path.join(logdir, "**", "*tfevents*"), recursive=True)):
        for raw in RawEventFileLoader(path).Load():
            ev = event_pb2.Event.FromString(raw)
            out += [(v.tag, ev.step) for v in ev.summary.value]
    return out


def _png(tmp_path, name="img.png"):
    x = np.linspace(0, 1, 50)
    return png_bytes_of(plots.seed_curves(x, np.stack([x, x**2], 1), tmp_path / name, "y", "x"))


def _jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_tbwriter_scalars_and_images_read_back(tmp_path):
    png = _png(tmp_path)
    w = TBWriter(tmp_path / "tb")
    for step in range(5):
        w.scalar("loss/a", 0.5 * step, step)
    w.image("raster", png, 3)
    w.close()
    acc = _accumulator(tmp_path / "tb")
    assert acc.Tags()["scalars"] == ["loss/a"]
    assert [(e.step, e.value) for e in acc.Scalars("loss/a")] == [(s, 0.5 * s) for s in range(5)]
    (img,) = acc.Images("raster")
    assert img.step == 3 and img.encoded_image_string == png
    # 6 x 3.5 inches at 120 dpi.
    assert (img.width, img.height) == (720, 420)


def test_tbwriter_rejects_non_png(tmp_path):
    w = TBWriter(tmp_path)
    with pytest.raises(ValueError):
        w.image("x", b"GIF89a" + bytes(30), 0)
    w.close()


def test_runlogger_log_scalars_and_jsonl(tmp_path):
    lg = RunLogger(
        tmp_path, seeds=[3, 5, 7, 9], layer_names=["hidden0", "out"], total_blocks=100,
        start_block=0, block_seconds=0.5, progress=False,
    )  # fmt: skip
    vr = np.array([1.0, 4.0, 2.0, np.nan])
    rate = np.array([10.0, 11.0, 12.0, 13.0])
    lg.log(8, {"van_rossum": vr, "rate_hz/hidden0": rate})
    lg.close()
    acc = _accumulator(tmp_path / "tb")
    val = {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}
    assert val["van_rossum/seed3"] == [(8, 1.0)] and val["van_rossum/seed7"] == [(8, 2.0)]
    assert np.isnan(val["van_rossum/seed9"][0][1])
    # Mean and median over the finite seeds.
    assert val["van_rossum/mean"] == [(8, pytest.approx(7 / 3))]
    assert val["van_rossum/median"] == [(8, 2.0)]
    assert val["rate_hz/hidden0/mean"] == [(8, 11.5)]
    assert val["rate_hz/hidden0/median"] == [(8, 11.5)]
    assert len(val) == 2 * (4 + 2)
    (line,) = _jsonl(tmp_path / "metrics.jsonl")
    assert line == {
        "block": 8,
        "time_s": 4.0,
        "van_rossum": [1.0, 4.0, 2.0, None],
        "rate_hz/hidden0": rate.tolist(),
    }


def test_runlogger_rejects_duplicate_blocks_and_wrong_sizes(tmp_path):
    lg = RunLogger(tmp_path, seeds=SEEDS, layer_names=[], total_blocks=10, start_block=0,
                   block_seconds=0.5, progress=False)  # fmt: skip
    lg.log(2, {"a": np.zeros(3)})
    with pytest.raises(ValueError):
        lg.log(2, {"a": np.zeros(3)})
    with pytest.raises(ValueError):
        lg.log(4, {"a": np.zeros(2)})
    lg.close()


def _run(workdir, start, blocks, offset, *, image=True, png=None):
    lg = RunLogger(workdir, seeds=SEEDS, layer_names=["out"], total_blocks=100,
                   start_block=start, block_seconds=0.5, progress=False)  # fmt: skip
    for b in blocks:
        lg.log(b, {"cost": np.arange(3.0) + b + offset, "w": np.full(3, offset)})
        if image:
            lg.image(b, "raster", png)
    lg.close()


@pytest.mark.parametrize("torn", [False, True])
def test_resume_leaves_each_block_and_step_once(tmp_path, torn):
    png = _png(tmp_path, "p.png")
    work = tmp_path / "run"
    _run(work, 0, range(10, 51, 10), 0.0, png=png)
    if torn:  # the first run was killed in the middle of writing
        with open(work / "metrics.jsonl", "a") as f:
            f.write('{"block": 60, "time_')
        (ev,) = glob.glob(str(work / "tb" / "*tfevents*"))
        with open(ev, "ab") as f:
            f.write(b"\x20\x00\x00\x00\x00\x00\x00\x00\x01\x02")
    _run(work, 30, range(40, 61, 10), 100.0, png=png)

    lines = _jsonl(work / "metrics.jsonl")
    assert [r["block"] for r in lines] == [10, 20, 30, 40, 50, 60]
    assert [r["w"][0] for r in lines] == [0, 0, 0, 100, 100, 100]

    steps = _all_summary_steps(work / "tb")
    assert len(steps) == len(set(steps))
    tags = {t for t, _ in steps}
    assert tags == {f"{n}/{s}" for n in ("cost", "w") for s in ["mean", "median"] + [
        f"seed{k}" for k in SEEDS]} | {"raster"}  # fmt: skip
    assert all(sorted(s for t2, s in steps if t2 == t) == [10, 20, 30, 40, 50, 60] for t in tags)

    acc = _accumulator(work / "tb")
    got = {(e.step, e.value) for e in acc.Scalars("cost/seed2")}
    assert got == {(b, b + 2.0 + (100.0 if b > 30 else 0.0)) for b in range(10, 61, 10)}
    assert [e.value for e in acc.Scalars("w/median")] == [0, 0, 0, 100, 100, 100]
    assert [e.step for e in acc.Images("raster")] == [10, 20, 30, 40, 50, 60]
    assert not [f for f in os.listdir(work / "tb") if f.endswith(".tmp")]


def test_resume_from_zero_after_restart_without_logs(tmp_path):
    """A run resumed before anything was logged discards all earlier output."""
    work = tmp_path / "run"
    _run(work, 0, [5, 10], 0.0, image=False)
    _run(work, 0, [5, 10], 1.0, image=False)
    assert [r["w"][0] for r in _jsonl(work / "metrics.jsonl")] == [1.0, 1.0]
    assert len(glob.glob(str(work / "tb" / "*tfevents*"))) == 1
    assert [e.value for e in _accumulator(work / "tb").Scalars("w/mean")] == [1.0, 1.0]


def test_progress_bar_non_tty(tmp_path, capsys):
    lg = RunLogger(tmp_path, seeds=SEEDS, layer_names=[], total_blocks=20, start_block=4,
                   block_seconds=0.5, progress=True)  # fmt: skip
    lg.log(6, {"ema_cost": np.array([0.3, 0.1, 0.2])})
    lg.advance(2)
    lg.advance(4, cost=0.05)
    lg.close()
    err = capsys.readouterr().err
    assert err.strip()
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert "10/20" in last and "t=5.0s" in last and "cost=0.05" in last
    assert lg._bar.n == 10


def test_progress_disabled_writes_nothing(tmp_path, capsys):
    lg = RunLogger(tmp_path, seeds=SEEDS, layer_names=[], total_blocks=20, start_block=0,
                   block_seconds=0.5, progress=False)  # fmt: skip
    lg.advance(3, cost=1.0)
    lg.close()
    assert capsys.readouterr().err == ""


def test_plot_functions_write_pngs(tmp_path):
    rng = np.random.default_rng(0)
    spikes = (rng.random((2000, 5)) < 0.002).astype(np.uint8)
    target = np.zeros((2000, 5), np.uint8)
    target[[100, 700, 1500], [0, 2, 4]] = 1
    p1 = plots.output_vs_target(spikes, target, 1e-4, tmp_path / "ovt.png", title="out")
    x = np.arange(30)
    vals = rng.random((30, 4)).cumsum(0)
    vals[5:, 3] = np.nan
    p2 = plots.seed_curves(x, vals, tmp_path / "few.png", "cost", "block")
    p3 = plots.seed_curves(x, rng.random((30, 20)), tmp_path / "many.png", "cost", "block")
    for p in (p1, p2, p3):
        data = png_bytes_of(p)
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
