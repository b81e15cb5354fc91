"""The Ray worker backend: one actor per evaluation slot, anywhere in a Ray cluster.

:class:`RayActors` implements :class:`~cod_monitor.runtime.backend.WorkerBackend` with
Ray actors, and :class:`RayEvalPool` is an :class:`~cod_monitor.runtime.pool.EvalPool`
over it. The pool's bookkeeping is unchanged: the queue and its policy, the attempts
and retries, the time limits and the outcomes stay in the pool, in the monitor
process. Ray only places and restarts the actors.

* **Placement.** An actor per entry of ``devices``: ``'cpu'`` (no GPU) or ``'cuda'``
  (``num_gpus`` GPUs, which Ray picks and exposes through ``CUDA_VISIBLE_DEVICES``),
  plus any custom ``resources``: give the held-out evaluation nodes a resource of
  their own (``ray start --resources='{"eval_gpu": 1}'``) and pass
  ``resources={"eval_gpu": 1}`` so that evaluation never lands on a training node.
* **Warm evaluators.** An actor lives across checkpoints; it runs the local workers'
  job function (:func:`~cod_monitor.runtime.worker.run_evaluation` by default), which
  builds the evaluator (an engine, a tokenizer) once per actor and reuses it.
* **Restarts.** Actors are created with ``max_restarts`` (default: unlimited), so Ray
  brings an actor back after a crash or a lost node; the pool retries the job. Ray
  has no task time limit: the pool's timeout kills the actor (``ray.kill``, which Ray
  restarts) and retries the job on a fresh one.
* **Results** come back to the monitor process, the only writer of the journal and
  of W&B.

Shared filesystem
-----------------
A job names its snapshot by path: the evaluation nodes read the snapshots where the
monitor wrote them, so the monitor's output directory must be on a filesystem every
evaluation node mounts at the same path (NFS, Lustre, GPFS, ...). With
``shared_dir`` (the monitor passes its snapshot directory), :meth:`RayActors.open`
writes a probe file with a random token there, and each actor reads it before it
takes a job; an actor that cannot read it, or reads another token (a local directory
of the same name), is given up at once with an error that names the path and the fix.

Connection
----------
``address=None`` starts a local Ray instance, unless this process is already
connected (then the connection is reused) or ``RAY_ADDRESS`` is set (then that
cluster is joined); ``address='auto'`` joins the cluster started with ``ray start``
on this machine; any other address is passed to :func:`ray.init`. A Ray started
here is shut down when the pool closes.

Ray is imported only when a pool starts (or is built): importing this module does
not import it.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cod_monitor._validation import check_int, check_real, invalid
from cod_monitor.exceptions import MissingExtraError
from cod_monitor.runtime.local import device_env, worker_env
from cod_monitor.runtime.pool import EvalPool
from cod_monitor.runtime.priority import check_worker_priority, lower_process_priority
from cod_monitor.runtime.worker import resolve_job_fn, run_job

__all__ = ["PLACEMENT_WARNING_S", "PROBE_PREFIX", "RayActors", "RayEvalPool", "RayWorker",
           "check_ray_address", "check_ray_resources", "ray_device", "require_ray"]

logger = logging.getLogger(__name__)

#: Name prefix of the probe file written in ``shared_dir`` (see the module docstring).
PROBE_PREFIX = ".cod-ray-probe-"

# How often wait() looks for a wake() while Ray results are outstanding, and how soon
# an actor that Ray is restarting is asked again whether it is ready.
_POLL_S = 0.05
_READY_RETRY_S = 0.5
# An actor not placed after this long is warned about: no node may offer what it asks.
PLACEMENT_WARNING_S = 60.0

# Ray's own resources: set through num_cpus / num_gpus, not through `resources`.
_BUILTIN_RESOURCES = ("CPU", "GPU", "memory", "object_store_memory")


def require_ray(feature: str = "RayActors"):
    """The ``ray`` module, imported now.

    Raises
    ------
    MissingExtraError
        Ray is not installed: "``feature`` requires ray. Run
        ``pip install 'cod_monitor[ray]'``."
    """
    MissingExtraError.check(feature, "ray", "ray")
    import ray

    return ray


def ray_device(device, *, num_gpus: float = 1.0, owner: str = "RayActors") -> tuple[str, float]:
    """What an entry of ``devices`` asks of Ray: its kind and its GPUs.

    Parameters
    ----------
    device : str
        ``'cpu'`` (an actor without GPU) or ``'cuda'`` (an actor with ``num_gpus``
        GPUs; Ray chooses which, on a node that has them).
    num_gpus : float, default 1
        GPUs of a ``'cuda'`` actor (fractions share a GPU between actors).
    owner : str
        Named in the error.

    Returns
    -------
    kind : {'cpu', 'cuda'}
    num_gpus : float

    Raises
    ------
    ParameterError
        Any other value, a GPU index among them: on Ray, Ray picks the GPU.

    Examples
    --------
    >>> ray_device("cuda", num_gpus=2)
    ('cuda', 2.0)
    """
    name = device.strip().lower() if isinstance(device, str) else None
    if name == "cpu":
        return "cpu", 0.0
    if name == "cuda":
        return "cuda", float(num_gpus)
    raise invalid(owner, "devices", "a sequence of 'cpu' or 'cuda' entries", device,
                  "On Ray an entry is one actor and Ray chooses its GPUs: give 'cuda' (an "
                  "actor with num_gpus GPUs, ray_num_gpus in PoolConfig) instead of a GPU "
                  "index, or 'cpu'.")


def check_ray_resources(owner: str, resources, name: str = "resources") -> dict | None:
    """Custom Ray resources of every actor, checked: ``None`` or a mapping of resource
    name to a positive amount.

    Raises
    ------
    ParameterError
        Anything else, or one of Ray's own resources (``CPU``, ``GPU``, ...), which
        have their own parameters.

    Examples
    --------
    >>> check_ray_resources("RayActors", {"eval_gpu": 1})
    {'eval_gpu': 1.0}
    """
    if resources is None:
        return None
    expected = "None or a mapping of custom resource name to a positive amount"
    if not isinstance(resources, Mapping):
        raise invalid(owner, name, expected, resources,
                      "Pin actors to the evaluation nodes with e.g. {'eval_gpu': 1}.")
    out = {}
    for key, amount in resources.items():
        if not isinstance(key, str) or not key:
            raise invalid(owner, name, expected, dict(resources))
        if key in _BUILTIN_RESOURCES:
            raise invalid(owner, name, f"{expected}, without Ray's own {key!r}", dict(resources),
                          "GPUs per actor come from num_gpus (ray_num_gpus in PoolConfig) and "
                          "'cpu'/'cuda' devices; keep resources for the custom resource of "
                          "the evaluation nodes.")
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not (
                math.isfinite(amount) and amount > 0):
            raise invalid(owner, name, expected, dict(resources))
        out[key] = float(amount)
    return out


def check_ray_address(owner: str, address, name: str = "address") -> str | None:
    """``None``, ``'auto'`` or a non-empty address string.

    Raises
    ------
    ParameterError
        Anything else.
    """
    if address is None or (isinstance(address, str) and address.strip()):
        return address
    raise invalid(owner, name, "None, 'auto' or a Ray address such as 'ray://head:10001'",
                  address)


class _EvalActor:
    """What runs in an evaluation actor (Ray wraps it with ``ray.remote`` in
    :meth:`RayActors.open`): the environment and niceness of a worker, a shared
    filesystem check, and :func:`~cod_monitor.runtime.worker.run_job` per job."""

    def __init__(self, job_fn, env: dict, nice: int | str,
                 probe: tuple[str, str, str] | None):
        os.environ.update(env)  # first: a CPU actor hides the GPUs before any CUDA import
        lower_process_priority(nice)
        self._job_fn = job_fn
        self._probe = probe
        self._fn = None

    def ready(self) -> tuple:
        """``("ready", pid, node_id)``, or why this actor cannot take jobs."""
        import ray

        node = ray.get_runtime_context().get_node_id()
        if self._probe is not None:
            problem = _probe_problem(*self._probe, node=node)
            if problem is not None:
                return ("unusable", problem)
        try:
            self._fn = resolve_job_fn(self._job_fn)
        except BaseException:
            return ("dead", traceback.format_exc())
        return ("ready", os.getpid(), node)

    def run(self, job) -> tuple:
        """One job: the message of :func:`~cod_monitor.runtime.worker.run_job`."""
        return run_job(self._fn, job)


def _probe_problem(shared_dir: str, path: str, token: str, *, node: str) -> str | None:
    """Why the probe file ``path`` does not read ``token`` on this node, or ``None``."""
    try:
        found = Path(path).read_text()
    except OSError as exc:
        seen = f"cannot be read there ({type(exc).__name__}: {exc.strerror or exc})"
    else:
        if found == token:
            return None
        seen = "holds another token there (a different directory of the same name)"
    import ray

    where = f"Ray node {node[:8]} ({ray.util.get_node_ip_address()})"
    return (f"the snapshot directory {shared_dir} is not shared with {where}: the probe file "
            f"{path}, written by the monitor process, {seen}. Evaluation actors read "
            f"snapshots at the path the monitor writes them to: put the monitor's out_dir "
            f"on a filesystem that every evaluation node mounts at the same path (NFS, "
            f"Lustre, GPFS), or use PoolConfig(backend='local').")


@dataclass(eq=False)
class RayWorker:
    """One evaluation slot of :class:`RayActors`: its actor and its calls in flight.

    Attributes
    ----------
    kind : {'cpu', 'cuda'}
    num_gpus : float
        GPUs of the actor.
    env : dict
        Environment variables set in the actor before anything runs in it.
    actor : ray.actor.ActorHandle or None
        None before the first start, and after the actor was given up for good.
    node_id : str or None
        Ray node of the actor, once it reported ready.
    """

    kind: str
    num_gpus: float
    env: dict
    actor: Any = None
    node_id: str | None = None
    _pid: int | None = None
    _started: bool = False
    _unusable: bool = False
    _lost: bool = False  # its last call failed because the actor was lost
    _calls: dict = field(default_factory=dict)  # ObjectRef -> ("ready",) | ("run", job_id)
    _events: list = field(default_factory=list)  # events found outside wait()
    _ask_again: float | None = None  # when to ask a restarting actor again
    _waiting_since: float | None = None  # started, not ready yet
    _warned: bool = False  # about a placement that takes long

    @property
    def device(self) -> str:
        """``'ray:cpu'`` or ``'ray:cuda'``, with ``@<node id prefix>`` once placed."""
        where = f"@{self.node_id[:8]}" if self.node_id else ""
        return f"ray:{self.kind}{where}"

    @property
    def started(self) -> bool:
        """Started and not stopped since."""
        return self._started

    @property
    def pid(self) -> int | None:
        """Process id of the actor on its node, once it reported ready."""
        return self._pid

    @property
    def exitcode(self) -> int | None:
        """Always ``None``: Ray does not report an actor's exit code."""
        return None


