"""Spike data sets in the Heidelberg HDF5 layout (SHD, SSC, and recordings written the same way).

The layout (Cramer et al. 2022), one file per split (``shd_train.h5``, ``shd_test.h5``)::

    spikes/times   [n_trials] variable-length float arrays, spike times (s)
    spikes/units   [n_trials] variable-length integer arrays, the channel of each spike
    labels         [n_trials] integer classes

SHD and SSC have 700 channels and 20 and 35 classes. Nothing is downloaded: the files are read
from the path given (h5py). Other groups of the file (``extra/``) are ignored.

Reference: Cramer, Stradmann, Schemmel & Zenke (2022), IEEE TNNLS 33(7):2744-2757.
"""

from __future__ import annotations

import os

import numpy as np

from ssjax.data.trials import TrialSet

__all__ = ["HDF5_FIELDS", "load_hdf5", "write_hdf5"]

HDF5_FIELDS = ("spikes/times", "spikes/units", "labels")


def load_hdf5(
    path,
    *,
    n_units: int,
    dt: float,
    duration: float | None = None,
    n_classes: int | None = None,
    rounding: str = "round",
    on_out_of_range: str = "error",
) -> TrialSet:
    """Read one split of an SHD/SSC-layout file into a :class:`TrialSet`.

    Args:
      path: the ``.h5`` file.
      n_units: channels ``N`` (700 for SHD and SSC).
      dt: step (s). duration: trial length (s), ``n_steps = rint(duration / dt)``; None: the
        last spike's step + 1 of this file (give the same value for every split, e.g. 1.0 s).
      n_classes: None: ``max(labels) + 1`` of this file (give it: 20 for SHD, 35 for SSC).
      rounding, on_out_of_range: as :meth:`TrialSet.from_times` (spikes past ``duration`` or
        channels ``>= n_units``: an error, or dropped with a warning).

    Raises FileNotFoundError; ValueError naming the file and the dataset for a file that is not
    HDF5, a missing dataset, trial counts that differ between the datasets, or a trial whose
    times and units differ in length.
    """
    import h5py  # the library's HDF5 reader; imported here so that ssjax.data imports without it

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path}: not an HDF5 file ({exc})") from None
    with fh:
        data = {}
        for name in HDF5_FIELDS:
            if name not in fh or not isinstance(fh[name], h5py.Dataset):
                raise ValueError(
                    f"{path}: missing dataset '{name}' (the SHD/SSC layout has "
                    + ", ".join(HDF5_FIELDS)
                    + ")"
                )
            data[name] = fh[name][()]
    times, units, labels = (data[n] for n in HDF5_FIELDS)
    labels = np.asarray(labels).reshape(-1)
    if len(times) != len(units) or len(times) != labels.size:
        raise ValueError(
            f"{path}: trial counts differ: spikes/times {len(times)}, spikes/units {len(units)}, "
            f"labels {labels.size}"
        )
    return TrialSet.from_times(
        list(times),
        list(units),
        labels,
        n_units=n_units,
        dt=dt,
        duration=duration,
        n_classes=n_classes,
        rounding=rounding,
        on_out_of_range=on_out_of_range,
        source=path,
        fields=("spikes/times", "spikes/units"),
    )


def write_hdf5(path, times, units, labels, *, overwrite: bool = False) -> None:
    """Write trials in the SHD/SSC layout that :func:`load_hdf5` reads.

    ``times[i]`` (s, float) and ``units[i]`` (int) are trial ``i``'s spikes, ``labels`` ``[n]``
    its classes. The file is written beside ``path`` and renamed into place, so a failure never
    leaves a partial file; an existing ``path`` is an error unless ``overwrite``.
    """
    import h5py

    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)")
    labels = np.asarray(labels).reshape(-1)
    if not len(times) == len(units) == labels.size:
        raise ValueError(
            f"{path}: times, units and labels differ in length: "
            f"{len(times)}, {len(units)}, {labels.size}"
        )
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with h5py.File(tmp, "w") as fh:
            ft = fh.create_dataset("spikes/times", (labels.size,), h5py.vlen_dtype(np.float32))
            fu = fh.create_dataset("spikes/units", (labels.size,), h5py.vlen_dtype(np.uint16))
            for i, (t, u) in enumerate(zip(times, units, strict=True)):
                t, u = np.asarray(t, np.float32), np.asarray(u)
                if t.shape != u.shape:
                    raise ValueError(f"{path}: trial {i}: {t.size} times but {u.size} units")
                ft[i], fu[i] = t, u.astype(np.uint16)
            fh.create_dataset("labels", data=labels.astype(np.uint8))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
