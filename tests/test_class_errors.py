"""Tests for ssjax.class_errors: SuperSpike's per-class error signals on hand-computed trials,
their agreement with the scanned window error of ssjax.losses, and the reduction to the XOR
task's error on its own stream cut into trials."""

import jax
import jax.numpy as jnp
import numpy as np

from ssjax.class_errors import (
    class_target_error,
    class_targets,
    class_window_code,
    class_window_error,
)
from ssjax.losses import window_error
from ssjax.tasks.xor import XORSpec, xor_stream


def test_class_targets_by_hand():
    tgt = np.asarray(class_targets(jnp.asarray([2, 0]), 3, 6, [1, 4, 4]))
    assert tgt.shape == (6, 2, 3) and tgt.dtype == np.float32
    want = np.zeros((6, 2, 3), np.float32)
    want[1, 0, 2] = want[1, 1, 0] = 1.0
    want[4, 0, 2] = want[4, 1, 0] = 2.0  # two target spikes in one step
    np.testing.assert_array_equal(tgt, want)
    s = np.zeros((6, 2, 3), np.float32)
    s[1, 0, 2] = s[3, 0, 1] = 1.0
    err = np.asarray(class_target_error(jnp.asarray(s), jnp.asarray([2, 0]), [1, 4, 4]))
    np.testing.assert_array_equal(err, want - s)
    assert err[1, 0, 2] == 0.0 and err[3, 0, 1] == -1.0 and err[4, 0, 2] == 2.0


def test_class_window_error_by_hand():
    # T = 8, window [2, 6), 3 classes; example 0 label 1, example 1 label 2
    s = np.zeros((8, 2, 3), np.float32)
    s[0, 0, 0] = 1  # wrong output, before the window: no error
    s[3, 0, 0] = 1  # wrong output in the window: -1 at once
    s[6, 0, 2] = 1  # wrong output after the window: no error
    s[1, 0, 1] = 1  # correct output before the window: does not count
    s[4, 1, 2] = s[5, 1, 2] = 1  # correct output fires (twice) in the window: no error
    s[2, 1, 1] = 1  # wrong output at the window's first step
    labels = jnp.asarray([1, 2])
    error = jax.jit(class_window_error)
    delta = np.asarray(error(jnp.asarray(s), labels, 2, 6))
    want = np.zeros_like(s)
    want[3, 0, 0] = -1
    want[5, 0, 1] = +1  # example 0's correct output missed its window: +1 at the last step
    want[2, 1, 1] = -1
    np.testing.assert_array_equal(delta, want)
    # per-example windows: example 1's window [0, 2) sees no correct spike, no wrong one
    delta = np.asarray(error(jnp.asarray(s), labels, jnp.asarray([2, 0]), jnp.asarray([6, 2])))
    want[2, 1, 1] = 0
    want[1, 1, 2] = +1
    np.testing.assert_array_equal(delta, want)


def test_window_code_by_hand_and_the_scanned_error_agrees():
    code = np.asarray(class_window_code(jnp.asarray([1, 0]), 3, 6, 1, 4))
    assert code.dtype == np.int8
    np.testing.assert_array_equal(
        code[:, 0], [[0, 0, 0], [-1, 1, -1], [-1, 1, -1], [-2, 2, -2], [0, 0, 0], [0, 0, 0]]
    )
    np.testing.assert_array_equal(
        code[:, 1], [[0, 0, 0], [1, -1, -1], [1, -1, -1], [2, -2, -2], [0, 0, 0], [0, 0, 0]]
    )
    rng = np.random.default_rng(0)
    for n_classes in (5,):  # 2 classes: the XOR test below
        labels = rng.integers(0, n_classes, 16)
        s = (rng.random((40, 16, n_classes)) < 0.04).astype(np.float32)
        start, stop = rng.integers(0, 20, 16), rng.integers(21, 40, 16)
        code = class_window_code(jnp.asarray(labels), n_classes, 40, start, stop)
        ref, _ = jax.jit(window_error)(jnp.asarray(s), code)  # the rule's scan, one window each
        delta = jax.jit(class_window_error)(jnp.asarray(s), jnp.asarray(labels), start, stop)
        np.testing.assert_array_equal(delta, ref)
        assert float(jnp.abs(delta).sum()) > 0 and float(delta.max()) == 1.0


def test_reduces_to_the_xor_error_on_its_stream():
    # the XOR task's stream (two classes, windows separated by gaps) with random output spikes;
    # cut into trials [end of the previous window, end of this one): each trial's closed-form
    # error equals the scanned error of the whole stream on that stretch
    spec = XORSpec(n_ref=4, n_a=3, n_b=3)
    stream = xor_stream(jax.random.PRNGKey(3), spec, 12)
    n_steps = stream.code.shape[0]
    rng = np.random.default_rng(1)
    s = (rng.random((n_steps, 2)) < 2e-3).astype(np.float32)
    ref = np.asarray(jax.jit(window_error)(jnp.asarray(s), jnp.asarray(stream.code))[0])
    ends = stream.onsets.astype(int) + spec.window_steps
    begins = np.concatenate([[0], ends[:-1]])
    n_max = int((ends - begins).max())
    # one batch of trials, each right-aligned in n_max steps (silent steps before it cost nothing)
    trials = np.zeros((n_max, len(ends), 2), np.float32)
    for b, (lo, hi) in enumerate(zip(begins, ends, strict=True)):
        trials[n_max - (hi - lo) :, b] = s[lo:hi]
    start = stream.onsets - begins + n_max - (ends - begins)
    d = np.asarray(
        jax.jit(class_window_error)(jnp.asarray(trials), jnp.asarray(stream.labels), start, n_max)
    )
    parts = [d[n_max - (hi - lo) :, b] for b, (lo, hi) in enumerate(zip(begins, ends, strict=True))]
    delta = np.concatenate(parts)
    assert delta.shape == ref.shape
    np.testing.assert_array_equal(delta, ref)
    # not vacuous: both error kinds occur
    assert (ref == 1).any() and (ref == -1).any()