class RayActors:
    """Worker backend: one Ray actor per evaluation slot (see the module docstring).

    A :class:`~cod_monitor.runtime.backend.WorkerBackend`.

    Parameters
    ----------
    job_fn : callable, str or None
        What the actors run (see :func:`~cod_monitor.runtime.worker.resolve_job_fn`);
        a callable must pickle, a ``'module:function'`` str must import on the
        evaluation nodes.
    address : str, optional
        The Ray cluster: ``None`` (a local Ray, or the connection this process already
        has, or ``RAY_ADDRESS``), ``'auto'`` (the cluster of ``ray start`` on this
        machine) or an address.
    resources : dict, optional
        Custom resources of every actor, e.g. ``{"eval_gpu": 1}`` to pin actors to
        the evaluation nodes.
    num_gpus : float, default 1
        GPUs of each ``'cuda'`` actor.
    num_cpus : float, default 1
        CPUs each actor holds on its node.
    shared_dir : path, optional
        A directory the actors must read as the monitor sees it (the snapshot
        directory): checked with a probe file when the pool opens.
    max_restarts : int, default -1
        Restarts of an actor by Ray (-1: unlimited). Once they are spent, the next
        start creates a new actor.
    nice : int or 'idle', default 'idle'
        Niceness added to CPU actors, or ``'idle'`` (``SCHED_IDLE``; see
        :func:`~cod_monitor.runtime.priority.lower_process_priority`).
    runtime_env : dict, optional
        Ray ``runtime_env`` of the actors (e.g. ``{"env_vars": {...}}``).
    init_kwargs : dict, optional
        More keyword arguments of :func:`ray.init` when this backend connects.

    Raises
    ------
    ParameterError
        An invalid value among them.
    """

    def __init__(self, job_fn: Callable | str | None = None, *, address: str | None = None,
                 resources: Mapping[str, float] | None = None, num_gpus: float = 1.0,
                 num_cpus: float = 1.0, shared_dir=None, max_restarts: int = -1,
                 nice: int | str = "idle", runtime_env: dict | None = None,
                 init_kwargs: dict | None = None):
        owner = "RayActors"
        self.job_fn = job_fn
        self.address = check_ray_address(owner, address)
        self.resources = check_ray_resources(owner, resources)
        self.num_gpus = check_real(owner, "num_gpus", num_gpus, 0)
        self.num_cpus = check_real(owner, "num_cpus", num_cpus, 0, closed="left")
        self.shared_dir = None if shared_dir is None else os.fspath(shared_dir)
        self.max_restarts = check_int(owner, "max_restarts", max_restarts, -1)
        self.nice = check_worker_priority(owner, "nice", nice)
        self.runtime_env = runtime_env
        self.init_kwargs = dict(init_kwargs or {})
        self._ray = None
        self._actor_class = None
        self._owns_ray = False
        self._probe: tuple[str, str, str] | None = None
        self._handles: list[RayWorker] = []
        self._woken = threading.Event()

    # ------------------------------------------------------------------ the slots
    def worker(self, device, *, cpu_threads: int | None = None, env: dict | None = None,
               owner: str = "RayActors") -> RayWorker:
        """The handle of an actor slot on ``device`` (see :func:`ray_device`).

        Raises
        ------
        ParameterError
            A device other than ``'cpu'`` and ``'cuda'``.
        """
        kind, gpus = ray_device(device, num_gpus=self.num_gpus, owner=owner)
        # a CPU actor hides the node's GPUs, as a local CPU worker does; a GPU actor
        # keeps the CUDA_VISIBLE_DEVICES that Ray sets for the GPUs it picked
        base = device_env("cpu")[1] if kind == "cpu" else {"COD_MONITOR_DEVICE": "cuda"}
        handle = RayWorker(kind, gpus, worker_env(base, cpu_threads=cpu_threads, env=env))
        self._handles.append(handle)
        return handle

    def open(self) -> None:
        """Connect to Ray (see ``address``) and write the shared-filesystem probe;
        idempotent.

        Raises
        ------
        MissingExtraError
            Ray is not installed.
        ConnectionError
            The cluster at ``address`` cannot be reached (Ray's error).
        OSError
            The probe cannot be written in ``shared_dir``.
        """
        if self._actor_class is not None:
            return
        ray = require_ray()
        if ray.is_initialized():
            logger.debug("RayActors uses this process's Ray connection")
        else:
            kwargs = dict(self.init_kwargs)
            address = self.address
            if address is None and not os.environ.get("RAY_ADDRESS"):
                address = "local"  # never join a cluster by accident
                kwargs.setdefault("include_dashboard", False)
            t0 = time.perf_counter()
            ray.init(address=address, **kwargs)
            self._owns_ray = True
            logger.info("RayActors connected to Ray (%s) in %.1fs", address or "RAY_ADDRESS",
                        time.perf_counter() - t0)
        self._ray = ray  # from here on, close() releases what open() took
        self._warn_if_unplaceable(ray)
        if self.shared_dir is not None:
            token = uuid.uuid4().hex
            path = os.path.join(self.shared_dir, PROBE_PREFIX + token)
            with open(path, "w") as f:  # closed before any actor opens it (NFS close-to-open)
                f.write(token)
            self._probe = (self.shared_dir, path, token)
        self._actor_class = ray.remote(_EvalActor)

    def _needs(self, h: RayWorker) -> dict:
        """The resources the actor of ``h`` asks Ray for (those above 0)."""
        need = {"CPU": self.num_cpus, "GPU": h.num_gpus, **(self.resources or {})}
        return {k: v for k, v in need.items() if v}

    def _asks(self, h: RayWorker) -> str:
        return ", ".join(f"{k}: {v:g}" for k, v in self._needs(h).items())

    def _warn_if_unplaceable(self, ray) -> None:
        """Warn when no node of the cluster offers a resource the actors ask for (an
        autoscaler may still add one: the actors wait)."""
        try:
            total = ray.cluster_resources()
        except Exception:  # pragma: no cover - e.g. a Ray client without the state API
            return
        for h in self._handles:
            short = {k: v for k, v in self._needs(h).items() if total.get(k, 0.0) < v}
            if short:
                logger.warning(
                    "No node of the Ray cluster offers what an evaluation actor on %s asks "
                    "for (%s; the cluster has %s): it waits until a node that does joins. "
                    "Start the evaluation nodes with e.g. `ray start --num-gpus=8 "
                    "--resources='{\"eval_gpu\": 8}'`, or change devices/resources.",
                    h.device, self._asks(h),
                    {k: total.get(k, 0.0) for k in short})
                return

    def start(self, h: RayWorker) -> None:
        """Create the slot's actor, or ask the one Ray restarted, whether it is ready."""
        h._started, h._unusable, h._lost, h._ask_again = True, False, False, None
        h._waiting_since, h._warned = time.monotonic(), False
        h._calls.clear()
        h._events.clear()
        if h.actor is None:
            options = {"num_cpus": self.num_cpus, "num_gpus": h.num_gpus,
                       "max_restarts": self.max_restarts, "max_task_retries": 0}
            if self.resources:
                options["resources"] = dict(self.resources)
            if self.runtime_env:
                options["runtime_env"] = self.runtime_env
            try:
                h.actor = self._actor_class.options(**options).remote(
                    self.job_fn, h.env, self.nice if h.kind == "cpu" else 0, self._probe)
            except Exception:  # e.g. a job function that does not pickle
                h._events += [("dead", traceback.format_exc()), ("exit", "the actor was not created")]
                return
        self._ask(h)

    def send(self, h: RayWorker, job) -> None:
        """Run ``job`` on the slot's actor; raises when the job does not serialize."""
        h._calls[h.actor.run.remote(job)] = ("run", job.job_id)

    def cpu_waits(self, h: RayWorker) -> dict[int, float]:
        """Empty: an actor's threads may run on another node (no time is discounted)."""
        return {}

    def stop(self, h: RayWorker, *, kill: bool) -> None:
        """End the slot's actor incarnation; idempotent.

        ``kill``: ``ray.kill`` with a restart (the pool starts the slot again and gets
        the restarted actor), abandoning its job; otherwise, and for an actor that
        cannot run here, the actor ends for good.
        """
        h._started, h._pid = False, None
        h._calls.clear()
        h._events.clear()
        if h.actor is None:
            return
        for_good = not kill or h._unusable
        lost, h._lost = h._lost, False
        if lost and not for_good:
            # its process is gone and Ray is restarting it: a kill now would only kill
            # the new incarnation (a second restart, ~2 s). Were it still alive (a
            # network split), a job sent to it would wait behind the old one and the
            # pool's time limit would kill it then.
            return
        try:
            self._ray.kill(h.actor, no_restart=for_good)
        except Exception:  # pragma: no cover - already gone
            logger.debug("ray.kill of an evaluation actor failed", exc_info=True)
        if for_good:
            h.actor, h.node_id = None, None

    def wake(self) -> None:
        """Make a :meth:`wait` in progress return now (thread-safe)."""
        self._woken.set()

    def close(self) -> None:
        """End every actor, remove the probe, and shut down a Ray started here; idempotent."""
        if self._ray is None:
            return
        for h in self._handles:
            if h.actor is not None:
                try:
                    self._ray.kill(h.actor, no_restart=True)
                except Exception:  # pragma: no cover - already gone
                    pass
                h.actor, h.node_id, h._started = None, None, False
        if self._probe is not None:
            try:
                os.remove(self._probe[1])
            except OSError:
                pass
            self._probe = None
        if self._owns_ray:
            self._ray.shutdown()
            self._owns_ray = False
        self._ray, self._actor_class = None, None

    # ------------------------------------------------------------------ events
    def wait(self, handles, timeout: float) -> list[tuple[RayWorker, tuple]]:
        """Events of the started ``handles``, waiting up to ``timeout`` seconds or a
        :meth:`wake` (see :mod:`cod_monitor.runtime.backend`)."""
        end = time.monotonic() + timeout
        events: list[tuple[RayWorker, tuple]] = []
        while True:
            now = time.monotonic()
            for h in handles:
                if h._events:
                    events += [(h, e) for e in h._events]
                    h._events.clear()
                if h._started and h._ask_again is not None and now >= h._ask_again:
                    self._ask(h)
            self._warn_unplaced(handles, now)
            calls = {ref: h for h in handles for ref in h._calls}
            left = max(0.0, end - now)
            if calls and not events:
                done, _ = self._ray.wait(list(calls), num_returns=1, timeout=min(_POLL_S, left))
                if done:
                    done, _ = self._ray.wait(list(calls), num_returns=len(calls), timeout=0)
                for ref in done:
                    events += [(calls[ref], e) for e in self._reply(calls[ref], ref)]
            elif not events:
                self._woken.wait(min(_POLL_S if any(h._ask_again for h in handles) else left, left))
            if events or self._woken.is_set() or time.monotonic() >= end:
                self._woken.clear()
                return events

    def _warn_unplaced(self, handles, now: float) -> None:
        for h in handles:
            if (h._started and not h._warned and h._waiting_since is not None
                    and now - h._waiting_since > PLACEMENT_WARNING_S):
                h._warned = True
                logger.warning("An evaluation actor on %s asking for %s has not started after "
                               "%.0f s: the Ray cluster has no node with those resources free "
                               "(see `ray status`); its jobs wait.", h.device, self._asks(h),
                               now - h._waiting_since)

    def _ask(self, h: RayWorker) -> None:
        h._ask_again = None
        h._calls[h.actor.ready.remote()] = ("ready",)

    def _reply(self, h: RayWorker, ref) -> list[tuple]:
        """The events of one finished call of ``h``'s actor."""
        call = h._calls.pop(ref)
        exceptions = self._ray.exceptions
        try:
            reply = self._ray.get(ref)
        except exceptions.ActorUnavailableError as exc:
            if call[0] == "ready":  # Ray is restarting it (after a kill or a lost node)
                h._ask_again = time.monotonic() + _READY_RETRY_S
                return []
            h._lost = True
            return [("exit", f"its Ray actor was lost ({_first_line(exc)})")]
        except exceptions.RayActorError as exc:  # dead for good: start a new actor next
            h.actor, h.node_id = None, None
            why = f"its Ray actor died ({_first_line(exc)})"
            return [("dead", why), ("exit", why)] if call[0] == "ready" else [("exit", why)]
        except exceptions.RayTaskError as exc:  # the call itself failed, e.g. its result
            if call[0] == "run":
                return [("error", call[1], str(exc), 0.0)]
            return [("dead", str(exc)), ("exit", "the actor could not report ready")]
        except Exception as exc:  # an object or a node lost with the reply
            return [("exit", f"its Ray actor's reply was lost ({_first_line(exc)})")]
        if reply[0] == "ready":
            h._pid, h.node_id, h._waiting_since = reply[1], reply[2], None
            return [("ready", reply[1])]
        if reply[0] == "unusable":
            h._unusable = True
            return [reply]
        if reply[0] == "dead":  # its job function cannot be loaded: a fresh actor next
            self._ray.kill(h.actor, no_restart=True)
            h.actor = None
            return [reply, ("exit", "its job function could not be loaded")]
        return [reply]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


