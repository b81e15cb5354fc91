"""Accuracy laws in parameters and tokens: recovery of a known law, input checks."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cod_monitor.cod.laws_nd import fit_trajectory_laws, trajectory_accuracy

TRUE = {"A": 40.0, "alpha": 0.35, "B": 900.0, "beta": 0.55, "c": 0.12, "g": 0.1}


def test_recovers_a_known_law_from_checkpoints():
    # six runs of eight checkpoints each, tokens growing with size as in the demo recipe
    N = np.repeat(np.geomspace(2.5e4, 1.25e6, 6), 8)
    D_final = 250e3 * (N / 18e3) ** 0.3
    D = D_final * np.tile(np.arange(1, 9) / 8, 6)
    rng = np.random.default_rng(0)
    y = trajectory_accuracy(N, D, **TRUE) + rng.normal(0, 0.002, N.size)
    law = fit_trajectory_laws(N, D, y)[0]
    assert law.success and law.rmse < 0.004
    assert_allclose([law.alpha, law.beta], [TRUE["alpha"], TRUE["beta"]], rtol=0.25)
    # the target run: 3x more parameters than the largest ladder model, its own checkpoints
    N_t, D_t = 3.97e6, np.linspace(0.08e6, 1.26e6, 16)
    assert_allclose(law(N_t, D_t), trajectory_accuracy(N_t, D_t, **TRUE), atol=0.01)


def test_fit_checks_its_input():
    with pytest.raises(ValueError, match="should be 1D and match"):
        fit_trajectory_laws([1, 2], [1, 2, 3], [0.1, 0.2])
    with pytest.raises(ValueError, match="two distinct values"):
        fit_trajectory_laws([1e6, 1e6, 1e6], [1, 2, 3], [0.1, 0.2, 0.3])


TWO = {**TRUE, "E": 3e12, "delta": 1.6, "gamma": 0.5}


def ladder_points():
    N = np.repeat(np.geomspace(2.5e4, 1.25e6, 6), 8)
    D = 250e3 * (N / 18e3) ** 0.3 * np.tile(np.arange(1, 9) / 8, 6)
    return N, D


def test_two_phase_law_recovers_a_transient_the_additive_law_misses():
    # larger models shed the early transient sooner: the additive law cannot follow it
    N, D = ladder_points()
    y = trajectory_accuracy(N, D, **TWO)
    assert np.ptp(y - trajectory_accuracy(N, D, **TRUE)) > 0.05  # the term matters here
    additive = fit_trajectory_laws(N, D, y)[0]
    two = fit_trajectory_laws(N, D, y, form="two_phase")[0]
    assert additive.form == "additive" and two.form == "two_phase"
    assert two.rmse < 1e-4 < 1e-3 < additive.rmse
    # the target run: the additive law, bent to fit the ladder, misses its early checkpoints
    N_t, D_t = 3.97e6, np.linspace(0.08e6, 1.26e6, 16)
    truth = trajectory_accuracy(N_t, D_t, **TWO)
    assert np.abs(additive(N_t, D_t) - truth).max() > 0.03
    assert_allclose(two(N_t, D_t), truth, atol=0.001)
    # a warm start keeps the form; the report names it
    warm = fit_trajectory_laws(N, D, y, init=[two])[0]
    assert warm.form == "two_phase" and warm.rmse <= two.rmse + 1e-9
    assert two.as_dict()["form"] == "two_phase" and "E" in two.as_dict()


def test_two_phase_keeps_the_additive_fit_when_the_data_have_no_transient():
    N, D = ladder_points()
    y = trajectory_accuracy(N, D, **TRUE)
    law = fit_trajectory_laws(N, D, y, form="two_phase")[0]
    # nested: never worse than the additive fit it starts from
    assert law.rmse <= fit_trajectory_laws(N, D, y)[0].rmse + 1e-12
    with pytest.raises(ValueError, match="form"):
        fit_trajectory_laws(N, D, y, form="cubic")
