"""Workers as Ray actors: the only module of ntpt-dist that imports ray.

Each actor holds one :class:`~.worker.BlockWorker` (so one block of restart
slots on one device); the model travels as source + hypers and is compiled in
the actor; the training data is put in the object store once and shared.

Without an address a search starts a fresh single-node Ray of its own (never
one found through ``RAY_ADDRESS`` or the cluster ``ray start`` recorded), whose
processes listen on 127.0.0.1 only and try to reach no other host
(docs/security.md, "The local cluster"), and whose processes end with the
driver however it ends (``ray_reaper.py``). ``address="auto"``,
``"host:port"`` or ``"ray://host:10001"`` joins a cluster, which must answer
within seconds. A Ray session that is already initialised in this process (a
notebook, a test fixture, ``ray.cluster_utils.Cluster``) is reused and left
running. Never ``ray stop``: that kills every Ray process on the machine.
"""

from __future__ import annotations

import contextlib
import os
import socket
import warnings
from collections.abc import Iterator
from typing import Any, Optional
from unittest import mock
from urllib.parse import urlsplit

import ray
from ray._private import ray_constants
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError, WorkerCrashedError

from .. import config
from ..interpreter.errors import NtptError
from . import ray_reaper
from .backends import ActorLost
from .worker import Assignment, BlockWorker

LOOPBACK = "127.0.0.1"
JOIN_FIX = "start that cluster (ray start --head), pass the address of a live one, or leave the address out"
CONTROL = "control"  # the actors' concurrency group for calls that answer while a run call trains
NO_PROXY_HERE = "http://127.0.0.1:9"  # the discard port: a proxy that refuses every request, on loopback