class RayEvalPool(EvalPool):
    """An :class:`~cod_monitor.runtime.pool.EvalPool` whose workers are Ray actors.

    Same bookkeeping, parameters and guarantees as ``EvalPool`` (queue policy,
    retries, ``'auto'`` time limits, outcomes, ``stats``), over
    :class:`RayActors` (see the module docstring for placement, restarts, the
    shared-filesystem check and the connection).

    Parameters
    ----------
    devices : sequence of str, default ('cpu',)
        One actor per entry: ``'cpu'`` or ``'cuda'`` (see :func:`ray_device`).
    job_fn : callable or str, optional
        As in ``EvalPool``; it must import on the evaluation nodes.
    address, resources, num_gpus, num_cpus, shared_dir, max_restarts, runtime_env, init_kwargs
        See :class:`RayActors`.
    **kwargs
        ``EvalPool`` parameters (``timeout``, ``max_retries``, ``queue_policy``,
        ``nice``, ``cpu_threads``, ``env``, ``on_outcome``, ...).

    Raises
    ------
    MissingExtraError
        Ray is not installed (``pip install 'cod_monitor[ray]'``).
    ParameterError
        An invalid parameter.

    Examples
    --------
    >>> pool = RayEvalPool(["cuda", "cuda"], address="auto",
    ...                    resources={"eval_gpu": 1})  # doctest: +SKIP
    >>> pool.submit(Job("10:gsm8k", "/shared/snap/10", "/shared/gsm8k.jsonl"))  # doctest: +SKIP
    >>> pool.close(timeout=600); [o.status for o in pool.poll()]  # doctest: +SKIP
    ['done']
    """

    def __init__(self, devices=("cpu",), *, job_fn: Callable | str | None = None,
                 address: str | None = None, resources: Mapping[str, float] | None = None,
                 num_gpus: float = 1.0, num_cpus: float = 1.0, shared_dir=None,
                 max_restarts: int = -1, runtime_env: dict | None = None,
                 init_kwargs: dict | None = None, nice: int | str = "idle", **kwargs):
        require_ray("RayEvalPool")
        backend = RayActors(job_fn, address=address, resources=resources, num_gpus=num_gpus,
                            num_cpus=num_cpus, shared_dir=shared_dir, max_restarts=max_restarts,
                            nice=nice, runtime_env=runtime_env, init_kwargs=init_kwargs)
        super().__init__(devices, backend=backend, nice=nice, **kwargs)
