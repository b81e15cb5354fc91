"""The difficulty-reversal check of COD's premise."""

import numpy as np
import pytest

from cod_monitor.ladder.diagnostics import REVERSAL_WARNING, difficulty_reversals
from cod_monitor.ladder import Ladder, ModelInfo
from cod_monitor.synthetic import synthetic_ladder


def _ladder(rates_by_model, steps=None):
    """One benchmark 'b'; rates_by_model[name] lists the per-sample pass rates."""
    models = []
    for i, name in enumerate(rates_by_model):
        run, step = (name, None) if steps is None else steps[name]
        models.append(ModelInfo(name, 1e6 * 2**i, 2e7 * 2**i, 1.2e14 * 4**i, run=run, step=step))
    rows = [{"benchmark": "b", "sample_id": f"s{k}", "model": name, "score": r}
            for name, rates in rates_by_model.items() for k, r in enumerate(rates)]
    return Ladder.from_records(models, rows)


def test_counts_samples_a_run_solves_and_the_next_fails():
    ladder = _ladder({
        "m0": [0.9, 0.6, 0.0, 0.0],
        "m1": [0.95, 0.05, 0.7, 0.3],   # s1 reversed (0.6 -> 0.05)
        "m2": [0.02, 0.9, 0.8, 0.6],    # s0 reversed (0.95 -> 0.02); s2 kept
    })
    rev = difficulty_reversals(ladder, "b")
    assert rev.runs == ("m0", "m1", "m2")
    assert rev.solved.tolist() == [2, 2] and rev.reversed.tolist() == [1, 1]
    assert rev.rate == pytest.approx(0.5)
    np.testing.assert_allclose(rev.pair_rates, [0.5, 0.5])
    # between the thresholds is not a reversal (sampling noise)
    assert difficulty_reversals(ladder, "b", failed=0.01).reversed.tolist() == [0, 0]


def test_only_final_checkpoints_of_ladder_runs_count():
    steps = {"a-1": ("a", 1), "a-2": ("a", 2), "b-1": ("b", 1), "b-2": ("b", 2),
             "c-1": ("c", 1)}
    ladder = _ladder({
        "a-1": [0.9], "a-2": [0.9], "b-1": [0.0], "b-2": [0.8], "c-1": [0.0],
    }, steps=steps).with_roles({"c-1": "target"})
    # a's intermediate checkpoint and b's early failure do not count; the target is not a run
    rev = difficulty_reversals(ladder, "b")
    assert rev.runs == ("a", "b") and rev.reversed.tolist() == [0]


def test_consistent_synthetic_difficulty_has_no_reversals_and_shuffled_has_many(shuffle):
    ladder = synthetic_ladder(seed=0).ladder
    assert difficulty_reversals(ladder, "synthetic").rate < 0.01
    # the same per-model accuracies, with each model's samples permuted independently:
    # difficulty is then model-specific
    shuffled = shuffle(ladder, "synthetic")
    assert difficulty_reversals(shuffled, "synthetic").rate > REVERSAL_WARNING


@pytest.mark.parametrize("kwargs", [{"solved": 0.1, "failed": 0.1}, {"solved": 1.5}, {"failed": -0.1}])
def test_bad_thresholds_name_both(kwargs):
    ladder = _ladder({"m0": [0.9], "m1": [0.1], "m2": [0.5]})
    with pytest.raises(ValueError, match="failed < solved"):
        difficulty_reversals(ladder, "b", **kwargs)
