"""Labelled trials for classification: spike events, device-side minibatches, splits, loaders.

- :mod:`ssjax.data.trials`: :class:`TrialSet`, trials as sorted events with per-trial offsets;
- :mod:`ssjax.data.batches`: :func:`epoch_indices`, :func:`dense_batch` (``x [T, B, N]`` built
  on the device), :func:`epoch_key`;
- :mod:`ssjax.data.splits`: :func:`split_indices`, :func:`split_trials`;
- loaders, which read from a path and never download: :func:`load_hdf5` (SHD/SSC),
  :func:`load_ras_folder`, :func:`randman_trials`, :func:`from_tonic_events` (tonic's format);
  :func:`write_hdf5` writes the SHD layout, :func:`synthetic_words` draws SHD-like trials.

Library level: the trial trainer that consumes these batches is built on top (issue 17).
"""

from ssjax.data.batches import SPIKE_MODES, dense_batch, epoch_indices, epoch_key, n_batches
from ssjax.data.hdf5 import HDF5_FIELDS, load_hdf5, write_hdf5
from ssjax.data.randman import randman_heldout_trials, randman_trials
from ssjax.data.ras import load_ras_folder, read_labels_file
from ssjax.data.splits import split_indices, split_trials
from ssjax.data.synthetic import synthetic_words
from ssjax.data.tonic_adapter import from_tonic_dataset, from_tonic_events, tonic_units
from ssjax.data.trials import ROUNDINGS, TrialSet, batch_capacity, time_to_step

__all__ = [
    "HDF5_FIELDS",
    "ROUNDINGS",
    "SPIKE_MODES",
    "TrialSet",
    "batch_capacity",
    "dense_batch",
    "epoch_indices",
    "epoch_key",
    "from_tonic_dataset",
    "from_tonic_events",
    "load_hdf5",
    "load_ras_folder",
    "n_batches",
    "randman_heldout_trials",
    "randman_trials",
    "read_labels_file",
    "split_indices",
    "split_trials",
    "synthetic_words",
    "time_to_step",
    "tonic_units",
    "write_hdf5",
]
