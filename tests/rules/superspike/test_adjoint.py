"""Closed forms of the fast routes: the PSP trace from a carried state as the spike part plus
the closed-form decay of the state."""

import jax
import jax.numpy as jnp
import numpy as np

from ssjax.neuron import LIFParams
from ssjax.rules.superspike._adjoint import psp_filter, psp_filter_free


def test_psp_trace_from_carried_state_is_spike_part_plus_free_decay():
    """The dense route's split of the presynaptic trace: spikes from a zero state + closed decay."""
    params = LIFParams()
    s = (jax.random.uniform(jax.random.PRNGKey(3), (3000, 7)) < 0.01).astype(jnp.float32)
    y0 = jax.random.uniform(jax.random.PRNGKey(4), (7,), minval=0.0, maxval=2.0)
    m0 = jax.random.uniform(jax.random.PRNGKey(5), (7,), minval=0.0, maxval=0.5)
    z_ref, (syn_ref, mem_ref) = psp_filter(params, s, (y0, m0))  # one scan from the state
    z, (syn, mem) = psp_filter_free(params, s)
    n = s.shape[1]
    np.testing.assert_allclose(
        z[:, :n] + y0 * z[:, n : n + 1] + m0 * z[:, n + 1 :], z_ref, atol=1e-6
    )
    np.testing.assert_allclose(syn[:n] + y0 * syn[n], syn_ref, atol=1e-6)
    np.testing.assert_allclose(mem[:n] + y0 * mem[n] + m0 * mem[n + 1], mem_ref, atol=1e-6)
    # the free columns are the closed-form decay of a unit state
    a, _, c = params.membrane_coeffs()
    t = np.arange(1, 3001)
    f_syn = c * (a**t - params.syn_decay**t) / (a - params.syn_decay)
    np.testing.assert_allclose(z[:, n], f_syn, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(z[:, n + 1], a**t, rtol=1e-4, atol=1e-9)
    # negative control: the carried state matters
    assert float(jnp.abs(z[:, :n] - z_ref).max()) > 0.1
