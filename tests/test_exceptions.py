"""Every error a user can cause is a CODError, so the command line reports it in one line."""

import numpy as np
import pytest

from cod_monitor import CODForecaster, EvalSet, TrajectoryForecaster, fit_law
from cod_monitor.cli import main
from cod_monitor.exceptions import CODError, FitFailedError, InputError, ParameterError
from cod_monitor.synthetic import synthetic_ladder


@pytest.fixture(scope="module")
def syn():
    return synthetic_ladder(n_samples=300, seed=0)


def test_error_types_are_cod_errors_and_value_errors():
    for kind in (InputError, FitFailedError, ParameterError):
        assert issubclass(kind, CODError) and issubclass(kind, ValueError)


def test_bad_arrays_raise_input_error_naming_the_shapes():
    with pytest.raises(InputError, match="shape"):
        fit_law(np.array([1.0, 2.0, 3.0]), np.array([0.1, 0.2]))


def test_forecast_at_a_bad_compute_is_an_input_error(syn):
    cod = CODForecaster(n_bootstrap=0).fit(syn.ladder, syn.benchmark)
    with pytest.raises(InputError, match="positive and finite"):
        cod.predict(-1.0)


def test_a_mode_the_ladder_cannot_serve_is_an_input_error(syn):
    # this ladder has no intermediate checkpoints: the trajectory law cannot be fitted
    with pytest.raises(InputError, match="mode='trajectory'"):
        TrajectoryForecaster(mode="trajectory", n_bootstrap=0).fit(syn.ladder, syn.benchmark)


def test_parameter_errors_reach_the_command_line_as_one_line(tmp_path, capsys, syn):
    syn.ladder.save(tmp_path / "ladder")
    code = main(["predict", "--ladder", str(tmp_path / "ladder"), "--benchmark", syn.benchmark,
                 "--target-compute", "1e21", "--method", "no-such-method"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("cod-monitor predict: error:") and "no-such-method" in err
    assert "Traceback" not in err


def test_evaluation_set_mistakes_are_cod_errors(tmp_path):
    bad = tmp_path / "set.jsonl"
    bad.write_text('{"id": "a", "prompt": "1+1="}\n')  # no answer
    with pytest.raises(CODError, match="answer"):
        EvalSet.from_jsonl(bad)
