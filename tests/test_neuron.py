"""LIF neuron against closed forms: PSP shape, constant-current trajectory, inter-spike interval."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssjax.filters import epsilon_kernel
from ssjax.neuron import LIFParams, lif_init, lif_step, psp_trace_step
from ssjax.spike import Surrogate


def run(params, x, i_ext=0.0, state=None, dtype=jnp.float32):
    """Scan ``lif_step`` over inputs ``x`` [T, N]; returns (state, spikes, u_pre)."""
    st = lif_init(params, x.shape[1:], dtype) if state is None else state

    def step(s, xt):
        s, sp, u = lif_step(params, s, xt, i_ext)
        return s, (sp, u)

    st, (sp, u) = jax.lax.scan(step, st, x.astype(dtype))
    return st, sp, u


@pytest.mark.parametrize("integrator", ["euler", "exact"])
def test_psp_peak_of_one_millivolt_weight(integrator):
    p = LIFParams(integrator=integrator)
    x = jnp.zeros((400, 1)).at[0, 0].set(1e-3)
    _, sp, u = run(p, x)
    v = np.asarray(u[:, 0], np.float64) - p.u_rest
    t = (np.arange(400) + 1) * p.dt  # the state after step k stands for time (k + 1) dt
    assert sp.sum() == 0
    assert v.max() == pytest.approx(0.25e-3, rel=2e-2 if integrator == "euler" else 1e-4)
    assert t[v.argmax()] == pytest.approx(10e-3 * math.log(2), abs=1.5 * p.dt)


def test_exact_integrator_samples_closed_form_psp():
    with jax.enable_x64(True):
        p = LIFParams(integrator="exact")
        x = jnp.zeros((600, 1), jnp.float64).at[5, 0].set(2e-3)
        _, _, u = run(p, x, dtype=jnp.float64)
        t = (np.arange(600) - 5 + 1) * p.dt
        ref = 2e-3 * np.asarray(epsilon_kernel(jnp.asarray(t), p.tau_syn, p.tau_mem))
        np.testing.assert_allclose(np.asarray(u[:, 0]) - p.u_rest, ref, rtol=0, atol=1e-15)


def test_euler_psp_close_to_closed_form():
    p = LIFParams(integrator="euler")
    x = jnp.zeros((600, 1)).at[0, 0].set(1e-3)
    _, _, u = run(p, x)
    t = (np.arange(600) + 1) * p.dt
    ref = 1e-3 * np.asarray(epsilon_kernel(jnp.asarray(t), p.tau_syn, p.tau_mem))
    # forward Euler's error is O(dt / tau_mem) = 1% of the peak
    assert np.abs(np.asarray(u[:, 0]) - p.u_rest - ref).max() < 0.02 * 0.25e-3


@pytest.mark.parametrize("integrator", ["euler", "exact"])
def test_constant_current_membrane_trajectory(integrator):
    with jax.enable_x64(True):
        p = LIFParams(integrator=integrator)
        i_ext = 8e-3  # subthreshold: U_inf = -52 mV < theta
        _, sp, u = run(p, jnp.zeros((1000, 1)), i_ext=i_ext, dtype=jnp.float64)
        t = (np.arange(1000) + 1) * p.dt
        ref = p.u_rest + i_ext * (1 - np.exp(-t / p.tau_mem))
        tol = 1e-15 if integrator == "exact" else 0.01 * i_ext * p.dt / p.tau_mem * 100
        np.testing.assert_allclose(np.asarray(u[:, 0]), ref, rtol=0, atol=tol)
        assert float(sp.sum()) == 0.0


@pytest.mark.parametrize("integrator", ["euler", "exact"])
@pytest.mark.parametrize("i_ext", [12e-3, 20e-3, 40e-3])
def test_interspike_interval_is_charge_time_plus_refractory(integrator, i_ext):
    with jax.enable_x64(True):
        p = LIFParams(integrator=integrator)
        _, sp, _ = run(p, jnp.zeros((3000, 1)), i_ext=i_ext, dtype=jnp.float64)
        times = np.nonzero(np.asarray(sp[:, 0]))[0] * p.dt
        isi = np.diff(times)
        assert len(isi) >= 5 and np.ptp(isi) < 1e-12  # perfectly periodic
        t_charge = p.tau_mem * math.log(i_ext / (i_ext - (p.theta - p.u_rest)))
        # the crossing is detected at the end of a step: within one step of the continuous value,
        # plus Euler's O(dt/tau) relative error on the charge time
        tol = p.dt * (1.0 if integrator == "exact" else 1.0 + 0.05 * t_charge / p.dt)
        assert isi[0] == pytest.approx(t_charge + p.tau_ref, abs=tol)
        if integrator == "exact":
            assert isi[0] >= t_charge + p.tau_ref - 1e-12


def test_refractory_clamp_and_reset():
    p = LIFParams()
    _, sp, u = run(p, jnp.zeros((400, 1)), i_ext=30e-3)
    k = int(np.nonzero(np.asarray(sp[:, 0]))[0][0])
    # the spike step saw U above threshold; the next ref_steps steps are clamped at rest
    assert float(u[k, 0]) > p.theta
    np.testing.assert_array_equal(
        np.asarray(u[k + 1 : k + 1 + p.ref_steps, 0]), np.float32(p.u_rest)
    )
    assert float(u[k + 1 + p.ref_steps, 0]) > p.u_rest


def test_no_refractoriness_allows_immediate_reintegration():
    p = LIFParams(tau_ref=0.0)
    _, sp, u = run(p, jnp.zeros((400, 1)), i_ext=30e-3)
    k = int(np.nonzero(np.asarray(sp[:, 0]))[0][0])
    assert float(u[k + 1, 0]) > p.u_rest


def test_psp_trace_equals_reset_free_membrane():
    """psp_trace_step is the membrane response to a unit weight with the neuron's integrator."""
    with jax.enable_x64(True):
        for integrator in ("euler", "exact"):
            p = LIFParams(integrator=integrator)
            key = jax.random.PRNGKey(0)
            s = (jax.random.uniform(key, (800, 3)) < 0.01).astype(jnp.float64)
            w = 1e-3  # small enough never to spike
            _, sp, u = run(p, s * w, dtype=jnp.float64)
            assert float(sp.sum()) == 0.0

            def step(tr, st, p=p):
                return psp_trace_step(p, tr, st)

            _, z = jax.lax.scan(step, (jnp.zeros(3, s.dtype), jnp.zeros(3, s.dtype)), s)
            np.testing.assert_allclose(np.asarray(u) - p.u_rest, w * np.asarray(z), atol=1e-15)


