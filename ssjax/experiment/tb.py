"""Run observation: TensorBoard events (without TensorFlow), a JSON-lines metrics file, progress.

The runner trains ``S`` seeds at once and every few blocks hands per-seed numpy metrics to a
:class:`RunLogger`, which writes

* TensorBoard scalars ``<name>/seed<k>``, ``<name>/mean`` and ``<name>/median`` (step = block) and
  PNG images, to ``workdir/tb``;
* one JSON line per call, ``{"block", "time_s", "<name>": [per seed]}``, to
  ``workdir/metrics.jsonl``;
* a tqdm progress bar over blocks (simulated seconds, current cost, tqdm's ETA).

Resume scheme (each ``(tag, step)`` and each block exactly once): a resumed run restarts at its
last checkpoint (block ``c``), although the killed run may have logged up to ``d > c``. On
construction the logger therefore rewrites, atomically (temporary file + ``os.replace``),

* ``metrics.jsonl`` keeping only lines with ``block <= c`` (a torn last line is dropped);
* every event file under ``workdir/tb`` keeping only events with ``step <= c`` (a torn last
  record is dropped; files left without summaries are deleted),

and then writes into a fresh event file whose name sorts after all existing ones. Readers
(TensorBoard, ``EventAccumulator``) thus see every step once and in order, and no reliance on
TensorBoard's purge-on-restart heuristics is needed. Logging a block that is not after the last
one kept or logged raises, since it would duplicate a step.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import socket
import struct
import sys
import time
from typing import Any

import numpy as np
from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.record_writer import RecordWriter
from tqdm import tqdm

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour type -> TensorBoard colorspace (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA).
_PNG_COLORSPACE = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}
# Temporary files must not contain "tfevents": TensorBoard would load a leftover one as events.
_TMP_SUFFIX = ".ssjax-rewrite.tmp"
_STAMP = re.compile(r"tfevents\.(\d+)\.")


def png_bytes_of(path) -> bytes:
    """The bytes of a PNG file (e.g. one written by :mod:`ssjax.plots`)."""
    with open(path, "rb") as f:
        return f.read()


class TBWriter:
    """Minimal TensorBoard event writer without TensorFlow (synchronous, legacy summaries).

    Writes one new event file in ``logdir``. Scalars are ``simple_value`` and images
    ``Summary.Image`` values; TensorBoard reads both (it migrates them to its plugin formats).
    """

    def __init__(self, logdir):
        self.logdir = os.fspath(logdir)
        os.makedirs(self.logdir, exist_ok=True)
        self.path = _new_event_path(self.logdir)
        self._file = open(self.path, "wb")
        self._records = RecordWriter(self._file)
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))
        self.flush()

    def scalar(self, tag: str, value: float, step: int) -> None:
        """Scalar ``value`` of ``tag`` at ``step``."""
        v = summary_pb2.Summary.Value(tag=tag, simple_value=float(value))
        self._summary(v, step)

    def image(self, tag: str, png_bytes: bytes, step: int) -> None:
        """PNG-encoded image of ``tag`` at ``step`` (size and colour space read from the header)."""
        width, height, colorspace = _png_header(png_bytes)
        img = summary_pb2.Summary.Image(
            height=height, width=width, colorspace=colorspace, encoded_image_string=png_bytes
        )
        self._summary(summary_pb2.Summary.Value(tag=tag, image=img), step)

    def hparams(self, values: dict) -> None:
        """The run's hyper-parameters (name -> bool, int, float or str) as the HParams plugin's
        session summary, so TensorBoard's HParams dashboard lists this run with them."""
        from tensorboard.plugins.hparams import summary_v2 as hp  # without TensorFlow

        summary = hp.hparams_pb(values)
        self._write(event_pb2.Event(wall_time=time.time(), step=0, summary=summary))

    def flush(self) -> None:
        """Push written events to disk."""
        self._records.flush()

    def close(self) -> None:
        """Flush and close the event file (idempotent)."""
        if not self._file.closed:
            self.flush()
            self._file.close()

    def _summary(self, value, step: int) -> None:
        summary = summary_pb2.Summary(value=[value])
        self._write(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def _write(self, event) -> None:
        self._records.write(event.SerializeToString())


class RunLogger:
    """Everything observed during a run: TensorBoard events, a JSON-lines metrics file, a progress
    bar.

    ``workdir/tb`` holds the events, ``workdir/metrics.jsonl`` the metrics (appended). Earlier
    output past ``start_block`` is removed first (see the module docstring). ``seeds`` names the
    per-seed entries (tags ``<name>/seed<k>``); ``layer_names`` is kept for callers' tags
    (``rate_hz/<layer>``); ``block_seconds`` converts blocks to simulated time. The progress
    bar (in ``unit``: blocks, or a trial run's epochs, with ``block_seconds`` 0: no simulated
    time) writes to stderr; outside a terminal it refreshes at most every 30 s so that log files
    are not flooded.
    """

    def __init__(
        self,
        workdir,
        *,
        seeds: list[int],
        layer_names: list[str],
        total_blocks: int,
        start_block: int,
        block_seconds: float,
        progress: bool = True,
        unit: str = "block",
    ):
        self.workdir = os.fspath(workdir)
        self.seeds = [int(s) for s in seeds]
        self.layer_names = list(layer_names)
        self.block_seconds = float(block_seconds)
        self.start_block = int(start_block)
        self.tb_dir = os.path.join(self.workdir, "tb")
        self.metrics_path = os.path.join(self.workdir, "metrics.jsonl")
        os.makedirs(self.tb_dir, exist_ok=True)
        # Truncate before opening the new event file, which must not be rewritten itself.
        self._last_block = _truncate_jsonl(self.metrics_path, self.start_block)
        self._last_step = _truncate_events(self.tb_dir, self.start_block)
        self.tb = TBWriter(self.tb_dir)
        self._jsonl = open(self.metrics_path, "a", encoding="utf-8")
        self._cost: float | None = None
        try:
            tty = sys.stderr.isatty()
        except (AttributeError, ValueError):
            tty = False
        self._bar = tqdm(
            initial=self.start_block,
            total=int(total_blocks),
            unit=unit,
            file=sys.stderr,
            disable=not progress,
            mininterval=0.5 if tty else 30.0,
            dynamic_ncols=tty,
            ncols=None if tty else 100,
            smoothing=0.1,
        )

    def log(self, block: int, values: dict[str, np.ndarray]) -> None:
        """Per-seed ``values`` (name -> ``[S]``) holding at ``block``.

        Writes TensorBoard scalars ``<name>/seed<k>`` and ``<name>/mean``, ``<name>/median`` (over
        the finite seeds, so one diverged seed does not hide the others; NaN if none is finite)
        and one JSON line; non-finite per-seed values become ``null`` there (strict JSON).
        """
        block = int(block)
        if block <= self._last_block:
            raise ValueError(f"block {block} not after the last logged block {self._last_block}")
        record: dict[str, Any] = {"block": block, "time_s": block * self.block_seconds}
        for name, v in values.items():
            a = np.asarray(v, np.float64).reshape(-1)
            if a.size != len(self.seeds):
                raise ValueError(f"{name}: {a.size} values for {len(self.seeds)} seeds")
            for seed, x in zip(self.seeds, a, strict=True):
                self.tb.scalar(f"{name}/seed{seed}", x, block)
            finite = a[np.isfinite(a)]
            self.tb.scalar(f"{name}/mean", finite.mean() if finite.size else math.nan, block)
            self.tb.scalar(f"{name}/median", np.median(finite) if finite.size else math.nan, block)
            record[name] = [float(x) if math.isfinite(x) else None for x in a]
            if name == "ema_cost" and finite.size:
                self._cost = float(np.median(finite))
        self._jsonl.write(json.dumps(record, allow_nan=False) + "\n")
        # Flush every call: a killed run then loses at most the values of the current call.
        self._jsonl.flush()
        self.tb.flush()
        self._last_block = block

    def image(self, block: int, tag: str, png_bytes: bytes) -> None:
        """PNG image ``tag`` at ``block`` (e.g. a raster from :mod:`ssjax.plots`)."""
        block = int(block)
        if block <= self._last_step.get(tag, -1):
            raise ValueError(f"image {tag!r}: block {block} already logged")
        self.tb.image(tag, png_bytes, block)
        self.tb.flush()
        self._last_step[tag] = block

    def advance(self, n_blocks: int, cost: float | None = None) -> None:
        """Move the progress bar by ``n_blocks``; ``cost`` (default: the median ``ema_cost`` of
        the last :meth:`log`) is shown with the simulated time."""
        cost = self._cost if cost is None else float(cost)
        post = (
            f"t={(self._bar.n + n_blocks) * self.block_seconds:.1f}s "
            if self.block_seconds > 0
            else ""
        )
        if cost is not None:
            post += f"cost={cost:.4g}"
        self._bar.set_postfix_str(post, refresh=False)
        self._bar.update(int(n_blocks))

    def close(self) -> None:
        """Close the progress bar, the event file and the metrics file."""
        self._bar.close()
        self.tb.close()
        self._jsonl.close()

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _png_header(png: bytes) -> tuple[int, int, int]:
    """``(width, height, colorspace)`` from a PNG's IHDR chunk."""
    if png[:8] != _PNG_SIGNATURE or png[12:16] != b"IHDR":
        raise ValueError("not a PNG image")
    width, height = struct.unpack(">II", png[16:24])
    return width, height, _PNG_COLORSPACE.get(png[25], 3)


def _new_event_path(logdir: str) -> str:
    """A new event file name that sorts after every existing one in ``logdir``.

    TensorBoard reads a run's files in name order; names start with the time in whole seconds,
    so a file created within the same second as the previous one (or after a clock step) is
    given a later stamp, keeping steps in order across resumes.
    """
    stamps = [int(m.group(1)) for f in os.listdir(logdir) if (m := _STAMP.search(f))]
    stamp = max([int(time.time()), *(s + 1 for s in stamps)])
    return os.path.join(
        logdir, f"events.out.tfevents.{stamp:010d}.{socket.gethostname()}.{os.getpid()}"
    )


def _replace_atomically(path: str, data: bytes) -> None:
    tmp = path + _TMP_SUFFIX
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _truncate_jsonl(path: str, max_block: int) -> int:
    """Keep the lines of ``path`` with ``block <= max_block``; the last block kept (or -1)."""
    if not os.path.exists(path):
        return -1
    kept, last = [], -1
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                block = int(json.loads(line)["block"])
            except (ValueError, KeyError, TypeError):
                continue  # torn line of a killed run
            if block <= max_block:
                kept.append(line if line.endswith("\n") else line + "\n")
                last = max(last, block)
    _replace_atomically(path, "".join(kept).encode("utf-8"))
    return last


def _truncate_events(tb_dir: str, max_step: int) -> dict[str, int]:
    """Drop events with ``step > max_step`` from every event file under ``tb_dir``.

    Returns the last step kept per tag. Files are only rewritten when something is dropped.
    """
    last: dict[str, int] = {}
    for root, _, files in os.walk(tb_dir):
        for name in sorted(files):
            path = os.path.join(root, name)
            if name.endswith(_TMP_SUFFIX):
                os.remove(path)  # leftover of a rewrite interrupted before os.replace
                continue
            if "tfevents" not in name:
                continue
            kept, has_summary = [], False
            for raw in RawEventFileLoader(path).Load():
                event = event_pb2.Event.FromString(raw)
                if event.HasField("summary"):
                    if event.step > max_step:
                        continue
                    has_summary = True
                    for v in event.summary.value:
                        last[v.tag] = max(last.get(v.tag, -1), event.step)
                kept.append(raw)
            # Record framing: u64 length and two u32 CRCs. A size mismatch means events were
            # dropped or the file ends in a record torn by the kill.
            if not has_summary:
                os.remove(path)
            elif sum(len(r) + 16 for r in kept) != os.path.getsize(path):
                _replace_atomically(path, _encode_records(kept))
    return last


def _encode_records(records: list[bytes]) -> bytes:
    """TFRecord framing of serialised events, as :class:`RecordWriter` writes them."""
    buf = io.BytesIO()
    writer = RecordWriter(buf)
    for r in records:
        writer.write(r)
    return buf.getvalue()
