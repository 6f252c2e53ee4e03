"""Test configuration: CPU only, deterministic, float32 by default (float64 via jax.enable_x64).

The suite runs under the ``ssjax`` command's XLA:CPU tuning (one CPU device per usable core,
single-loop time scans; ``SSJAX_XLA_TUNING=0`` / ``SSJAX_CPU_DEVICES`` as for the command),
applied here before any test module starts JAX: ``import ssjax`` no longer applies it.
"""

import os

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")

from ssjax.xla import configure_cpu_from_env  # noqa: E402

configure_cpu_from_env()

# The default suite's budget (10 min on 2 cores): these cases run with the long checks
# (`pytest -m slow`, run by .ci/run after the default suite). Each has a faster sibling (another
# parametrisation, dtype or route) that stays in the default suite.
SLOW_CASES = {
    "tests/test_recurrent.py::test_bptt_matches_finite_differences_on_the_smooth_stand_in[0.0001]",
    "tests/test_recurrent.py::test_zero_recurrent_weights_equal_the_feed_forward_network_bit_for_bit",
    "tests/rules/superspike/test_dense.py::test_product_routes_equal_the_direct_sum[20-5]",
    "tests/rules/test_conformance.py::test_input_leaves_flag_what_depends_on_the_inputs_alone"
    "[superspike_dense]",
    "tests/rules/test_conformance.py::test_vmap_over_seeds_equals_a_loop[superspike_dense]",
    "tests/test_nn.py::test_gradients_through_the_module_equal_bptt[recurrent]",
    "tests/test_nn.py::test_module_equals_simulate_bit_for_bit_and_converts_weights[alif_delay]",
    "tests/experiment/test_sweep.py::test_a_condition_in_a_sweep_equals_the_condition_run_alone"
    "[map]",
    "tests/experiment/test_sweep.py::test_a_sweep_folder_refuses_other_conditions",
    "tests/experiment/test_runner.py::test_sigterm_saves_checkpoint_and_exits",
    "tests/test_train.py::test_event_pattern_trains_bit_identically_to_the_dense_arrays[dense]",
    "tests/test_train.py::test_single_neuron_learns_timing_task[superspike]",
    "tests/rules/superspike/test_routes.py::test_stepwise_dense_event_agree_over_consecutive_blocks"
    "[sizes0-0.0-0.0-symmetric-het0-False]",
    "tests/rules/superspike/test_routes.py::test_stepwise_dense_event_agree_over_consecutive_blocks"
    "[sizes3-0.0003-0.0-symmetric-het3-False]",
    "tests/rules/superspike/test_routes.py::test_stepwise_dense_event_agree_over_consecutive_blocks"
    "[sizes2-0.0-0.0005-uniform-het2-False]",
    "tests/rules/superspike/test_event.py::test_per_spike_sums_and_currents_equal_the_products"
    "[0.003]",
    "tests/rules/superspike/test_event.py::test_event_hidden_error_equals_the_filtered_product"
    "[symmetric]",
    "tests/rules/superspike/test_event.py::test_per_spike_input_currents_equal_the_dense_product"
    "[5.0]",
    "tests/test_nir_io.py::test_independent_graph_simulator_reproduces_ssjax[recurrent_delays]",
    "tests/neurons/test_alif.py::test_without_adaptation_alif_is_lif_bit_for_bit",
    "tests/test_trial.py::test_superspike_step_equals_the_rule_on_each_trial_alone[window]",
    "tests/rules/test_bptt.py::test_reset_gradient_choice_changes_hidden_gradient",
    "tests/rules/test_regulariser.py::test_regulariser_ratio_matches_reference_code[False-dense]",
    "tests/test_losses.py::test_moving_average_cost_against_recursion",
    "tests/tasks/test_xor.py::test_labels_are_a_xor_b_and_kinds_balanced",
    "tests/experiment/test_checkpoint.py::test_round_trip_bit_identical_all_dtypes[float64]",
    "tests/test_benchmarks.py::test_training_steps_agree_after_updates",
    "tests/test_optim.py::test_state_stable_and_scan_matches_python_loop[rmaxprop-float64]",
}


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid in SLOW_CASES:
            item.add_marker(pytest.mark.slow)
