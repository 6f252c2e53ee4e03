"""Tests for ssjax.optim: RMaxProp / RMSprop / fixed rate, burn-in, drop schedule, clipping.

The maths is checked against independent NumPy loops (and, where an exact correspondence exists,
against optax's own adamax / rmsprop), and the transformations are exercised under jit, lax.scan and
vmap over a leading seed axis, in float32 and float64.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ssjax.optim import (
    OPTIMIZERS,
    SCHEDULES,
    TRANSFORMS,
    burn_in,
    chain_from_names,
    clip_weights,
    drop_schedule,
    fixed_rate,
    from_name,
    make_optimizer,
    rmaxprop,
    rmsprop,
    schedule_from_name,
)

TAU, TB, EPS = 30.0, 0.5, 1e-12
GAMMA = math.exp(-TB / TAU)


def _grad_sequence(rng, n_steps, shape, dtype):
    """Mixed-sign gradients whose scale jumps around (so both branches of the max occur)."""
    scales = np.exp(rng.uniform(-4.0, 2.0, size=(n_steps, 1, 1)))
    g = rng.standard_normal((n_steps, *shape)) * scales
    g[rng.random(g.shape) < 0.1] = 0.0  # exact zeros: silent synapses
    return g.astype(dtype)


def _np_rms_loop(grads, lr, gamma, eps, kind):
    """Independent NumPy re-implementation of SUPERSPIKE.md 2.3 (descent-sign gradients)."""
    dtype = grads.dtype
    gamma = dtype.type(gamma)
    v = np.zeros_like(grads[0])
    vs, ups = [], []
    for k, g in enumerate(grads):
        if kind == "rmaxprop":
            v = np.maximum(gamma * v, g * g)
        else:
            v = gamma * v + (dtype.type(1) - gamma) * (g * g)
        rate = dtype.type(lr(k) if callable(lr) else lr)
        with np.errstate(invalid="ignore", divide="ignore"):
            u = np.where(v > 0, -rate * g / (np.sqrt(v) + dtype.type(eps)), dtype.type(0))
        vs.append(v.copy())
        ups.append(u.astype(dtype))
    return np.stack(vs), np.stack(ups)


def _run(opt, grads, params=None):
    """Apply ``opt`` to a sequence of gradients with a jitted update; return states and updates."""
    params = jnp.zeros_like(grads[0]) if params is None else params
    state = opt.init(params)
    update = jax.jit(opt.update)
    states, ups = [], []
    for g in grads:
        u, state = update(jnp.asarray(g), state, params)
        states.append(state)
        ups.append(np.asarray(u))
    return states, np.stack(ups)


def _tol(dtype):
    return {"rtol": 1e-6, "atol": 0} if dtype == np.float32 else {"rtol": 1e-13, "atol": 0}


# --------------------------------------------------------------------------------------- RMaxProp


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rmaxprop_first_step_is_minus_r0_sign_g(dtype):
    with jax.enable_x64(dtype == np.float64):
        rng = np.random.default_rng(0)
        g = (rng.standard_normal((7, 11)) * np.exp(rng.uniform(-5, 3, (7, 11)))).astype(dtype)
        g[rng.random(g.shape) < 0.2] = 0.0
        assert (g > 0).any() and (g < 0).any() and (g == 0).any()
        r0 = 1e-3
        opt = rmaxprop(r0, tau_rms=TAU, t_b=TB, eps=EPS)
        u, state = jax.jit(opt.update)(jnp.asarray(g), opt.init(jnp.zeros_like(g)))
        u = np.asarray(u)
        assert u.dtype == dtype and np.all(np.isfinite(u))
        # eps / |g| < 1e-6 here, so the first step is -r0 sign(g) to that precision ...
        assert np.abs(g[g != 0]).min() > 1e-6
        np.testing.assert_allclose(u, -r0 * np.sign(g), rtol=1e-6, atol=0)
        # ... and exactly -r0 g / (|g| + eps) to rounding.
        np.testing.assert_allclose(u, -r0 * g / (np.abs(g) + dtype(EPS)), **_tol(dtype))
        np.testing.assert_array_equal(u[g == 0], 0.0)
        np.testing.assert_array_equal(np.sign(u), -np.sign(g))
        np.testing.assert_array_equal(np.asarray(state.v), g * g)


def test_rmaxprop_eps_zero_and_zero_gradient_gives_zero_not_nan():
    opt = rmaxprop(1e-3, eps=0.0)
    g = jnp.array([0.0, 2.0, -4.0, 0.0])  # powers of two: every operation below is exact
    state = opt.init(g)
    for _ in range(3):
        u, state = opt.update(g, state)
        np.testing.assert_array_equal(np.asarray(u), np.float32([0.0, -1e-3, 1e-3, 0.0]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rmaxprop_trajectory_matches_numpy_and_max_bounds(dtype):
    with jax.enable_x64(dtype == np.float64):
        rng = np.random.default_rng(1)
        grads = _grad_sequence(rng, 60, (5, 8), dtype)
        r0 = 5e-3
        states, ups = _run(rmaxprop(r0, tau_rms=TAU, t_b=TB, eps=EPS), grads)
        vs = np.stack([np.asarray(s.v) for s in states])
        v_ref, u_ref = _np_rms_loop(grads, r0, GAMMA, EPS, "rmaxprop")

        np.testing.assert_allclose(vs, v_ref, **_tol(dtype))
        np.testing.assert_allclose(ups, u_ref, **_tol(dtype))
        gamma = dtype(GAMMA)
        v_prev = np.concatenate([np.zeros_like(vs[:1]), vs[:-1]])
        assert np.all(vs >= gamma * v_prev)  # never decays faster than gamma per block
        assert np.all(vs >= grads * grads)
        # Both branches of the max really occur in this sequence (otherwise the test is vacuous).
        decayed = (vs == gamma * v_prev) & (gamma * v_prev > grads * grads)
        took_g2 = (vs == grads * grads) & (grads * grads > gamma * v_prev)
        assert decayed.mean() > 0.2 and took_g2[1:].mean() > 0.02
        # |update| <= r0 always, since sqrt(v) >= |g|.
        assert np.all(np.abs(ups) <= r0 * (1 + 1e-6))
        assert [int(s.count) for s in states] == list(range(1, 61))


def test_rmaxprop_equals_optax_adamax_without_momentum():
    # sqrt(max(gamma v, g^2)) = max(sqrt(gamma) sqrt(v), |g|): RMaxProp is adamax with b1 = 0 and
    # b2 = sqrt(gamma) (eps = 0 and no zero gradients, where adamax places eps differently).
    with jax.enable_x64(True):
        rng = np.random.default_rng(2)
        grads = rng.standard_normal((40, 6)) * np.exp(rng.uniform(-3, 3, (40, 1)))
        states, ups = _run(rmaxprop(2e-3, tau_rms=TAU, t_b=TB, eps=0.0), grads)
        ref_states, ref_ups = _run(optax.adamax(2e-3, b1=0.0, b2=math.sqrt(GAMMA), eps=0.0), grads)
        np.testing.assert_allclose(ups, ref_ups, rtol=1e-12)
        nu = np.stack([np.asarray(s[0].nu) for s in ref_states])
        np.testing.assert_allclose(np.stack([np.asarray(s.v) for s in states]), nu**2, rtol=1e-12)


# ------------------------------------------------------------------------------ RMSprop, fixed


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rmsprop_matches_numpy_loop(dtype):
    with jax.enable_x64(dtype == np.float64):
        rng = np.random.default_rng(3)
        grads = _grad_sequence(rng, 50, (4, 9), dtype)
        states, ups = _run(rmsprop(1e-3, tau_rms=TAU, t_b=TB, eps=EPS), grads)
        v_ref, u_ref = _np_rms_loop(grads, 1e-3, GAMMA, EPS, "rmsprop")
        np.testing.assert_allclose(
            np.stack([np.asarray(s.v) for s in states]), v_ref, **_tol(dtype)
        )
        np.testing.assert_allclose(ups, u_ref, **_tol(dtype))
        # First step: v = (1 - gamma) g^2, so |update| = r0 / sqrt(1 - gamma), not r0 as RMaxProp.
        nz = grads[0] != 0
        np.testing.assert_allclose(
            np.abs(ups[0][nz]),
            1e-3 / np.sqrt(1 - dtype(GAMMA)),
            rtol=1e-6,  # eps / |g| < 1e-6
        )


def test_rmsprop_equals_optax_rmsprop_with_paper_conventions():
    with jax.enable_x64(True):
        rng = np.random.default_rng(4)
        grads = rng.standard_normal((30, 5)) * np.exp(rng.uniform(-3, 3, (30, 1)))
        _, ups = _run(rmsprop(1e-3, tau_rms=TAU, t_b=TB, eps=EPS), grads)
        ref = optax.rmsprop(1e-3, decay=GAMMA, eps=EPS, eps_in_sqrt=False)
        _, ref_ups = _run(ref, grads)
        np.testing.assert_allclose(ups, ref_ups, rtol=1e-12)
        # optax's default (eps inside the sqrt) is a different rule: that's why we don't wrap it.
        _, default_ups = _run(optax.rmsprop(1e-3, decay=GAMMA, eps=1e-8), grads * 1e-5)
        _, ours_small = _run(rmsprop(1e-3, tau_rms=TAU, t_b=TB, eps=1e-8), grads * 1e-5)
        assert not np.allclose(default_ups, ours_small, rtol=1e-3)


def test_fixed_rate_is_minus_lr_g():
    rng = np.random.default_rng(5)
    grads = rng.standard_normal((5, 3, 4)).astype(np.float32)
    states, ups = _run(fixed_rate(0.25), grads)
    np.testing.assert_array_equal(ups, -np.float32(0.25) * grads)  # 0.25 is exact: no rounding
    assert [int(s.count) for s in states] == [1, 2, 3, 4, 5]


def _former_fixed_rate(lr, count, g):
    """ssjax's fixed rate before it became optax's ``scale_by_learning_rate``."""
    lr = jnp.asarray(lr(count) if callable(lr) else lr)
    return (-lr.astype(g.dtype) * g).astype(g.dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fixed_rate_is_bit_identical_to_the_former_formula(dtype):
    # rates that round (not powers of two), constant, dropped, and traced under vmap
    with jax.enable_x64(dtype == np.float64):
        rng = np.random.default_rng(11)
        grads = _grad_sequence(rng, 9, (3, 5), dtype)
        for lr in (1.3e-3, drop_schedule(7.7e-3, ((4, 0.37),))):
            _, ups = _run(fixed_rate(lr), grads)
            for k, g in enumerate(grads):
                ref = _former_fixed_rate(lr, jnp.int32(k), jnp.asarray(g))
                np.testing.assert_array_equal(ups[k], np.asarray(ref))
        r0s = jnp.asarray([1.3e-3, 2.9e-2, 0.7], dtype)

        def one(r0, g):
            opt = fixed_rate(drop_schedule(r0, ((1, 0.37),)))
            u, st = opt.update(g, opt.init(g))
            return opt.update(g, st)[0]

        ups = jax.vmap(one, in_axes=(0, None))(r0s, jnp.asarray(grads[0]))
        for r0, u in zip(r0s, ups, strict=True):
            sched = drop_schedule(r0, ((1, 0.37),))
            ref = _former_fixed_rate(sched, jnp.int32(1), jnp.asarray(grads[0]))
            np.testing.assert_array_equal(u, ref)


def test_rmsprop_differs_from_optax_rmsprop_in_the_last_bits_only():
    # the same rule (eps outside the root, decay gamma), evaluated in another order: ours stays
    # on the training path; the difference, measured in float32 units in the last place
    rng = np.random.default_rng(12)
    grads = _grad_sequence(rng, 60, (16, 16), np.float32)
    gamma = jnp.float32(GAMMA)  # as the trainer passes it: traced, in the run's dtype
    states, ups = _run(rmsprop(1e-3, eps=EPS, gamma=gamma), grads)
    ref_states, ref = _run(optax.rmsprop(1e-3, decay=gamma, eps=EPS, eps_in_sqrt=False), grads)
    np.testing.assert_array_max_ulp(ups, ref, maxulp=16)
    assert (ups != ref).any()  # not bit-identical: why the training path keeps ssjax's
    v = np.stack([np.asarray(s.v) for s in states])
    nu = np.stack([np.asarray(s[0].nu) for s in ref_states])
    np.testing.assert_array_max_ulp(v, nu, maxulp=32)


@pytest.mark.parametrize("make", [fixed_rate, rmaxprop, rmsprop])
def test_schedule_learning_rate_drops_after_block_n(make):
    with jax.enable_x64(True):
        rng = np.random.default_rng(6)
        grads = rng.standard_normal((8, 3))
        r0, n_drop = 1e-2, 5
        sched = drop_schedule(r0, ((n_drop, 0.1),))
        _, ups = _run(make(sched), grads)
        _, ups_const = _run(make(r0), grads)
        np.testing.assert_allclose(ups[:n_drop], ups_const[:n_drop], rtol=1e-14)
        np.testing.assert_allclose(ups[n_drop:], 0.1 * ups_const[n_drop:], rtol=1e-14)


def test_drop_schedule_values():
    sched = drop_schedule(1.0, ((2, 0.5), (4, 0.1)))
    np.testing.assert_allclose([float(sched(k)) for k in range(6)], [1, 1, 0.5, 0.5, 0.05, 0.05])
    default = drop_schedule(1e-3)  # r0 / 10 from block 800 = 400 s at t_b = 0.5 s
    assert float(default(799)) == pytest.approx(1e-3)
    assert float(default(800)) == pytest.approx(1e-4)
    same_block = drop_schedule(2.0, ((3, 0.5), (3, 0.5)))
    assert float(same_block(3)) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="factor"):
        drop_schedule(1.0, ((3, -0.1),))


# ------------------------------------------------------------------------------------- burn-in


@pytest.mark.parametrize("make", [rmaxprop, rmsprop, fixed_rate])
def test_burn_in_zero_updates_while_state_accumulates(make):
    rng = np.random.default_rng(7)
    grads = _grad_sequence(rng, 10, (3, 4), np.float32)
    n = 4
    inner = make(1e-3)
    states, ups = _run(burn_in(inner, n), grads)
    inner_states, inner_ups = _run(inner, grads)
    for s, s_ref in zip(states, inner_states, strict=True):
        jax.tree.map(np.testing.assert_array_equal, s.inner, s_ref)
    np.testing.assert_array_equal(ups[:n], 0.0)
    assert not np.signbit(ups[:n]).any()  # +0.0, not -0.0 from a multiply by zero
    np.testing.assert_array_equal(ups[n:], inner_ups[n:])
    assert np.abs(inner_ups[:n]).max() > 0  # the inner transform did want to move the weights


def test_burn_in_blocks_inf_updates():
    inner = optax.GradientTransformation(
        lambda p: optax.EmptyState(), lambda u, s, p=None: (jax.tree.map(lambda x: x / 0.0, u), s)
    )
    _, ups = _run(burn_in(inner, 2), np.ones((3, 2), np.float32))
    np.testing.assert_array_equal(ups[:2], 0.0)
    assert np.isinf(ups[2]).all()


# ----------------------------------------------------------------- state stability, jit, scan, vmap


def _params(dtype, rng):
    return {
        "w_hid": jnp.asarray(rng.standard_normal((4, 6)), dtype),
        "w_out": jnp.asarray(rng.standard_normal((2, 4)), dtype),
        "b": (jnp.asarray(rng.standard_normal(3), dtype),),
    }


def _sig(tree):
    return jax.tree.structure(tree), [(x.shape, x.dtype) for x in jax.tree.leaves(tree)]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_state_stable_and_scan_matches_python_loop(name, dtype):
    with jax.enable_x64(dtype == jnp.float64):
        rng = np.random.default_rng(8)
        params = _params(dtype, rng)
        opt = make_optimizer(name, 1e-3, burn_in_blocks=2, drops=((4, 0.1),))
        state0 = opt.init(params)
        n_steps = 7
        grads = jax.tree.map(
            lambda p: jnp.asarray(rng.standard_normal((n_steps, *p.shape)), p.dtype), params
        )
        grad_k = [jax.tree.map(lambda g, k=k: g[k], grads) for k in range(n_steps)]

        state, upd = state0, jax.jit(opt.update)
        loop_ups = []
        for g in grad_k:
            u, state = upd(g, state)
            assert _sig(state) == _sig(state0)
            assert _sig(u) == _sig(params)
            loop_ups.append(u)
        assert state.count.dtype == jnp.int32 and int(state.count) == n_steps

        @jax.jit
        def scan_run(params, state, grads):
            def step(carry, g):
                p, s = carry
                u, s = opt.update(g, s, p)
                return (clip_weights(optax.apply_updates(p, u)), s), u

            return jax.lax.scan(step, (params, state), grads)

        (_, scan_state), scan_ups = scan_run(params, state0, grads)
        assert _sig(scan_state) == _sig(state0)
        for k in range(n_steps):
            jax.tree.map(
                lambda a, b, k=k: np.testing.assert_allclose(a[k], b, rtol=1e-6, atol=0),
                scan_ups,
                loop_ups[k],
            )
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), scan_state, state)
        # burn-in blocks gave zero updates, and the drop at block 4 took effect.
        assert all(float(jnp.abs(x).max()) == 0 for x in jax.tree.leaves(loop_ups[:2]))
        assert all(float(jnp.abs(x).max()) > 0 for x in jax.tree.leaves(loop_ups[2:]))
        no_drop = make_optimizer(name, 1e-3, burn_in_blocks=2)
        state = no_drop.init(params)
        for k, g in enumerate(grad_k):
            u, state = no_drop.update(g, state)
            factor = 0.1 if k >= 4 else 1.0
            jax.tree.map(
                lambda a, b, f=factor: np.testing.assert_allclose(a, f * b, rtol=1e-6, atol=0),
                loop_ups[k],
                u,
            )


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_vmap_over_seeds_equals_python_loop(name):
    rng = np.random.default_rng(9)
    n_seeds, n_steps = 3, 5
    opt = make_optimizer(name, 1e-3, burn_in_blocks=1, drops=((3, 0.1),))
    # Seeds differ in params and grads; the leading axis is the seed axis.
    params = jax.tree.map(
        lambda p: jnp.stack([p * (s + 1) for s in range(n_seeds)]), _params(jnp.float32, rng)
    )
    grads = [
        jax.tree.map(lambda p: jnp.asarray(rng.standard_normal(p.shape), p.dtype), params)
        for _ in range(n_steps)
    ]
    v_update = jax.jit(jax.vmap(opt.update))
    state = jax.vmap(opt.init)(params)
    s_update = jax.jit(opt.update)
    seed_states = [opt.init(jax.tree.map(lambda p, s=s: p[s], params)) for s in range(n_seeds)]
    for g in grads:
        u, state = v_update(g, state, params)
        for s in range(n_seeds):
            u_s, seed_states[s] = s_update(
                jax.tree.map(lambda x, s=s: x[s], g),
                seed_states[s],
                jax.tree.map(lambda x, s=s: x[s], params),
            )
            jax.tree.map(lambda a, b, s=s: np.testing.assert_array_equal(a[s], b), u, u_s)
            jax.tree.map(
                lambda a, b, s=s: np.testing.assert_array_equal(a[s], b), state, seed_states[s]
            )


# ------------------------------------------------------------------------ clipping, validation


def test_clip_weights_over_pytree():
    tree = {
        "a": jnp.array([-0.5, -0.1, -0.05, 0.0, 0.07, 0.1, 0.3], jnp.float32),
        "b": [jnp.full((2, 3), 0.2, jnp.float32), jnp.array(-0.2, jnp.float32)],
    }
    out = clip_weights(tree)
    assert jax.tree.structure(out) == jax.tree.structure(tree)
    np.testing.assert_array_equal(out["a"], np.float32([-0.1, -0.1, -0.05, 0.0, 0.07, 0.1, 0.1]))
    np.testing.assert_array_equal(out["b"][0], np.full((2, 3), np.float32(0.1)))
    assert float(out["b"][1]) == np.float32(-0.1)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(out))
    np.testing.assert_array_equal(clip_weights(jnp.array([-3.0, 3.0]), -1.0, 2.0), [-1.0, 2.0])


@pytest.mark.parametrize(
    "kwargs, arg",
    [
        ({"r0": 0.0}, "r0"),
        ({"r0": -1e-3}, "r0"),
        ({"tau_rms": 0.0}, "tau_rms"),
        ({"t_b": -0.5}, "t_b"),
        ({"eps": -1e-12}, "eps"),
        ({"burn_in_blocks": -1}, "burn_in_blocks"),
    ],
)
def test_make_optimizer_validation_names_argument(kwargs, arg):
    kw = {"r0": 1e-3, **kwargs}
    r0 = kw.pop("r0")
    with pytest.raises(ValueError, match=rf"^{arg} must be (>|>=) 0"):
        make_optimizer("rmaxprop", r0, **kw)


def test_make_optimizer_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="name") as exc:
        make_optimizer("adam", 1e-3)
    assert "adam" in str(exc.value)
    assert all(n in str(exc.value) for n in OPTIMIZERS)


def test_make_optimizer_defaults_match_rules():
    rng = np.random.default_rng(10)
    grads = rng.standard_normal((6, 4)).astype(np.float32)
    for name, rule in (("rmaxprop", rmaxprop), ("rmsprop", rmsprop), ("fixed", fixed_rate)):
        _, ups = _run(make_optimizer(name, 1e-3), grads)
        _, ref = _run(rule(1e-3), grads)
        np.testing.assert_array_equal(ups, ref)


# ------------------------------------------------------------------------------------ by name


def test_from_name_is_the_optax_transformation_with_its_keywords():
    rng = np.random.default_rng(13)
    grads = rng.standard_normal((6, 3, 4)).astype(np.float32)
    cases = [
        ("adam", {"learning_rate": 1e-3, "b1": 0.8}, optax.adam(1e-3, b1=0.8)),
        (
            "adamw",
            {"learning_rate": 1e-3, "weight_decay": 1e-2},
            optax.adamw(1e-3, weight_decay=1e-2),
        ),
        ("sgd", {"learning_rate": 0.1, "momentum": 0.9}, optax.sgd(0.1, momentum=0.9)),
        ("clip_by_global_norm", {"max_norm": 1.0}, optax.clip_by_global_norm(1.0)),
        ("rmaxprop", {"learning_rate": 2e-3, "tau_rms": 10.0}, rmaxprop(2e-3, tau_rms=10.0)),
    ]
    for name, kw, ref in cases:
        params = jnp.asarray(grads[0])
        _, ups = _run(from_name(name, **kw), grads, params)
        _, want = _run(ref, grads, params)
        np.testing.assert_array_equal(ups, want)
    assert "rmaxprop" in TRANSFORMS and "adam" in TRANSFORMS and "drop_schedule" in SCHEDULES


def test_schedules_and_chains_by_name():
    sched = schedule_from_name(
        "exponential_decay", init_value=1.0, transition_steps=2, decay_rate=0.5
    )
    ref = optax.exponential_decay(1.0, 2, 0.5)
    assert [float(sched(k)) for k in range(5)] == [float(ref(k)) for k in range(5)]
    assert float(schedule_from_name("drop_schedule", r0=1.0, drops=((2, 0.1),))(3)) == np.float32(
        0.1
    )
    spec = {"schedule": "piecewise_constant_schedule", "init_value": 0.5,
            "boundaries_and_scales": {2: 0.5}}  # fmt: skip
    grads = np.ones((4, 3), np.float32)
    _, ups = _run(from_name("sgd", learning_rate=spec), grads)
    np.testing.assert_array_equal(ups[:, 0], [-0.5, -0.5, -0.25, -0.25])
    chain = chain_from_names(
        [{"name": "clip", "max_delta": 0.5}, {"name": "sgd", "learning_rate": 2.0}]
    )
    _, ups = _run(chain, grads)
    np.testing.assert_array_equal(ups, -1.0)  # clipped to 0.5, then times -2
    _, ups = _run(chain_from_names(["identity"]), grads)
    np.testing.assert_array_equal(ups, grads)
    with pytest.raises(ValueError, match="chain entry 0"):
        chain_from_names([42])


def test_by_name_errors_name_the_name_and_the_keyword():
    with pytest.raises(ValueError, match=r"unknown optimizer 'adamm'; choose one of .*adam,"):
        from_name("adamm", learning_rate=1e-3)
    with pytest.raises(ValueError, match=r"optimizer 'adam': unknown keyword argument 'lr' "
                       r"\(it accepts: learning_rate, b1,"):  # fmt: skip
        from_name("adam", lr=1e-3)
    with pytest.raises(
        ValueError, match=r"optimizer 'sgd': missing keyword argument 'learning_rate'"
    ):
        from_name("sgd", momentum=0.9)
    with pytest.raises(ValueError, match=r"unknown schedule 'cosine'"):
        schedule_from_name("cosine", init_value=1.0)
    with pytest.raises(
        ValueError, match=r"schedule 'linear_schedule': unknown keyword argument 'x'"
    ):
        from_name("sgd", learning_rate={"schedule": "linear_schedule", "x": 1})


def test_traced_learning_rate_of_a_named_optimizer_vmaps():
    rng = np.random.default_rng(14)
    g = jnp.asarray(rng.standard_normal((3, 4)).astype(np.float32))
    rates = jnp.asarray([1e-3, 3e-2, 0.2], jnp.float32)

    def two_steps(lr):
        opt = from_name("adam", learning_rate=lr, b1=0.5)
        u, st = opt.update(g, opt.init(g))
        return opt.update(g * 2, st)[0]

    ups = jax.jit(jax.vmap(two_steps))(rates)
    for lr, u in zip(rates, ups, strict=True):
        np.testing.assert_allclose(u, two_steps(lr), rtol=1e-6)
    assert not np.allclose(ups[0], ups[1])
