"""Tests for ssjax.spike: Heaviside forward, surrogate VJPs, tracing, and the Surrogate config."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssjax.spike import KINDS, Surrogate, smooth_spike, spike, surrogate_grad

V_FLOOR = -0.03
# Includes the tie point, both sides of it, the +-30 mV points and a bracket around v_floor.
GRID = np.array(
    [
        -0.5, -0.0301, -0.03001, -0.03, -0.02999, -0.0299, -0.01, -1e-3, -1e-6, 0.0,
        1e-6, 1e-3, 0.01, 0.03, 0.5,
    ]
)  # fmt: skip
DTYPES = ["float32", "float64"]


def x64(dtype):
    """Context enabling 64-bit mode only for float64 tests (float32 stays the default)."""
    return jax.enable_x64(dtype == "float64")


def reference_grad(v, beta, kind, v_floor=V_FLOOR):
    """Independent numpy (float64) version of the surrogate formulas."""
    v = np.asarray(v, np.float64)
    x = beta * v
    if kind == "superspike":
        return (1.0 + np.abs(x)) ** -2
    if kind == "superspike_code":
        return np.where(v < v_floor, 0.0, beta * (1.0 + np.abs(x)) ** -2)
    if kind == "sigmoid":
        # s(x) (1 - s(x)) = s(x) s(-x); exp overflow gives 1/inf = 0, which is the right limit.
        with np.errstate(over="ignore"):
            return beta / (1.0 + np.exp(-x)) / (1.0 + np.exp(x))
    if kind == "triangular":
        return beta * np.maximum(0.0, 1.0 - np.abs(x))
    raise AssertionError(kind)


def tol(dtype):
    return {"rtol": 2e-5, "atol": 1e-6} if dtype == "float32" else {"rtol": 1e-12, "atol": 1e-12}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_forward_is_heaviside_with_h0_zero(kind, dtype):
    with x64(dtype):
        tiny = float(np.finfo(dtype).tiny)  # smallest normal: survives flush-to-zero
        v = jnp.array([-1.0, -tiny, -0.0, 0.0, tiny, 1e-6, 1.0], dtype=dtype)
        out = spike(v, kind=kind)
        assert out.dtype == jnp.dtype(dtype)
        np.testing.assert_array_equal(np.asarray(out), [0, 0, 0, 0, 1, 1, 1])
        out2 = jax.jit(lambda u: spike(u, kind=kind))(v.reshape(7, 1))
        assert out2.shape == (7, 1) and out2.dtype == jnp.dtype(dtype)
        np.testing.assert_array_equal(np.asarray(out2).ravel(), [0, 0, 0, 0, 1, 1, 1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("beta", [1000.0, 250.0])
def test_backward_matches_independent_formula(kind, dtype, beta):
    with x64(dtype):
        v = jnp.asarray(GRID, dtype)
        # The floor comparison must be made on the same rounded values the module sees.
        floor = float(np.asarray(V_FLOOR, dtype))
        expected = reference_grad(np.asarray(v), beta, kind, floor)

        grad = jax.grad(lambda u: spike(u, beta, kind).sum())(v)
        assert grad.dtype == jnp.dtype(dtype)
        np.testing.assert_allclose(np.asarray(grad), expected, **tol(dtype))

        g = jnp.asarray(np.linspace(-2.0, 3.0, GRID.size), dtype)
        out, pullback = jax.vjp(lambda u: spike(u, beta, kind), v)
        np.testing.assert_array_equal(np.asarray(out), (GRID > 0).astype(dtype))
        (ct,) = pullback(g)
        np.testing.assert_allclose(np.asarray(ct), np.asarray(g) * expected, **tol(dtype))

        direct = surrogate_grad(v, beta, kind)
        assert direct.dtype == jnp.dtype(dtype)
        np.testing.assert_allclose(np.asarray(direct), expected, **tol(dtype))


def test_paper_scaling_peaks_at_one():
    v = jnp.asarray(np.linspace(-0.05, 0.05, 1001))
    g = np.asarray(surrogate_grad(v, 1000.0, "superspike"))
    assert float(surrogate_grad(0.0, 1000.0, "superspike")) == 1.0
    assert g.max() == 1.0 and np.argmax(g) == 500
    # Paper scaling is dimensionless: the peak does not move with beta, only the width does.
    assert float(surrogate_grad(0.0, 17.0, "superspike")) == 1.0
    assert float(surrogate_grad(1e-3, 1000.0, "superspike")) == pytest.approx(0.25)


@pytest.mark.parametrize("beta", [1000.0, 250.0])
def test_code_scaling_peak_and_floor(beta):
    assert float(surrogate_grad(0.0, beta, "superspike_code")) == pytest.approx(beta)
    below = surrogate_grad(jnp.array([-0.0301, -0.03001, -1.0]), beta, "superspike_code")
    np.testing.assert_array_equal(np.asarray(below), 0.0)
    above = np.asarray(surrogate_grad(jnp.array([-0.02999, -0.0299]), beta, "superspike_code"))
    assert np.all(above > 0)
    np.testing.assert_allclose(
        above, reference_grad([-0.02999, -0.0299], beta, "superspike_code"), rtol=2e-5
    )
    # The floor is relative to theta and configurable.
    moved = surrogate_grad(jnp.array([-0.011, -0.009]), beta, "superspike_code", v_floor=-0.01)
    assert float(moved[0]) == 0.0 and float(moved[1]) > 0.0
    # The floor belongs to the code variant only.
    assert float(surrogate_grad(-0.0301, beta, "superspike")) > 0.0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_gradients_finite_at_extremes_and_zero(kind, dtype):
    with x64(dtype):
        v = jnp.asarray([-1e30, 0.0, 1e30], dtype)
        grad = np.asarray(jax.grad(lambda u: spike(u, kind=kind).sum())(v))
        direct = np.asarray(surrogate_grad(v, kind=kind))
        for arr in (grad, direct):
            assert np.all(np.isfinite(arr)), (kind, dtype, arr)
            assert arr[0] == pytest.approx(0.0, abs=1e-20)
            assert arr[2] == pytest.approx(0.0, abs=1e-20)
            peak = {"superspike": 1.0, "sigmoid": 250.0}.get(kind, 1000.0)
            assert arr[1] == pytest.approx(peak)
        smooth = np.asarray(jax.grad(lambda u: smooth_spike(u).sum())(v))
        assert np.all(np.isfinite(smooth)) and smooth[1] == pytest.approx(250.0)


@pytest.mark.parametrize("kind", KINDS)
def test_traced_beta_jit_matches_python_float(kind):
    v = jnp.asarray(GRID, jnp.float32)

    def grad_v(u, b):
        return jax.grad(lambda w: spike(w, b, kind).sum())(u)

    ref = grad_v(v, 400.0)
    jitted = jax.jit(grad_v)(v, jnp.float32(400.0))
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(ref), rtol=1e-6)
    np.testing.assert_array_equal(
        np.asarray(jax.jit(lambda u, b: spike(u, b, kind))(v, 400.0)), np.asarray(spike(v, 400.0))
    )


@pytest.mark.parametrize("kind", KINDS)
def test_vmap_over_betas_and_floors(kind):
    v = jnp.asarray(GRID, jnp.float32)
    betas = jnp.array([100.0, 1000.0, 3000.0], jnp.float32)
    floors = jnp.array([-0.03, -0.01, -0.1], jnp.float32)

    def grad_v(b, f):
        return jax.grad(lambda w: spike(w, b, kind, f).sum())(v)

    swept = jax.vmap(grad_v)(betas, floors)
    assert swept.shape == (3, GRID.size)
    for i, (b, f) in enumerate(zip([100.0, 1000.0, 3000.0], [-0.03, -0.01, -0.1], strict=True)):
        np.testing.assert_allclose(np.asarray(swept[i]), np.asarray(grad_v(b, f)), rtol=1e-6)
        expected = reference_grad(np.asarray(v), b, kind, float(np.float32(f)))
        # atol scales with beta: float32 rounding of beta * v at the triangular kink |x| = 1.
        np.testing.assert_allclose(np.asarray(swept[i]), expected, rtol=2e-5, atol=1e-6 * b)


@pytest.mark.parametrize("kind", KINDS)
def test_gradient_wrt_beta_and_floor_is_zero(kind):
    v = jnp.asarray(GRID, jnp.float32)
    gb, gf = jax.grad(lambda b, f: spike(v, b, kind, f).sum(), argnums=(0, 1))(1000.0, -0.03)
    assert float(gb) == 0.0 and float(gf) == 0.0
    # When beta also enters through v, only the path through v contributes.
    gb2 = jax.grad(lambda b: spike(v * b / 1000.0, b, kind).sum())(1000.0)
    expected = float(jnp.sum(surrogate_grad(v, 1000.0, kind) * v / 1000.0))
    assert float(gb2) == pytest.approx(expected, rel=1e-5, abs=1e-9)


def test_forward_mode_on_spike_raises_clear_typeerror():
    v = jnp.asarray(GRID, jnp.float32)
    with pytest.raises(TypeError, match="custom_vjp"):
        jax.jvp(spike, (v,), (jnp.ones_like(v),))
    with pytest.raises(TypeError, match="custom_vjp"):
        jax.jacfwd(lambda u: spike(u, kind="triangular"))(v)


def test_smooth_spike_forward_mode_matches_finite_differences():
    with jax.enable_x64(True):
        beta = 1000.0
        v = jnp.asarray(GRID)
        tangent = jnp.asarray(np.linspace(0.5, 1.5, GRID.size))
        out, jvp = jax.jvp(lambda u: smooth_spike(u, beta), (v,), (tangent,))
        np.testing.assert_allclose(np.asarray(out), 1.0 / (1.0 + np.exp(-beta * GRID)), rtol=1e-12)
        h = 1e-8
        fd = (smooth_spike(v + h * tangent, beta) - smooth_spike(v - h * tangent, beta)) / (2 * h)
        np.testing.assert_allclose(np.asarray(jvp), np.asarray(fd), rtol=1e-5, atol=1e-6)
        jac = jax.jacfwd(lambda u: smooth_spike(u, beta))(v)
        np.testing.assert_allclose(
            np.asarray(jnp.diag(jac)), reference_grad(GRID, beta, "sigmoid"), rtol=1e-10, atol=1e-12
        )
        # Its true derivative is the "sigmoid" surrogate.
        grad = jax.grad(lambda u: smooth_spike(u, beta).sum())(v)
        np.testing.assert_allclose(
            np.asarray(grad), np.asarray(surrogate_grad(v, beta, "sigmoid")), rtol=1e-10, atol=1e-12
        )


@pytest.mark.parametrize("dtype", DTYPES)
def test_smooth_spike_dtype(dtype):
    with x64(dtype):
        assert smooth_spike(jnp.zeros(3, dtype)).dtype == jnp.dtype(dtype)
        assert float(smooth_spike(jnp.zeros((), dtype))) == 0.5


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "fast_sigmoid"}, "kind"),
        ({"forward": "step"}, "forward"),
        ({"beta": 0.0}, "beta"),
        ({"beta": -1.0}, "beta"),
        ({"beta": float("inf")}, "beta"),
        ({"beta": float("nan")}, "beta"),
        ({"beta": "big"}, "beta"),
        ({"v_floor": float("nan")}, "v_floor"),
    ],
)
def test_surrogate_validation_names_field(kwargs, field):
    with pytest.raises(ValueError, match=rf"Surrogate\.{field} .*(must|expected)"):
        Surrogate(**kwargs)


def test_surrogate_validation_lists_allowed_values():
    with pytest.raises(ValueError, match="superspike_code"):
        Surrogate(kind="bogus")
    with pytest.raises(ValueError, match="heaviside"):
        Surrogate(forward="bogus")
    with pytest.raises(ValueError, match="> 0"):
        Surrogate(beta=-5.0)


def test_function_kind_validation():
    with pytest.raises(ValueError, match="kind"):
        spike(jnp.zeros(2), kind="bogus")
    with pytest.raises(ValueError, match="kind"):
        surrogate_grad(jnp.zeros(2), kind="bogus")


def test_surrogate_hashable_and_static_jit_arg():
    a, b = Surrogate(), Surrogate(beta=1000)
    assert a == b and hash(a) == hash(b) and isinstance(b.beta, float)
    assert len({a, b, Surrogate(kind="triangular")}) == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.beta = 5.0

    traces = []

    def loss_grad(v, s):
        traces.append(s)
        return jax.grad(lambda u: s(u).sum())(v)

    f = jax.jit(loss_grad, static_argnums=1)
    v = jnp.asarray(GRID, jnp.float32)
    configs = (
        Surrogate(),
        Surrogate(kind="superspike_code", beta=500.0),
        Surrogate(kind="triangular"),
    )
    for s in configs:
        np.testing.assert_allclose(np.asarray(f(v, s)), np.asarray(s.grad(v)), rtol=1e-5, atol=1e-6)
    assert len(traces) == len(configs)
    n = len(traces)
    f(v, Surrogate())  # equal config: cache hit, no retrace
    assert len(traces) == n


@pytest.mark.parametrize("kind", KINDS)
def test_surrogate_call_and_grad(kind):
    v = jnp.asarray(GRID, jnp.float32)
    s = Surrogate(kind=kind, beta=500.0)
    np.testing.assert_array_equal(np.asarray(s(v)), (GRID > 0).astype(np.float32))
    expected = reference_grad(np.asarray(v), 500.0, kind, float(np.float32(V_FLOOR)))
    np.testing.assert_allclose(np.asarray(s.grad(v)), expected, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(
        np.asarray(jax.grad(lambda u: s(u).sum())(v)), np.asarray(s.grad(v)), rtol=1e-6
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_surrogate_sigmoid_forward_grad_is_true_derivative(dtype):
    with x64(dtype):
        v = jnp.asarray(GRID, dtype)
        # kind is irrelevant for the smooth forward: grad is the sigmoid's own derivative.
        smooth = Surrogate(kind="superspike_code", beta=500.0, forward="sigmoid")
        np.testing.assert_allclose(np.asarray(smooth(v)), np.asarray(smooth_spike(v, 500.0)))
        autodiff = np.asarray(jax.grad(lambda u: smooth(u).sum())(v))
        # float32 autodiff of the logistic forms s (1 - s), which cancels in the upper tail
        # (absolute error ~ beta * eps); smooth.grad uses the cancellation-free form.
        tols = {"rtol": 1e-5, "atol": 500.0 * 2e-7} if dtype == "float32" else tol(dtype)
        np.testing.assert_allclose(np.asarray(smooth.grad(v)), autodiff, **tols)
        np.testing.assert_allclose(
            np.asarray(smooth.grad(v)),
            reference_grad(np.asarray(v), 500.0, "sigmoid"),
            **tol(dtype),
        )


def test_surrogate_takes_beta_as_a_value():
    """``Surrogate.__call__`` / ``grad`` with ``beta`` given equal the surrogate holding it, and
    ``structure()`` makes surrogates that differ only in beta equal (kind and floor stay)."""
    v = jnp.linspace(-0.05, 0.05, 101)
    for kind in KINDS:
        held = Surrogate(kind=kind, beta=250.0)
        given = Surrogate(kind=kind)
        np.testing.assert_array_equal(given.grad(v, jnp.float32(250.0)), held.grad(v))
        g_held = jax.grad(lambda x, s=held: jnp.sum(s(x)))(v)
        g_given = jax.jit(jax.grad(lambda x, b, s=given: jnp.sum(s(x, b))))(v, 250.0)
        np.testing.assert_array_equal(g_given, g_held)
        assert not np.array_equal(given.grad(v), held.grad(v))
    assert Surrogate(beta=3.0).structure() == Surrogate(beta=7.0).structure() == Surrogate()
    assert Surrogate(kind="sigmoid").structure() != Surrogate().structure()
