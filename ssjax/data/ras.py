"""A folder of ``.ras`` files as labelled trials: one file per trial.

Each file is parsed by ssjax's ``.ras`` reader (:func:`ssjax.tasks.raster.read_ras`: one spike a
line, ``time_in_seconds unit_id``, ``#`` comments), so ids, offsets and out-of-range handling are
those of ``task.kind: ras``. Files are taken in sorted name order. The label of each file comes
from, in this order:

- a labels file (``labels=`` path, relative to the folder unless absolute): one line per trial,
  ``file_name label`` (whitespace separated, ``#`` comments); every ``.ras`` file of the folder
  must be listed and every listed file must exist;
- otherwise the file name: its leading integer, ended by ``_``, ``-`` or ``.``
  (``3_take07.ras`` and ``12.ras`` are classes 3 and 12).
"""

from __future__ import annotations

import glob
import os
import re

import numpy as np

from ssjax.data.trials import TrialSet
from ssjax.tasks.raster import RasterError, read_ras

__all__ = ["load_ras_folder", "read_labels_file"]

_LEADING_LABEL = re.compile(r"^(\d+)[_\-.]")


def read_labels_file(path) -> dict[str, int]:
    """``{file_name: label}`` of a labels file (``file_name label`` lines); ValueError naming
    the file and line for a malformed line or a repeated name."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: labels file not found")
    out: dict[str, int] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split()
            if len(fields) != 2 or not re.fullmatch(r"\d+", fields[1]):
                raise ValueError(
                    f"{path}, line {lineno}: expected 'file_name label' (a non-negative integer "
                    f"label), got {raw.rstrip()!r}"
                )
            if fields[0] in out:
                raise ValueError(f"{path}, line {lineno}: {fields[0]!r} is listed twice")
            out[fields[0]] = int(fields[1])
    return out


def load_ras_folder(
    folder,
    *,
    n_units: int,
    dt: float,
    duration: float | None = None,
    labels=None,
    n_classes: int | None = None,
    id_offset: int = 0,
    rounding: str = "round",
    on_out_of_range: str = "error",
) -> TrialSet:
    """The ``*.ras`` files of ``folder`` as a :class:`TrialSet`, one trial per file (sorted names).

    Args:
      folder: the folder. n_units: units ``N``. dt: step (s).
      duration: trial length (s); None: the last spike's step + 1 over all files.
      labels: a labels file (module docstring), or None for labels from the file names.
      n_classes: None: ``max(label) + 1``.
      id_offset, on_out_of_range: as :func:`ssjax.tasks.raster.read_ras` (ids) and
        :meth:`TrialSet.from_times` (times past ``duration``); rounding: as the latter (the
        default ``"round"`` is ``task.kind: ras``'s binning).

    Raises FileNotFoundError for a missing folder; ValueError naming the file (and line) for a
    malformed file, a missing label, or an out-of-range id or time.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: no such folder")
    paths = sorted(glob.glob(os.path.join(glob.escape(folder), "*.ras")))
    if not paths:
        raise ValueError(f"{folder}: no .ras files")
    names = [os.path.basename(p) for p in paths]
    if labels is not None:
        lpath = labels if os.path.isabs(labels) else os.path.join(folder, labels)
        table = read_labels_file(lpath)
        missing = [n for n in names if n not in table]
        if missing:
            raise ValueError(f"{lpath}: no label for {missing[0]} ({len(missing)} files unlisted)")
        extra = sorted(set(table) - set(names))
        if extra:
            raise ValueError(f"{lpath}: lists {extra[0]}, which is not a .ras file of {folder}")
        y = [table[n] for n in names]
    else:
        y = []
        for p, n in zip(paths, names, strict=True):
            m = _LEADING_LABEL.match(n)
            if m is None:
                raise ValueError(
                    f"{p}: no label in the file name (a leading integer ended by '_', '-' or "
                    "'.', e.g. 3_take07.ras); or pass labels= a labels file"
                )
            y.append(int(m.group(1)))
    times, units = [], []
    for p in paths:
        try:
            ev = read_ras(p, n=n_units, id_offset=id_offset, on_out_of_range=on_out_of_range)
        except RasterError as exc:
            raise ValueError(str(exc)) from None
        times.append(ev.times)
        units.append(ev.ids)
    trials = np.asarray(y, np.int64)
    try:
        return TrialSet.from_times(
            times,
            units,
            trials,
            n_units=n_units,
            dt=dt,
            duration=duration,
            n_classes=n_classes,
            rounding=rounding,
            on_out_of_range=on_out_of_range,
            source=folder,
        )
    except ValueError as exc:
        m = re.search(r"trial (\d+)", str(exc))
        if m is None:
            raise
        # name the file rather than the trial index: "<folder>: <file>: ..."
        raise ValueError(str(exc).replace(m.group(0), names[int(m.group(1))], 1)) from None
