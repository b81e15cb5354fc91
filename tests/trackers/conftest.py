"""A plausible monitored run: COD fitted on the synthetic ladder, a target run's forecast
trajectory and an observed trajectory that follows it, then drifts below its band."""

from dataclasses import dataclass

import numpy as np
import pytest

from cod_monitor.records import Alert, AlertReason, ForecastPoint, Observation


@dataclass
class FakeRun:
    benchmark: str
    curve: list  # ForecastPoint, version 1
    report: dict
    observed: list  # (Observation, ForecastPoint)
    alerts: list  # Alert


def make_run(forecaster, target, *, n_curve=50, last_step=50_000, every=2, n_obs=16,
             drift_after=10, seed=0) -> FakeRun:
    """Forecast at ``n_curve`` steps; observations at every ``every``-th one, following
    the forecast (noise a quarter of the band) and sinking by 0.012 per checkpoint after
    ``drift_after`` of them."""
    bench = forecaster.benchmark_
    steps = np.linspace(last_step / n_curve, last_step, n_curve).astype(int)
    compute = target.compute * steps / last_step
    value = forecaster.predict(compute)
    lower, upper = forecaster.predict_interval(compute)
    curve = [ForecastPoint(int(s), float(c), bench, float(v), float(lo), float(hi), 1)
             for s, c, v, lo, hi in zip(steps, compute, value, lower, upper)]
    rng = np.random.default_rng(seed)
    observed, alerts, below = [], [], 0
    for i, p in enumerate(curve[every - 1::every][:n_obs]):
        acc = p.value + rng.normal(0, (p.upper - p.lower) / 4) - 0.012 * max(0, i - drift_after)
        o = Observation(p.step, p.compute, bench, float(acc))
        observed.append((o, p))
        below = below + 1 if acc < p.lower else 0
        if below == 2:
            alerts.append(Alert(
                p.step, bench, AlertReason.BELOW_BAND,
                f"{bench} at step {p.step}: observed accuracy {acc:.3f} is below the forecast "
                f"interval [{p.lower:.3f}, {p.upper:.3f}] for 2 checkpoints in a row "
                f"(forecast {p.value:.3f}).", float(acc), p.lower, p.upper))
    return FakeRun(bench, curve, forecaster.report(), observed, alerts)


@pytest.fixture(scope="session")
def fake_run(fitted_cod, syn):
    return make_run(fitted_cod, syn.target)


def final_forecasts(run):
    """A :class:`FinalForecast` after each observation of ``run``: the ladder's final
    forecast, moved a little further at every checkpoint."""
    from cod_monitor.records import FinalForecast

    last = run.curve[-1]
    out = []
    for i, (o, p) in enumerate(run.observed):
        value = last.value + 0.002 * i
        out.append((o, p, FinalForecast(
            step=o.step, benchmark=run.benchmark, final_step=last.step, value=value,
            lower=value - 0.03, upper=value + 0.03, prior_value=last.value,
            prior_lower=last.lower, prior_upper=last.upper, n_used=i + 1, level=0.002 * i,
            rate=0.01 * i, version=1)))
    return out


@pytest.fixture
def run_finals(fake_run):
    return final_forecasts(fake_run)