def test_reset_gradient_modes():
    """reset_grad=False: dU/dx is the free membrane's; True: the refractory clamp blocks it."""
    base = LIFParams()
    x = jnp.zeros((300, 1)).at[0, 0].set(60e-3)  # one strong input -> one spike
    _, sp, _ = run(base, x)
    assert float(sp.sum()) == 1.0
    k = int(np.nonzero(np.asarray(sp[:, 0]))[0][0])
    free = jax.grad(lambda a: run(dataclasses.replace(base, theta=1.0), x * a)[2][k + 10, 0])(1.0)
    assert abs(float(free)) > 1e-3
    for reset_grad, expected in ((False, float(free)), (True, 0.0)):
        p = dataclasses.replace(base, reset_grad=reset_grad)
        g = jax.grad(lambda a, p=p: run(p, x * a)[2][k + 10, 0])(1.0)
        assert float(g) == pytest.approx(expected, rel=1e-5, abs=1e-12)
    # after the clamp the differentiated reset still differs from the free membrane
    g_late = jax.grad(lambda a: run(dataclasses.replace(base, reset_grad=True), x * a)[2][150, 0])(
        1.0
    )
    free_late = jax.grad(lambda a: run(dataclasses.replace(base, theta=1.0), x * a)[2][150, 0])(1.0)
    assert abs(float(g_late) - float(free_late)) > 0.1 * abs(float(free_late))


def test_forward_identical_across_gradient_modes():
    x = (jax.random.uniform(jax.random.PRNGKey(3), (2000, 5)) < 0.05).astype(jnp.float32) * 8e-3
    outs = [run(LIFParams(reset_grad=r), x)[2] for r in (False, True)]
    np.testing.assert_array_equal(outs[0], outs[1])


def test_smooth_forward_is_differentiable_and_validated():
    with pytest.raises(ValueError, match="tau_ref"):
        LIFParams(surrogate=Surrogate(forward="sigmoid"))
    p = LIFParams(surrogate=Surrogate(forward="sigmoid", beta=500.0), tau_ref=0.0)
    _, sp, _ = run(p, jnp.zeros((50, 2)), i_ext=20e-3)
    assert 0.0 < float(sp.min()) and float(sp.max()) < 1.0


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("tau_mem", 0.0, "tau_mem"),
        ("tau_syn", 1e-5, "tau_syn"),
        ("dt", -1e-4, "dt"),
        ("theta", -0.07, "theta"),
        ("tau_ref", -1e-3, "tau_ref"),
        ("delay", 0.75e-4, "delay"),
        ("integrator", "rk4", "integrator"),
        ("u_reset", -0.04, "u_reset"),
        ("tau_mem", float("nan"), "tau_mem"),
    ],
)
def test_params_validation_names_field(field, value, match):
    with pytest.raises(ValueError, match=match):
        LIFParams(**{field: value})


def test_delay_and_refractory_steps():
    p = LIFParams(delay=8e-4)
    assert p.delay_steps == 8 and p.ref_steps == 50
    assert hash(p) == hash(LIFParams(delay=8e-4))