def init_ray(address: Optional[str] = None, **kwargs: Any) -> bool:
    """Start or join Ray unless a session exists; returns whether this call started it.

    Args:
        address: ``None`` (or ``"local"``) for a fresh local Ray on 127.0.0.1;
            ``"auto"``, ``"host:port"`` or ``"ray://host:port"`` to join a cluster.
        kwargs: passed to ``ray.init`` (e.g. ``num_cpus``).

    Raises:
        NtptError: the local Ray did not come up on loopback, or nothing answers at ``address``
            within seconds (one line saying where the address came from).

    Example:
        >>> started = init_ray(num_cpus=2)   # doctest: +SKIP
    """
    if ray.is_initialized():
        return False
    config.set_telemetry_defaults()
    kwargs.setdefault("log_to_driver", True)
    kwargs.setdefault("logging_level", "warning")
    if address in (None, "local"):
        if config.RAY_ADDRESS.get():
            warnings.warn(
                f"RAY_ADDRESS={config.RAY_ADDRESS.get()} is set, but without an address a search starts a local "
                "Ray of its own; pass address='auto' (--address auto) to join that cluster instead", stacklevel=2,
            )
        _start_local(**kwargs)
    else:
        check_reachable(address)
        try:
            ray.init(address=address, **kwargs)
        except ConnectionError as exc:  # e.g. "auto" and no cluster on this machine
            raise NtptError(f"cannot join the Ray cluster at {address!r}: {_first_line(exc)}; fix: {JOIN_FIX}") from None
    return True


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail within seconds, in one line, if nothing answers at ``address`` (Ray itself retries for minutes).

    Raises:
        NtptError: nothing accepts a connection at the host and port the address resolves to.

    Example:
        >>> check_reachable("127.0.0.1:1")   # doctest: +SKIP
        Traceback (most recent call last):
        ntpt_dist.interpreter.errors.NtptError: no Ray cluster answers at 127.0.0.1:1 (address '127.0.0.1:1'): ...
    """
    target = _bootstrap_target(address)
    if target is None:
        return  # a form only Ray understands: it decides
    host, port, source = target
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise NtptError(
            f"no Ray cluster answers at {host}:{port} ({source}): {reason}; fix: {JOIN_FIX}"
        ) from None


def _bootstrap_target(address: str) -> Optional[tuple[str, int, str]]:
    """(host, port, where that came from) that ``ray.init(address)`` will connect to, when this can tell."""
    source = f"address {address!r}"
    if address == "auto":
        if config.RAY_ADDRESS.get() not in (None, "auto", "local"):
            address, source = config.RAY_ADDRESS.get(), "address 'auto' reads RAY_ADDRESS"
        else:
            read = getattr(getattr(ray._private, "utils", None), "read_ray_address", None)
            recorded = read() if read else None  # what the last `ray start` on this machine wrote
            if not recorded:
                return None  # Ray looks for a running cluster itself, and says so at once if none
            address, source = recorded, "address 'auto' reads the cluster `ray start` recorded on this machine"
    if "://" in address:
        parts = urlsplit(address)
        host, port = parts.hostname, parts.port or (10001 if parts.scheme == "ray" else None)
    else:
        host, _, port_text = address.rpartition(":")
        host, port = host.strip("[]"), int(port_text) if port_text.isdigit() else None
    return (host, port, source) if host and port else None


def _start_local(**kwargs: Any) -> None:
    """A single-node Ray whose processes all take 127.0.0.1 as the node's address, so they listen there only."""
    kwargs.setdefault("include_dashboard", False)
    kwargs.setdefault("_node_ip_address", LOOPBACK)
    marker = ray_reaper.new_token()
    env = {
        # Read by every process the cluster starts (they inherit this environment). With Ray's
        # cluster mode off a process takes 127.0.0.1 as its node's address instead of asking the
        # network for the host's outward one, and Ray binds its servers to the node's address.
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        # Ray renices its workers to 15; here they *are* the job, and at 15 any other process on the
        # machine starves them (measured: 3% of a core beside two busy processes).
        "RAY_worker_niceness": os.environ.get("RAY_worker_niceness", "0"),
        "RAY_USAGE_STATS_ENABLED": "0",
        **marker,  # which processes are this cluster's, for the reaper (ray_reaper.py)
        # Ray's dashboard process asks the cloud metadata addresses (169.254.169.254,
        # metadata.google.internal) which cloud it runs on even with usage statistics off
        # (ray/_common/usage/usage_lib.py: get_cluster_config_to_report runs before the flag is
        # checked), and no setting turns that off. Its requests go through this HTTP proxy, where
        # nothing listens, so they fail on loopback without a DNS lookup; loopback is exempt.
        **{name: NO_PROXY_HERE for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY")},
        **{name: "127.0.0.1,localhost,::1" for name in ("no_proxy", "NO_PROXY")},
    }
    # ray.init turns a node address of 127.0.0.1 into the host's outward address unless cluster mode
    # is off, and this process read that setting when it imported ray: turn it off for this call.
    with _environ(env), mock.patch.object(ray_constants, "ENABLE_RAY_CLUSTER", False, create=True):
        ray.init(address="local", **kwargs)  # a new cluster, never one found through RAY_ADDRESS or `ray start`
    ray_reaper.watch(marker)  # a driver killed before ray.shutdown leaves no agent behind
    node_ip = ray.util.get_node_ip_address()
    if node_ip != kwargs["_node_ip_address"]:
        ray.shutdown()
        raise NtptError(
            f"the local Ray came up on {node_ip}, not on {kwargs['_node_ip_address']}, so its servers would "
            f"listen beyond this machine (Ray {ray.__version__} ignored the node address); "
            "fix: start a cluster yourself (ray start --head --node-ip-address 127.0.0.1) and pass --address auto"
        )


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` while the block runs (what Ray's processes inherit), then as before."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def worker_env() -> dict[str, str]:
    """What every actor's environment says on telemetry, on this driver's cluster or a user's.

    The driver's own settings (ntpt_dist's defaults, unless the user set them) travel
    with each actor: on another node its environment is that node's, not the driver's.
    """
    return config.telemetry_settings()


class RayWorker:
    """The actor body: a BlockWorker plus where it runs (for records and fault tests)."""

    def __init__(self, label: str, threads: int, device: str, worker_kwargs: dict[str, Any], data: Any, val_data: Any,
                 library: Any):
        if worker_kwargs.get("block_factory") is None:  # real blocks: pin torch's thread pool
            import torch

            torch.set_num_threads(max(1, threads))
        self.where = f"{label}@{socket.gethostname()}:{os.getpid()}"
        self.worker = BlockWorker(name=self.where, device=device, data=data, val_data=val_data, library=library,
                                  **worker_kwargs)

    def run(self, assignments: list[Assignment], seconds: float) -> Any:
        self.worker.assign(assignments)
        return self.worker.run(seconds)  # a WorkerReport, its running restarts included

    def revoke(self, indices: list[int]) -> list[int]:
        # runs in the "control" concurrency group: on its own thread, beside a run call that is training
        return self.worker.revoke(indices)

    def info(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id(), "name": self.where,
                "env": {var.name: os.environ.get(var.name) for var in config.TELEMETRY}}


class RayBackend:
    """A pool of :class:`RayWorker` actors (see :class:`~.backends.Backend`).

    Args:
        worker_kwargs: :class:`BlockWorker` keyword arguments (``data``, ``val_data``
            and ``library`` go through the object store once).
        address: Ray address (see :func:`init_ray`).
        cpus_per_actor, gpus_per_actor: resources each actor reserves; with a GPU
            the block trains on ``cuda`` (unless ``worker_kwargs["device"]`` says otherwise).
        init_kwargs: extra ``ray.init`` arguments when Ray is started here.
    """

    def __init__(self, worker_kwargs: dict[str, Any], address: Optional[str] = None, cpus_per_actor: float = 1,
                 gpus_per_actor: float = 0, **init_kwargs: Any):
        self.started_ray = init_ray(address, **init_kwargs)
        kwargs = dict(worker_kwargs)
        for key in ("data", "val_data", "library"):
            if kwargs.get(key) is not None:
                kwargs[key] = ray.put(kwargs[key])
        self._kwargs = kwargs
        self.cpus = cpus_per_actor
        self.gpus = gpus_per_actor
        self.device = kwargs.pop("device", None) or ("cuda" if gpus_per_actor > 0 else "cpu")
        # max_restarts=0: the driver, not Ray, decides what a dead actor's restarts become
        # run calls execute one at a time in the default group; a revoke must not wait behind them
        self._cls = ray.remote(num_cpus=cpus_per_actor, num_gpus=gpus_per_actor, max_restarts=0,
                               concurrency_groups={CONTROL: 1}, runtime_env={"env_vars": worker_env()})(RayWorker)
        self._actors: dict[int, Any] = {}
        self._n = 0

    def capacity(self) -> int:
        """How many actors the cluster's resources fit (at least 1)."""
        res = ray.cluster_resources()
        if self.gpus > 0:
            return max(1, int(res.get("GPU", 0) // self.gpus))
        return max(1, int(res.get("CPU", 1) // max(self.cpus, 1e-9)))

    def spawn(self) -> int:
        handle = self._n
        self._n += 1
        kwargs = dict(self._kwargs)
        # ObjectRefs nested in a dict are not resolved by Ray: top-level arguments are
        refs = [kwargs.pop(key, None) for key in ("data", "val_data", "library")]
        threads = int(max(1, self.cpus))
        self._actors[handle] = self._cls.remote(f"actor-{handle}", threads, self.device, kwargs, *refs)
        return handle

    def submit(self, handle: int, assignments: list[Assignment], seconds: float) -> Any:
        return self._actors[handle].run.remote(assignments, seconds)

    def revoke(self, handle: int, indices: list[int]) -> Any:
        return self._actors[handle].revoke.options(concurrency_group=CONTROL).remote(indices)

    def wait(self, tickets: list[Any], timeout: float) -> list[tuple[Any, Any]]:
        if not tickets:
            return []
        ready, _ = ray.wait(tickets, num_returns=1, timeout=timeout)
        out = []
        for ref in ready:
            try:
                out.append((ref, ray.get(ref, timeout=60)))
            except (RayActorError, WorkerCrashedError, GetTimeoutError) as e:
                out.append((ref, ActorLost(_first_line(e))))
            except RayTaskError as e:  # BlockWorker.run catches restart errors; this is a bug or OOM
                out.append((ref, ActorLost(_first_line(e))))
        return out

    def name(self, handle: int) -> str:
        return f"actor-{handle}"

    def actor(self, handle: int) -> Any:
        """The Ray actor handle (tests kill it with ``ray.kill``)."""
        return self._actors[handle]

    def kill(self, handle: int) -> None:
        actor = self._actors.pop(handle, None)
        if actor is not None:
            ray.kill(actor, no_restart=True)

    def shutdown(self) -> None:
        for handle in list(self._actors):
            self.kill(handle)
        if self.started_ray:
            ray.shutdown()


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:500]
