"""The monitor's typed configuration: mistakes fail where they are written."""

from dataclasses import FrozenInstanceError, replace

import pytest

from cod_monitor.exceptions import ParameterError
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
    ],
)
def test_configuration_mistakes_fail_at_construction(make, match):
    with pytest.raises(ParameterError, match=match):
        make()


def test_configurations_normalise_what_they_hold():
    pool = PoolConfig(devices="cuda:1", queue_policy="every_nth:3")
    assert pool.devices == ("cuda:1",) and pool.queue_policy == QueuePolicy("every_nth", n=3)
    assert RunGeometry(params=10, tokens_per_step=2).tokens_at(5) == 10.0
    assert RunGeometry().tokens_at(5) is None


def test_configurations_are_frozen_and_replaceable():
    config = ForecastConfig()
    with pytest.raises(FrozenInstanceError):
        config.level = 0.5
    assert replace(config, level=0.5).level == 0.5
    with pytest.raises(ParameterError, match="'level'"):
        replace(config, level=5)
