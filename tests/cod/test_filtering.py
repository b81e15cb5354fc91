import numpy as np
import pytest

from cod_monitor.cod.filtering import ExtrapolatableFilter, Verdict
from cod_monitor.cod.laws import LawFit, expected_accuracy


def law(a, b, c=0.0, g=0.0, success=True):
    return LawFit("full", a, b, c, g, rmse=0.0, success=success, n_points=8)


C = np.logspace(0, 4, 8)


@pytest.mark.parametrize(
    "fit, curve, verdict",
    [
        (law(20, 0.5, 0.1), expected_accuracy(C, 20, 0.5, 0.1), Verdict.KEPT),
        (law(0.02, 0.5, 0.02), np.full(8, 0.97), Verdict.SATURATED),
        (law(0.5, 0.05, 3.0), np.full(8, 0.005), Verdict.NON_EMERGENT),
        (law(0.5, 0.3, 0.2), np.array([0.5, 0.2, 0.7, 0.3, 0.6, 0.25, 0.4, 0.3]), Verdict.NON_MONOTONE),
        (law(0.5, 0.3, 0.2), expected_accuracy(C, 0.5, 0.3, 0.2), Verdict.OUT_OF_RANGE),
        (law(np.nan, np.nan, np.nan, np.nan, success=False), np.zeros(8), Verdict.FIT_FAILED),
        (law(20, 0.5, -0.2), expected_accuracy(C, 20, 0.5, 0.0), Verdict.OUT_OF_RANGE),
        (law(20, 0.5, 1.2), expected_accuracy(C, 20, 0.5, 1.2), Verdict.OUT_OF_RANGE),
    ],
)
def test_verdicts(fit, curve, verdict):
    result = ExtrapolatableFilter().judge(fit, curve)
    assert result.verdict is verdict
    assert result.kept == (verdict is Verdict.KEPT)
    assert result.detail


def test_thresholds_are_strict_and_configurable():
    flt = ExtrapolatableFilter()
    curve = expected_accuracy(C, 1.0, 0.5, 0.1)
    assert not flt.judge(law(1.0, 0.5, 0.1), curve).kept  # a > 1 is strict
    assert flt.judge(law(1.0001, 0.5, 0.1), curve).kept
    assert not flt.judge(law(5, 0.1, 0.1), curve).kept  # b > 0.1 is strict
    assert flt.judge(law(5, 0.5, 0.0), curve).kept  # c >= 0 is inclusive
    assert not flt.judge(law(5, 0.5, 1.0), curve).kept  # c < 1 is strict
    assert ExtrapolatableFilter(a_min=0.1).judge(law(0.5, 0.5, 0.1), curve).kept


def test_rejection_detail_names_the_failed_threshold():
    result = ExtrapolatableFilter().judge(law(0.31, 0.5, 0.1), expected_accuracy(C, 0.31, 0.5, 0.1))
    assert "a=0.31 <= 1" in result.detail


def test_keeps_agrees_with_judge():
    from cod_monitor.cod.filtering import ExtrapolatableFilter
    from cod_monitor.cod.laws import LawFit

    flt = ExtrapolatableFilter()
    y = np.array([0.1, 0.2, 0.4, 0.6])
    for a, b, c, ok in [(5, .5, .1, True), (0.5, .5, .1, True), (5, .05, .1, True),
                        (5, .5, 1.5, True), (5, .5, .1, False), (np.nan, .5, .1, True)]:
        fit = LawFit("full", a, b, c, 0.0, 0.01, ok, 4)
        assert flt.keeps(fit) == flt.judge(fit, y).kept
