"""The monitor's typed configuration: mistakes fail where they are written."""

import importlib.util
from dataclasses import FrozenInstanceError, replace

import pytest

from cod_monitor.exceptions import ParameterError
from cod_monitor.runtime import local
from cod_monitor.monitor import (
    CheckpointConfig,
    CODMonitor,
    ForecastConfig,
    PoolConfig,
    QueuePolicy,
    RunGeometry,
)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: CODMonitor(object(), {"b": "b"}), "'ladder' parameter of CODMonitor"),
        (lambda: CODMonitor("ladder", {"b": "b"}, forecast={"level": 0.8}),
         "'forecast' parameter of CODMonitor must be a ForecastConfig"),
        (lambda: CODMonitor("ladder", {"b": "b"}, poll_interval=0), "'poll_interval'"),
        (lambda: ForecastConfig(level=1.0), "'level' parameter of ForecastConfig"),
        (lambda: ForecastConfig(n_bootstrap=-1), "'n_bootstrap'"),
        (lambda: ForecastConfig(refresh_interval=0), "'refresh_interval'"),
        (lambda: PoolConfig(devices=[]), "'devices' parameter of PoolConfig"),
        (lambda: PoolConfig(devices=["tpu"]), "'devices' parameter of PoolConfig"),
        (lambda: PoolConfig(queue_policy="fifo"), "'queue_policy' parameter of PoolConfig"),
        (lambda: PoolConfig(timeout=0), "'timeout'"),
        (lambda: PoolConfig(max_retries=-1), "'max_retries'"),
        (lambda: RunGeometry(params=-1.0), "'params' parameter of RunGeometry"),
        (lambda: RunGeometry(tokens_per_step=float("inf")), "'tokens_per_step'"),
        (lambda: RunGeometry(max_steps=0), "'max_steps'"),
        (lambda: CheckpointConfig(link="yes"), "'link' parameter of CheckpointConfig"),
        # the mistakes of issue 18, each where it is written
        (lambda: CODMonitor("ladder", {"b": "b"}, poll_interval=-1), "'poll_interval'"),
        (lambda: RunGeometry(max_steps="abc"), r"'max_steps'.*Got 'abc' instead"),
        (lambda: ForecastConfig(cod_params={"falback": "end_to_end"}),
         r"'cod_params'.*'falback' is not a CODForecaster parameter\. Did you mean 'fallback'\?"),
        (lambda: ForecastConfig(cod_params={"n_bootstrap": 5}),
         r"sets 'n_bootstrap' itself; pass ForecastConfig\(n_bootstrap=\.\.\.\)"),
        (lambda: ForecastConfig(cod_params=[("fallback", "error")]), "'cod_params'"),
        (lambda: PoolConfig(job_fn="monitor_jobs.constant"),
         r"'job_fn' parameter of PoolConfig must be a callable, a 'module:function' str"),
        (lambda: PoolConfig(job_fn=3), "'job_fn'"),
    ],
)
def test_configuration_mistakes_fail_at_construction(make, match):
    with pytest.raises(ParameterError, match=match):
        make()


def _torch_sees(monkeypatch, probe, visible=None):
    """Pretend torch is ``probe`` = (version, GPU build, GPUs seen), or absent (None)."""
    monkeypatch.setattr(local, "_torch_gpus", lambda: probe)
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)


@pytest.mark.parametrize(
    "probe, visible, devices, match",
    [
        (("2.13.0+cpu", False, 0), None, ["cuda:0"],
         r"torch here is the CPU-only build 2\.13\.0\+cpu and can use no GPU\)\. Got \['cuda:0'\] "
         r"instead\. Use devices=\['cpu'\], or install a CUDA build of torch"),
        (("2.13.0+cpu", False, 0), "0,1", [0], "CPU-only build"),  # whatever is visible
        (("2.13.0+cu126", True, 0), None, "cuda", "torch sees no GPU on this machine"),
        (("2.13.0+cu126", True, 2), None, ["cuda:0", "cuda:1,2"], "numbered 0 to 1"),
    ],
)
def test_gpu_devices_this_machine_cannot_use_fail_at_construction(monkeypatch, probe, visible,
                                                                  devices, match):
    _torch_sees(monkeypatch, probe, visible)
    with pytest.raises(ParameterError, match=r"The 'devices' parameter of PoolConfig") as err:
        PoolConfig(devices=devices)
    assert err.match(match)


@pytest.mark.parametrize(
    "probe, visible, devices",
    [
        (None, None, ["cuda:0"]),  # no torch here: nothing to ask
        (("2.13.0+cu126", True, 2), None, ["cuda:1", "cuda:0,1", 0, "cpu"]),
        (("2.13.0+cu126", True, 1), "3", ["cuda:5"]),  # workers set their own visibility
        (("2.13.0+cpu", False, 0), None, ["cpu", "cpu"]),  # torch is not asked for CPUs
    ],
)
def test_gpu_devices_this_machine_can_use_are_accepted(monkeypatch, probe, visible, devices):
    _torch_sees(monkeypatch, probe, visible)
    assert len(PoolConfig(devices=devices).devices) == len(devices)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_a_gpu_device_without_a_usable_gpu_fails_for_real(monkeypatch):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with pytest.raises(ParameterError, match=r"'devices' parameter of PoolConfig.*devices=\['cpu'\]"):
        PoolConfig(devices=["cuda:0"])


def test_configurations_normalise_what_they_hold(monkeypatch):
    _torch_sees(monkeypatch, ("2.13.0+cu126", True, 2))
    pool = PoolConfig(devices="cuda:1", queue_policy="every_nth:3")
    assert pool.devices == ("cuda:1",) and pool.queue_policy == QueuePolicy("every_nth", n=3)
    assert RunGeometry(params=10, tokens_per_step=2).tokens_at(5) == 10.0
    assert RunGeometry().tokens_at(5) is None
    assert ForecastConfig(cod_params={"fallback": "end_to_end"}).cod_params == {
        "fallback": "end_to_end"}
    assert PoolConfig(job_fn="monitor_jobs:constant").job_fn == "monitor_jobs:constant"


def test_configurations_are_frozen_and_replaceable():
    config = ForecastConfig()
    with pytest.raises(FrozenInstanceError):
        config.level = 0.5
    assert replace(config, level=0.5).level == 0.5
    with pytest.raises(ParameterError, match="'level'"):
        replace(config, level=5)


def test_fit_priority_is_checked_at_construction():
    from cod_monitor.monitor import ForecastConfig

    assert ForecastConfig().fit_priority == "low"
    with pytest.raises(ParameterError, match="'fit_priority'"):
        ForecastConfig(fit_priority="idle")
