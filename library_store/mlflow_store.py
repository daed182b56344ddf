"""``LibraryStore`` on MLflow: tracking for searches, the model registry for the library.

Layout (see docs/store.md):

- experiment ``ntpt/<task>``; one run per search (tag ``ntpt.search_id``):
  config as params and ``config.json``, metrics ``val_acc/restart_<k>``
  (step = training step), restart records as blobs under ``restarts/``, at the
  end ``summary.json``, ``winner.npz``, ``program.txt``, ``trajectories.png``,
  and merge decisions under ``merges/`` plus ``ntpt.merge.*`` tags;
- registered model ``ntpt.<net>`` per ``@Learn`` network: one version per
  library version (weights as ``net.npz`` in the writing run's artifacts,
  lineage as version tags), alias ``champion`` = current library;
- registered model ``ntpt.program.<task>``: versions are pyfunc models of the
  task's programs, alias ``champion`` = its best program;
- a task's kept validation data and the evaluation series (experiment
  ``ntpt.lifetimes``): see ``mlflow_history.py``.

Merges are serialised by a file lock next to an sqlite database, and on any
other backend by a lock taken by creating the registered model
``ntpt.lock.merge``; the champion alias move is also a compare-and-set (see
``base.merge``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any, Optional

# Each artifact read is one small file: MLflow's per-download progress bar is noise.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import mlflow  # noqa: E402 - after the environment default above
from mlflow.entities import Metric, Param  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

from ..interpreter.errors import NtptError
from ..interpreter.netfn import check_stored_net
from .base import CHAMPION, LibraryStore, NetState, NetVersion, ProgramRecord
from .codec import encode, read_file
from .mlflow_history import TaskHistory
from .mlflow_plots import trajectories_png
from .mlflow_search import SearchLogging
from .naming import check_net_name, check_stored_task, equals_filter, net_model, program_model, task_folder
from .opening import check_exists, check_reachable
from .records import program_record
from .sqlite_create import open_client

KIND = "ntpt.kind"
LOCK = "ntpt.lock.merge"
_BATCH = 1000  # MLflow's limit on metrics per log_batch call


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


class MlflowStore(SearchLogging, TaskHistory, LibraryStore):
    """A store on an MLflow tracking server or database.

    Args:
        uri: a tracking URI: ``sqlite:///<dir>/mlflow.db`` (artifacts go to
            ``<dir>/artifacts`` unless ``artifact_root`` says otherwise) or
            ``http://host:port`` of an ``mlflow server`` (artifacts proxied by it).
        artifact_root: local folder for artifacts of new experiments (sqlite only).
        create: False to open only a store that exists (an sqlite database that is not
            there is an :class:`NtptError`, and no folder is made), as read-only commands do.

    Raises:
        NtptError: a server URI that does not answer within 5 s; with ``create=False``,
            an sqlite database that does not exist.

    Example:
        >>> store = MlflowStore("sqlite:////tmp/ntpt-store/mlflow.db")      # doctest: +SKIP
        >>> store.load_library()                                           # doctest: +SKIP
    """

    lock_ttl_s: float = 1800.0  # a registry lock older than this is treated as left by a dead holder
    lock_timeout_s: float = 3600.0  # how long a merge waits for the registry lock

    def __init__(self, uri: str, artifact_root: Optional[str] = None, *, create: bool = True) -> None:
        self.uri = uri
        self._db_path: Optional[str] = None
        check_reachable(uri)  # a server that does not answer: one line now, not minutes of MLflow retries
        if not create:
            check_exists(uri)
        if uri.startswith("sqlite:///"):
            self._db_path = os.path.abspath(uri[len("sqlite:///"):])
            if create:
                os.makedirs(os.path.dirname(self._db_path), exist_ok=True)
            artifact_root = artifact_root or os.path.join(os.path.dirname(self._db_path), "artifacts")
        self._artifact_root = os.path.abspath(artifact_root) if artifact_root else None
        if self._artifact_root and create:
            os.makedirs(self._artifact_root, exist_ok=True)
        self.client = open_client(uri, self._db_path)  # a new database's tables: one process at a time
        self._thread_lock = threading.RLock()
        self._lock_depth = 0
        self._experiments: dict[str, str] = {}
        self._runs: dict[str, tuple[str, str]] = {}  # search id -> (run id, task)
        self._children: dict[str, dict[int, str]] = {}  # search id -> restart index -> child run id
        self._child_experiment: dict[str, str] = {}  # search id -> its experiment id
        self._home_runs: dict[str, str] = {}
        self._validation: dict[str, dict[str, Any]] = {}  # kept batches never change: read once
        self._series_runs: dict[str, str] = {}

    # ---- plumbing

    def _experiment(self, task: str) -> str:
        return self._experiment_named(f"ntpt/{task}", task_folder(task))  # one folder per task, never '..'

    def _experiment_named(self, name: str, folder: Optional[str] = None) -> str:
        if name in self._experiments:
            return self._experiments[name]
        found = self.client.get_experiment_by_name(name)
        if found is None:
            location = f"file://{self._artifact_root}/{folder or _slug(name)}" if self._artifact_root else None
            try:
                # The kind tag makes MLflow 3's UI open the runs table, not its GenAI overview.
                experiment_id = self.client.create_experiment(
                    name, artifact_location=location, tags={"mlflow.experimentKind": "custom_model_development"}
                )
            except MlflowException:  # another process created it first
                found = self.client.get_experiment_by_name(name)
                assert found is not None, f"experiment {name} neither created nor found"
                experiment_id = found.experiment_id
        else:
            experiment_id = found.experiment_id
        self._experiments[name] = experiment_id
        return experiment_id

    def _home_run(self, task: Optional[str], search_id: Optional[str]) -> str:
        """The run that holds artifacts written for ``search_id`` (or a per-task 'store' run)."""
        if search_id is not None:
            return self._run(search_id)[0]
        key = task or "library"
        if key not in self._home_runs:
            experiment_id = self._experiment(key)
            runs = self.client.search_runs([experiment_id], "tags.`ntpt.role` = 'store'", max_results=1)
            run = runs[0] if runs else self.client.create_run(
                experiment_id, run_name="store", tags={"ntpt.role": "store"}
            )
            self._home_runs[key] = run.info.run_id
        return self._home_runs[key]

    def _log_bytes(self, run_id: str, data: bytes, artifact_path: str, filename: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, filename)
            with open(path, "wb") as handle:
                handle.write(data)
            self.client.log_artifact(run_id, path, artifact_path or None)

    def _download(self, artifact_uri: str, what: str) -> str:
        """Download one artifact into a temporary folder; a missing one is an NtptError naming it."""
        tmp = tempfile.mkdtemp(prefix="ntpt-store-")
        try:
            return mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri, dst_path=tmp, tracking_uri=self.uri)
        except (MlflowException, OSError) as exc:
            raise NtptError(
                f"{what} is missing: cannot download {artifact_uri} ({type(exc).__name__}: {exc}); "
                "fix: restore the artifact store or point the alias at another version"
            ) from exc

    def _registered(self, name: str, kind: str, tags: Mapping[str, str]) -> None:
        try:
            self.client.create_registered_model(name, tags={KIND: kind, **tags})
        except MlflowException as exc:
            if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
                raise

    def _alias(self, name: str) -> Optional[int]:
        try:
            version = self.client.get_registered_model(name).aliases.get(CHAMPION)
        except MlflowException as exc:
            if "RESOURCE_DOES_NOT_EXIST" in str(exc.error_code):
                return None
            raise
        return None if version is None else int(version)

    def _versions(self, name: str) -> list[int]:
        found = self.client.search_model_versions(equals_filter("name", name))
        return sorted(int(v.version) for v in found)

    def _models(self, kind: str) -> list[Any]:
        models, token = [], None
        while True:
            page = self.client.search_registered_models("name LIKE 'ntpt.%'", max_results=1000, page_token=token)
            models += [m for m in page if m.tags.get(KIND) == kind]
            token = page.token
            if not token:
                return models

    # ---- library versions

    def add_net_version(
        self,
        name: str,
        net: NetState,
        *,
        task: Optional[str] = None,
        search_id: Optional[str] = None,
        parent: Optional[int] = None,
        tags: Optional[Mapping[str, str]] = None,
    ) -> int:
        check_net_name(name)  # before anything is written
        run_id = self._home_run(task, search_id)
        folder = f"nets/{_slug(name)}/{uuid.uuid4().hex[:12]}"
        self._log_bytes(run_id, encode(dict(net)), folder, "net.npz")
        source = f"{self.client.get_run(run_id).info.artifact_uri}/{folder}"
        self._registered(net_model(name), "net", {"ntpt.name": name})
        lineage = {"ntpt.task": task or "", "ntpt.search_id": search_id or "",
                   "ntpt.parent": "" if parent is None else str(parent), "ntpt.signature": str(net.get("signature", ""))}
        version = self.client.create_model_version(
            net_model(name), source, run_id=run_id, tags={**lineage, **{k: str(v) for k, v in (tags or {}).items()}}
        )
        return int(version.version)

    def _get_net_version(self, name: str, version: int) -> NetVersion:
        what = f"network {name!r} version {version} in store {self.uri}"
        try:
            found = self.client.get_model_version(net_model(name), str(version))
        except MlflowException as exc:
            raise NtptError(
                f"{what} does not exist (versions: {self.net_versions(name)}); fix: pass one of those or 'champion'"
            ) from exc
        path = self._download(f"{found.source}/net.npz", f"weights of {what}")
        tags = dict(found.tags)
        lineage = {k: tags.pop(k, "") for k in ("ntpt.task", "ntpt.search_id", "ntpt.parent", "ntpt.signature")}
        return NetVersion(
            name, version, check_stored_net(name, read_file(path, f"weights of {what}"), f"weights of {what}"),
            lineage["ntpt.task"] or None,
            lineage["ntpt.search_id"] or None, int(lineage["ntpt.parent"]) if lineage["ntpt.parent"] else None, tags,
        )

    def net_versions(self, name: str) -> list[int]:
        return self._versions(net_model(name))

    def champion_versions(self) -> dict[str, int]:
        return {m.tags["ntpt.name"]: int(m.aliases[CHAMPION]) for m in self._models("net") if CHAMPION in m.aliases}

    def _swap_champions(self, expected: Mapping[str, Optional[int]], new: Mapping[str, int]) -> bool:
        # Called under the merge lock, so no ntpt writer moves an alias in between; the
        # check still catches writers that bypass the lock (documented in docs/store.md).
        if any(self._alias(net_model(name)) != expected.get(name) for name in new):
            return False
        for name, version in new.items():
            self.client.set_registered_model_alias(net_model(name), CHAMPION, str(version))
        return True

    # ---- programs

    def add_program(
        self,
        task: str,
        program: Mapping[str, Any],
        *,
        val_acc: float,
        test_acc: Optional[float] = None,
        library_version: Optional[Mapping[str, int]] = None,
        search_id: Optional[str] = None,
        seed: Optional[int] = None,
        hypers: Optional[Mapping[str, Any]] = None,
        merge: Optional[Mapping[str, Any]] = None,
    ) -> int:
        record = {
            "task": task, "program": dict(program), "val_acc": float(val_acc),
            "test_acc": None if test_acc is None else float(test_acc), "library_version": dict(library_version or {}),
            "search_id": search_id, "seed": seed, "hypers": dict(hypers or {}), "merge": merge,
        }
        run_id = self._home_run(task, search_id)
        folder = f"programs/{uuid.uuid4().hex[:12]}"
        with tempfile.TemporaryDirectory() as tmp:
            blob = os.path.join(tmp, "program.npz")
            with open(blob, "wb") as handle:
                handle.write(encode(record))
            from .mlflow_pyfunc import save_program_model  # mlflow.pyfunc is a heavy import: only writers need it

            save_program_model(os.path.join(tmp, "model"), blob, {**(program.get("hypers") or {}), **(hypers or {})})
            self.client.log_artifacts(run_id, os.path.join(tmp, "model"), folder)
        self._registered(program_model(task), "program", {"ntpt.task": task})
        tags = {
            "ntpt.val_acc": f"{val_acc:.6f}", "ntpt.test_acc": "" if test_acc is None else f"{test_acc:.6f}",
            "ntpt.library_version": json.dumps(dict(library_version or {}), sort_keys=True),
            "ntpt.search_id": search_id or "", "ntpt.seed": "" if seed is None else str(seed),
            "ntpt.merge": "" if not merge else ("accepted" if merge.get("accepted") else "rejected"),
        }
        source = f"{self.client.get_run(run_id).info.artifact_uri}/{folder}"
        return int(self.client.create_model_version(program_model(task), source, run_id=run_id, tags=tags).version)

    def _get_program(self, task: str, version: int) -> ProgramRecord:
        what = f"program of task {task!r} version {version} in store {self.uri}"
        try:
            found = self.client.get_model_version(program_model(task), str(version))
        except MlflowException as exc:
            raise NtptError(
                f"{what} does not exist (versions: {self.program_versions(task)}); fix: pass one of those or 'champion'"
            ) from exc
        uri = f"{found.source}/artifacts/program.npz"  # where save_program_model puts the blob
        record = read_file(self._download(uri, what), f"{what} ({uri})")
        parsed = program_record(task, version, record, what)
        check_stored_task(record.get("task"), task, what)
        return parsed

    def program_versions(self, task: str) -> list[int]:
        return self._versions(program_model(task))

    def program_champion(self, task: str) -> Optional[int]:
        return self._alias(program_model(task))

    def set_program_champion(self, task: str, version: int) -> None:
        if version not in self.program_versions(task):
            raise NtptError(
                f"task {task!r} has no program version {version} in store {self.uri} "
                f"(versions: {self.program_versions(task)}); fix: pass one of those"
            )
        self.client.set_registered_model_alias(program_model(task), CHAMPION, str(version))

    def tasks(self) -> list[str]:
        return sorted(m.tags["ntpt.task"] for m in self._models("program") if CHAMPION in m.aliases)

    # ---- merges

    @contextlib.contextmanager
    def _merge_lock(self) -> Iterator[None]:
        # The thread lock orders this process's threads; the file lock (sqlite) or the
        # registry lock (any other backend) orders processes and machines.
        with self._thread_lock:
            self._lock_depth += 1
            try:
                if self._lock_depth > 1:  # re-entered (set_champion inside a merge): already held
                    yield
                else:
                    with self._file_lock() if self._db_path else self._registry_lock():
                        yield
            finally:
                self._lock_depth -= 1

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        """flock on ``<db>.merge.lock``: released by the kernel even if the holder dies."""
        with open(f"{self._db_path}.merge.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _registry_lock(self) -> Iterator[None]:
        """A lock held by creating the registered model ``ntpt.lock.merge``.

        Creating a registered model is atomic on every MLflow backend (its name is
        the primary key), so at most one client holds it. A holder that dies leaves
        it behind; others break it once its ``ntpt.lock.expires`` tag has passed.
        """
        token = uuid.uuid4().hex
        deadline = time.time() + self.lock_timeout_s
        while True:
            expires = f"{time.time() + self.lock_ttl_s:.3f}"
            try:
                self.client.create_registered_model(
                    LOCK, tags={KIND: "lock", "ntpt.lock.owner": token, "ntpt.lock.expires": expires},
                    description="held by ntpt-dist while a merge moves champion aliases",
                )
                break
            except MlflowException as exc:
                if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
                    raise
            self._break_stale_lock()
            if time.time() > deadline:
                raise NtptError(
                    f"could not take the merge lock {LOCK!r} on {self.uri} within {self.lock_timeout_s} s; "
                    "fix: wait for the other merge, or delete the registered model if its holder died"
                )
            time.sleep(0.1 + random.random() * 0.3)
        try:
            yield
        finally:
            with contextlib.suppress(MlflowException):
                if self.client.get_registered_model(LOCK).tags.get("ntpt.lock.owner") == token:
                    self.client.delete_registered_model(LOCK)

    def _break_stale_lock(self) -> None:
        try:
            held = self.client.get_registered_model(LOCK)
        except MlflowException:
            return
        if float(held.tags.get("ntpt.lock.expires", "inf")) < time.time():
            with contextlib.suppress(MlflowException):
                self.client.delete_registered_model(LOCK)

    def _record_merge(self, decision: Mapping[str, Any], search_id: Optional[str]) -> None:
        run_id = self._home_run(decision["task"], search_id)
        stamp = f"{time.time_ns()}-{uuid.uuid4().hex[:6]}"
        self.client.log_dict(run_id, {**dict(decision), "search_id": search_id, "stamp": stamp}, f"merges/{stamp}.json")
        new = decision.get("new_task", {})
        tags = {
            "ntpt.merge.accepted": str(bool(decision["accepted"])).lower(), "ntpt.merge.reason": decision["reason"],
            "ntpt.merge.before": f"{new.get('before', 0):.6f}", "ntpt.merge.after": f"{new.get('after', 0):.6f}",
            "ntpt.merge.regressions": ",".join(decision.get("regressions", [])),
            "ntpt.merge.reverse_transfer": json.dumps(decision.get("reverse_transfer", {})),
        }
        self.client.log_batch(run_id, tags=[mlflow.entities.RunTag(k, v[:5000]) for k, v in tags.items()])

    def merges(self, task: Optional[str] = None) -> list[dict[str, Any]]:
        experiments = [self._experiment(task)] if task else self._ntpt_experiments()
        found = []
        for run in self._search_all(experiments, "tags.`ntpt.merge.accepted` != ''"):
            with tempfile.TemporaryDirectory() as tmp:
                folder = self.client.download_artifacts(run.info.run_id, "merges", tmp)
                for filename in os.listdir(folder):
                    with open(os.path.join(folder, filename)) as handle:
                        found.append(json.load(handle))
        return sorted(found, key=lambda m: m["stamp"])

    def _ntpt_experiments(self) -> list[str]:
        return [e.experiment_id for e in self.client.search_experiments(filter_string="name LIKE 'ntpt/%'")]

    def _search_all(self, experiment_ids: list[str], filter_string: str) -> list[Any]:
        runs, token = [], None
        while experiment_ids:
            page = self.client.search_runs(experiment_ids, filter_string, max_results=1000, page_token=token)
            runs += list(page)
            token = page.token
            if not token:
                break
        return runs

    # ---- helpers for SearchLogging

    def _log_metrics(self, run_id: str, points: list[tuple[str, float, int]]) -> None:
        """Log (key, value, step) points in as few ``log_batch`` calls as MLflow allows."""
        now = int(time.time() * 1000)
        metrics = [Metric(key, float(value), now, int(step)) for key, value, step in points]
        for start in range(0, len(metrics), _BATCH):
            self.client.log_batch(run_id, metrics=metrics[start:start + _BATCH])

    def _log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        items = [Param(k, v) for k, v in params.items()]
        for start in range(0, len(items), 100):  # MLflow's limit on params per batch
            self.client.log_batch(run_id, params=items[start:start + 100])

    def _plot(self, task: str, records: Mapping[int, Mapping[str, Any]], winner: Optional[int]) -> bytes:
        return trajectories_png(task, records, winner)
