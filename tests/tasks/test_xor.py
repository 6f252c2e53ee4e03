"""Tests for ssjax.tasks.xor: the spiking XOR stream, window annotation, window error, accuracy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssjax.tasks.xor import (
    WindowState,
    XORSpec,
    window_accuracy,
    window_error,
    xor_stream,
    xor_timing,
)

SPEC = XORSpec()
KEY = jax.random.PRNGKey(0)


@pytest.fixture(scope="module")
def stream():
    return xor_stream(jax.random.PRNGKey(1), SPEC, 40, timing=xor_timing(KEY, SPEC))


def _ends(stream):
    return stream.onsets.astype(np.int64) + SPEC.window_steps - 1


# --- spec and stream ----------------------------------------------------------------------------


def test_spec_defaults():
    assert SPEC.n_in == 100 and SPEC.stim_steps == 100 and SPEC.window_steps == 250
    assert 0 < SPEC.gap_min <= SPEC.gap_max


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"n_a": 0}, "n_a"),
        ({"n_b": 2.5}, "n_b"),
        ({"n_ref": -1}, "n_ref"),
        ({"n_ref": True}, "n_ref"),
        ({"stim": 0.0}, "stim"),
        ({"stim": 0.01005}, "stim"),
        ({"window": 0.005}, "window"),
        ({"gap_min": -0.1}, "gap_min"),
        ({"gap_min": 0.2, "gap_max": 0.1}, "gap_max"),
        ({"noise_hz": float("nan")}, "noise_hz"),
        ({"noise_hz": 2e4}, "noise_hz"),
        ({"dt": 0.0}, "dt"),
    ],
)
def test_spec_validation_names_field(kwargs, field):
    with pytest.raises(ValueError, match=f"XORSpec.{field}"):
        XORSpec(**kwargs)


def test_stream_bad_arguments():
    with pytest.raises(ValueError, match="n_patterns"):
        xor_stream(KEY, SPEC, 0)
    with pytest.raises(ValueError, match="timing"):
        xor_stream(KEY, SPEC, 4, timing=np.full(SPEC.n_in, SPEC.stim))
    with pytest.raises(ValueError, match="timing"):
        xor_stream(KEY, SPEC, 4, timing=np.zeros(SPEC.n_in - 1))


def test_timing_on_grid_inside_stimulus():
    t = xor_timing(KEY, SPEC)
    assert t.shape == (100,) and t.min() >= 0 and t.max() < SPEC.stim
    np.testing.assert_allclose(t / SPEC.dt, np.rint(t / SPEC.dt), atol=1e-9)
    assert len(np.unique(t)) > 30  # random, not constant
    np.testing.assert_array_equal(t, xor_timing(KEY, SPEC))  # same key, same identity


def test_stream_shapes_and_determinism(stream):
    T = stream.inputs.shape[0]
    assert stream.inputs.shape == (T, 100) and stream.inputs.dtype == np.float32
    assert stream.code.shape == (T, 2) and stream.code.dtype == np.int8
    for a in (stream.labels, stream.kinds, stream.onsets):
        assert a.shape == (40,) and a.dtype == np.int32
    assert set(np.unique(stream.inputs)) <= {0.0, 1.0}
    again = xor_stream(jax.random.PRNGKey(1), SPEC, 40, timing=xor_timing(KEY, SPEC))
    for a, b in zip(stream, again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_present_inputs_fire_once_at_fixed_offset_absent_silent(stream):
    offs = np.rint(xor_timing(KEY, SPEC) / SPEC.dt).astype(int)
    groups = np.repeat([0, 1, 2], [SPEC.n_ref, SPEC.n_a, SPEC.n_b])
    for o, kind in zip(stream.onsets, stream.kinds, strict=True):
        stim = stream.inputs[o : o + SPEC.stim_steps]
        present = (groups == 0) | ((groups == 1) & (kind in (1, 3))) | ((groups == 2) & (kind >= 2))
        np.testing.assert_array_equal(stim.sum(0), present.astype(np.float32))
        rows, cols = np.nonzero(stim)
        np.testing.assert_array_equal(rows, offs[cols])  # the frozen offset, in every pattern


def test_noise_rate_outside_stimuli_is_4hz():
    s = xor_stream(jax.random.PRNGKey(2), SPEC, 80)
    stim = np.zeros(s.inputs.shape[0], bool)
    for o in s.onsets:
        stim[o : o + SPEC.stim_steps] = True
    n = (~stim).sum() * SPEC.n_in
    k = s.inputs[~stim].sum()
    p = SPEC.noise_hz * SPEC.dt
    assert abs(k - n * p) < 5 * np.sqrt(n * p * (1 - p)), (k, n * p)
    # response tails are noisy too (the choice in the module docstring), at a sane rate
    tails = np.concatenate(
        [s.inputs[o + SPEC.stim_steps : o + SPEC.window_steps] for o in s.onsets]
    )
    assert 0 < tails.sum() < 5 * tails.size * p


def test_labels_are_a_xor_b_and_kinds_balanced(stream):
    a, b = np.isin(stream.kinds, (1, 3)), np.isin(stream.kinds, (2, 3))
    np.testing.assert_array_equal(stream.labels, (a ^ b).astype(np.int32))
    np.testing.assert_array_equal(np.bincount(stream.kinds, minlength=4), [10, 10, 10, 10])
    assert not np.array_equal(stream.kinds, np.sort(stream.kinds))  # shuffled
    for n in (1, 5, 7, 13):
        counts = np.bincount(xor_stream(jax.random.PRNGKey(n), SPEC, n).kinds, minlength=4)
        assert counts.sum() == n and counts.max() - counts.min() <= 1


def test_gaps_uniform_range_and_stream_end(stream):
    W = SPEC.window_steps
    gaps = np.diff(np.concatenate([[-W], stream.onsets])) - W
    assert gaps.min() >= round(SPEC.gap_min / SPEC.dt) and gaps.max() <= round(
        SPEC.gap_max / SPEC.dt
    )
    assert len(np.unique(gaps)) > 20
    assert stream.inputs.shape[0] == stream.onsets[-1] + W


def test_window_codes(stream):
    W = SPEC.window_steps
    assert W * SPEC.dt == pytest.approx(0.025)
    expect = np.zeros_like(stream.code)
    for o, y in zip(stream.onsets, stream.labels, strict=True):
        w = stream.code[o : o + W]
        np.testing.assert_array_equal(w[:-1, y], 1)  # correct output positive
        np.testing.assert_array_equal(w[:-1, 1 - y], -1)
        assert w[-1, y] == 2 and w[-1, 1 - y] == -2
        expect[o : o + W] = w
    np.testing.assert_array_equal(stream.code, expect)  # zero outside windows
    assert (stream.code == 0).any()


# --- window error --------------------------------------------------------------------------------


def test_silent_network_one_positive_error_per_window(stream):
    delta, st = window_error(jnp.zeros(stream.code.shape), stream.code)
    delta = np.asarray(delta)
    expect = np.zeros(delta.shape, np.float32)
    expect[_ends(stream), stream.labels] = 1.0
    np.testing.assert_array_equal(delta, expect)
    np.testing.assert_array_equal(st.fired, [0.0, 0.0])


def test_correct_spike_inside_window_no_error(stream):
    s = np.zeros(stream.code.shape, np.float32)
    rows = np.arange(40)
    s[stream.onsets + 6 * rows, stream.labels] = 1.0  # various positions in the window
    s[_ends(stream)[:3], stream.labels[:3]] = 1.0  # firing on the last step counts (inclusive)
    s[stream.onsets[3:6] + 120, stream.labels[3:6]] = 3.0  # extra correct spikes: no error
    s[stream.onsets[:3], stream.labels[:3]] = 0.0
    delta, _ = window_error(s, stream.code)
    np.testing.assert_array_equal(np.asarray(delta), 0.0)


def test_correct_spike_outside_window_does_not_count(stream):
    s = np.zeros(stream.code.shape, np.float32)
    s[stream.onsets - 1, stream.labels] = 1.0  # just before the window
    s[_ends(stream)[:-1] + 1, :] = 1.0  # just after (both outputs): no error outside windows
    delta, _ = window_error(s, stream.code)
    silent, _ = window_error(np.zeros_like(s), stream.code)
    np.testing.assert_array_equal(np.asarray(delta), np.asarray(silent))


def test_wrong_spike_immediate_negative_error(stream):
    o, y = int(stream.onsets[5]), int(stream.labels[5])
    s = np.zeros(stream.code.shape, np.float32)
    s[o + 30, 1 - y] = 1.0
    s[o + 60, y] = 1.0
    s[o + 249, 1 - y] = 1.0  # last step still counts as wrong
    delta = np.asarray(window_error(s, stream.code)[0])
    assert delta[o + 30, 1 - y] == -1.0 and delta[o + 249, 1 - y] == -1.0
    window = delta[o : o + SPEC.window_steps]
    assert np.count_nonzero(window) == 2  # correct output fired: no positive error
    s[o + 60, y] = 0.0
    window = np.asarray(window_error(s, stream.code)[0])[o : o + SPEC.window_steps]
    assert window[-1, y] == 1.0 and np.count_nonzero(window) == 3


def test_adjacent_windows_reset():
    spec = XORSpec(gap_min=0.0, gap_max=0.0)
    s = xor_stream(KEY, spec, 8)
    assert np.all(np.diff(s.onsets) == spec.window_steps) and (s.code != 0).all()
    spikes = np.zeros(s.code.shape, np.float32)
    spikes[s.onsets[0] + 5, s.labels[0]] = 1.0  # answers window 0 only
    delta = np.asarray(window_error(spikes, s.code)[0])
    ends = s.onsets + spec.window_steps - 1
    assert delta[ends[0]].sum() == 0
    np.testing.assert_array_equal(delta[ends[1:], s.labels[1:]], 1.0)


@pytest.mark.parametrize("cut", [1, 1000, 1234, 4567])
def test_split_blocks_with_carried_state_match_one_call(stream, cut):
    rng = np.random.default_rng(cut)
    s = (rng.random(stream.code.shape) < 0.002).astype(np.float32)
    # cut inside a window, after its correct output fired: the state carries the fact
    o, y = int(stream.onsets[4]), int(stream.labels[4])
    s[o + 10, y] = 1.0
    full, st_full = window_error(s, stream.code)
    for c in (cut, o + 11):
        d1, st = window_error(s[:c], stream.code[:c])
        d2, st2 = window_error(s[c:], stream.code[c:], st)
        np.testing.assert_array_equal(np.concatenate([d1, d2]), np.asarray(full))
        np.testing.assert_array_equal(st2.fired, st_full.fired)
    _, st = window_error(s[: o + 11], stream.code[: o + 11])
    assert float(st.fired[y]) == 1.0 and float(st.fired[1 - y]) == 0.0
    # without the carried state the answered window would wrongly get a positive error
    d2, _ = window_error(s[o + 11 :], stream.code[o + 11 :])
    assert float(np.asarray(d2)[SPEC.window_steps - 12, y]) == 1.0


def test_vmap_and_broadcast_equal_loop(stream):
    rng = np.random.default_rng(0)
    B = 3
    s = (rng.random((stream.code.shape[0], B, 2)) < 0.003).astype(np.float32)
    code = jnp.asarray(stream.code)
    f = jax.jit(jax.vmap(lambda x: window_error(x, code)[0], in_axes=1, out_axes=1))
    batched = np.asarray(f(jnp.asarray(s)))
    loop = np.stack([np.asarray(window_error(s[:, b], stream.code)[0]) for b in range(B)], 1)
    np.testing.assert_array_equal(batched, loop)
    bcast, st = window_error(s, stream.code[:, None, :])  # code [T, 1, 2] against [T, B, 2]
    np.testing.assert_array_equal(np.asarray(bcast), loop)
    assert st.fired.shape == (B, 2)
    d_int, _ = window_error(s[:, 0].astype(np.int32), stream.code)  # counts of any dtype
    assert d_int.dtype == jnp.float32


def test_window_error_state_is_windowstate(stream):
    _, st = window_error(np.zeros(stream.code.shape), stream.code, WindowState(jnp.zeros(2)))
    assert isinstance(st, WindowState)


# --- accuracy -----------------------------------------------------------------------------------


def test_window_accuracy(stream):
    T = stream.code.shape[0]
    perfect = np.zeros((T, 2), np.float32)
    perfect[stream.onsets + 150, stream.labels] = 1.0
    acc, per = window_accuracy(perfect, stream)
    assert acc == 1.0 and np.all(per == 1.0)
    assert np.all(np.asarray(window_error(perfect, stream.code)[0]) == 0)
    acc, per = window_accuracy(np.zeros((T, 2)), stream)
    assert acc == 0.0 and np.all(per == 0.0)
    both = perfect.copy()
    both[stream.onsets + 150, 1 - stream.labels] = 1.0
    assert window_accuracy(both, stream)[0] == 0.0
    wrong = np.zeros((T, 2))
    wrong[stream.onsets + 150, 1 - stream.labels] = 1.0
    assert window_accuracy(wrong, stream)[0] == 0.0
    only_ref = np.where(
        np.isin(np.arange(T), stream.onsets[stream.kinds == 0] + 150)[:, None], perfect, 0.0
    )
    acc, per = window_accuracy(only_ref, stream)
    assert acc == pytest.approx(0.25)
    np.testing.assert_array_equal(per, [1.0, 0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="shape"):
        window_accuracy(np.zeros((T - 1, 2)), stream)


def test_window_accuracy_missing_kind_is_nan():
    s = xor_stream(KEY, SPEC, 2)
    _, per = window_accuracy(np.zeros(s.code.shape), s)
    assert np.isnan(per).sum() == 2


def test_stream_timing_is_the_timing_xor_stream_draws():
    from ssjax.tasks.xor import stream_timing

    spec = XORSpec(n_ref=4, n_a=4, n_b=4)
    key = jax.random.PRNGKey(7)
    own = xor_stream(key, spec, 8)
    given = xor_stream(key, spec, 8, stream_timing(key, spec))
    np.testing.assert_array_equal(own.inputs, given.inputs)
    other = xor_stream(key, spec, 8, stream_timing(jax.random.PRNGKey(8), spec))
    assert not np.array_equal(own.inputs, other.inputs)  # control: another timing differs
