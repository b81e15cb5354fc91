"""The local worker backend: device environments (its processes run in test_pool)."""

import pytest

from cod_monitor.exceptions import ParameterError
from cod_monitor.runtime import device_env


@pytest.mark.parametrize(
    "device, name, visible",
    [("cpu", "cpu", ""), ("cuda", "cuda:0", "0"), ("cuda:2", "cuda:2", "2"), (3, "cuda:3", "3"),
     ("cuda:0,1", "cuda:0,1", "0,1")],
)
def test_device_env(device, name, visible):
    got_name, env = device_env(device)
    assert got_name == name and env["CUDA_VISIBLE_DEVICES"] == visible


@pytest.mark.parametrize("device", ["tpu", "cuda:x", True, "cuda:"])
def test_device_env_rejects_other_devices(device):
    with pytest.raises(ParameterError, match="'device' parameter of device_env"):
        device_env(device)
