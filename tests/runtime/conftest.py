"""Fixtures of the pool tests: the worker backends, and a simulated Ray cluster.

The Ray tests share one :class:`ray.cluster_utils.Cluster` for the session: a head
node without the evaluation resource and two evaluation nodes that carry it
(``{"eval_gpu": 1}``) and one (fake) GPU each, all on this machine. They are marked
``ray`` and skipped when Ray is not installed.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS_DIR = str(Path(__file__).resolve().parents[1])  # where monitor_jobs lives


def _sched_idle_works() -> bool:
    """Whether a process here may switch itself to SCHED_IDLE (a container's seccomp
    profile can forbid it; the workers then fall back to niceness 19)."""
    if not hasattr(os, "SCHED_IDLE"):
        return False
    code = "import os; os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def runs_idle():
    """``runs_idle(meta)``: a worker's probe (``monitor_jobs.probe``) shows the idle
    priority: SCHED_IDLE where this machine allows it, else niceness 19."""
    works = _sched_idle_works()

    def check(meta) -> bool:
        if works:
            return meta["sched"] == os.SCHED_IDLE
        return meta["nice"] >= 19

    return check


class SimulatedCluster:
    """A head and two evaluation nodes on this machine, this process connected.

    Attributes
    ----------
    cluster : ray.cluster_utils.Cluster
    resources : dict
        The custom resource of the evaluation nodes: what pins an actor there.
    """

    resources = {"eval_gpu": 1}

    def __init__(self):
        import ray
        from ray.cluster_utils import Cluster

        self.cluster = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": 1, "include_dashboard": False,
                # a lost node is noticed within about a second, not ~15 s
                "_system_config": {"health_check_period_ms": 300,
                                   "health_check_failure_threshold": 3},
            },
        )
        for _ in range(2):
            self.add_eval_node()
        # the actors import the test job functions (monitor_jobs) by name
        ray.init(address=self.cluster.address, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": TESTS_DIR}})

    @property
    def head_id(self) -> str:
        return self.cluster.head_node.node_id

    def eval_nodes(self) -> list:
        """The evaluation nodes (``remove_node`` takes a lost one out of the list)."""
        return list(self.cluster.worker_nodes)

    def add_eval_node(self) -> None:
        self.cluster.add_node(num_cpus=1, num_gpus=1, resources=self.resources)
        self.cluster.wait_for_nodes()

    def shutdown(self) -> None:
        import ray

        ray.shutdown()
        self.cluster.shutdown()


@pytest.fixture(scope="session")
def ray_cluster():
    """The :class:`SimulatedCluster` of every Ray test (started on first use)."""
    pytest.importorskip("ray")
    cluster = SimulatedCluster()
    yield cluster
    cluster.shutdown()


@pytest.fixture(params=["local", pytest.param("ray", marks=pytest.mark.ray)])
def make_pool(request):
    """Builds a pool on the backend of the parameter: local processes, or Ray actors
    pinned to the simulated cluster's evaluation nodes."""
    from cod_monitor.runtime import EvalPool

    if request.param == "local":
        return EvalPool
    cluster = request.getfixturevalue("ray_cluster")
    from cod_monitor.runtime import RayEvalPool

    def ray_pool(devices=("cpu",), **kwargs):
        return RayEvalPool(devices, resources=cluster.resources, **kwargs)

    return ray_pool
