"""Synthetic SHD-like words (ssjax.data.synthetic) and the SHD-layout writer (write_hdf5)."""

import jax
import numpy as np
import pytest

from ssjax.data import TrialSet, load_hdf5, synthetic_words, write_hdf5

KW = dict(n_classes=3, n_per_class=4, n_units=60, duration=0.1, dt=1e-3, width=4.0)


def test_words_are_reproducible_class_specific_and_round_trip_through_hdf5(tmp_path):
    times, units, labels = synthetic_words(jax.random.PRNGKey(0), **KW)
    again = synthetic_words(jax.random.PRNGKey(0), **KW)
    other = synthetic_words(jax.random.PRNGKey(1), **KW)
    assert all(np.array_equal(a, b) for a, b in zip(units, again[1], strict=True))
    assert not all(
        a.shape == b.shape and np.array_equal(a, b) for a, b in zip(units, other[1], strict=True)
    )
    assert sorted(labels.tolist()) == [0] * 4 + [1] * 4 + [2] * 4
    ts = TrialSet.from_times(times, units, labels, n_units=60, dt=1e-3, duration=0.1)
    # the class means differ more between classes than within (the structure is there)
    rasters = np.stack([ts.trial_raster(i) for i in range(ts.n_trials)]).sum(1)  # [n, N]
    means = np.stack([rasters[labels == c].mean(0) for c in range(3)])
    between = np.mean([np.abs(means[a] - means[b]).sum() for a in range(3) for b in range(a)])
    within = np.mean([np.abs(r - means[c]).sum() for r, c in zip(rasters, labels, strict=True)])
    assert between > 0.5 * within and rasters.sum() > 100
    path = tmp_path / "words.h5"
    write_hdf5(path, times, units, labels)
    back = load_hdf5(path, n_units=60, dt=1e-3, duration=0.1)
    for name in ("steps", "units", "offsets", "labels"):
        assert np.array_equal(np.asarray(getattr(back, name)), np.asarray(getattr(ts, name)))
    with pytest.raises(FileExistsError, match="overwrite"):
        write_hdf5(path, times, units, labels)
    with pytest.raises(ValueError, match="differ in length"):
        write_hdf5(tmp_path / "bad.h5", times, units[:-1], labels)
    assert not (tmp_path / "bad.h5").exists() and not list(tmp_path.glob("*.tmp-*"))


def test_another_trial_key_gives_new_utterances_of_the_same_words():
    kw = dict(KW, n_per_class=30, jitter=2.0)  # jitter in proportion to 60 channels
    a = synthetic_words(jax.random.PRNGKey(0), trial_key=jax.random.PRNGKey(1), **kw)
    b = synthetic_words(jax.random.PRNGKey(0), trial_key=jax.random.PRNGKey(2), **kw)
    c = synthetic_words(jax.random.PRNGKey(5), trial_key=jax.random.PRNGKey(2), **kw)

    def class_means(words):
        ts = TrialSet.from_times(*words, n_units=60, dt=1e-3, duration=0.1)
        r = np.stack([ts.trial_raster(i).sum(0) for i in range(ts.n_trials)])
        return np.stack([r[words[2] == k].mean(0) for k in range(3)])

    ma, mb, mc = class_means(a), class_means(b), class_means(c)
    assert not all(np.array_equal(x, y) for x, y in zip(a[1], b[1], strict=True))
    # the same words: b's class means are closer to a's than another key's words are
    assert np.abs(ma - mb).sum() < 0.5 * np.abs(ma - mc).sum()
