"""The search-driver half of ``MlflowStore``: one MLflow run per restart search.

A mixin so that ``mlflow_store.py`` stays about the library; it calls MLflow
only through the store's helpers (``_log_metrics``, ``_log_params``,
``_log_bytes``, ``_download``, ``client``).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
import uuid
from collections.abc import Mapping
from typing import Any, Optional

from mlflow.entities import Metric, Param, RunTag

from ..interpreter.errors import NtptError
from .base import check_record, new_search_id
from .codec import encode, read_file

_SEARCH_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> MLflow params ``{"a.b": "value"}`` (values as text, cut to MLflow's 6000 chars).

    Example:
        >>> flatten({"lr": 0.1, "policy": {"window": 5}})
        {'lr': '0.1', 'policy.window': '5'}
    """
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)[:6000]
    return flat


def program_text(program: Mapping[str, Any]) -> str:
    """The program's listing (Params replaced by their values); the model source if it cannot be rebuilt.

    Example:
        >>> program_text({"source": "p = Param(2)\\n", "params": {"p": 1}})   # doctest: +SKIP
        'p = 1  # Param(2)\\n'
    """
    try:
        from ..interpreter.program import Program

        return Program.from_dict(program).listing()
    except (ImportError, NtptError) as exc:  # compiler absent or source no longer compiles: keep what we have
        params = json.dumps(program.get("params", {}), default=str)
        return f"# program listing unavailable ({type(exc).__name__}: {exc})\n# params: {params}\n{program.get('source', '')}"


class SearchLogging:
    """``start_search`` / ``log_restarts`` / ``finished_restarts`` / ``end_search`` on MLflow runs."""

    def _run(self, search_id: str) -> tuple[str, str]:
        """(run id, task) of a search; NtptError if the store has no such search."""
        if search_id not in self._runs:
            if not _SEARCH_ID.match(str(search_id)):
                raise NtptError(
                    f"a search id is 1-64 characters from [A-Za-z0-9_.-], but got {search_id!r}; "
                    "fix: pass such an id or None for a generated one"
                )
            where = f"tags.`ntpt.search_id` = '{search_id}' and tags.`ntpt.role` = 'search'"
            runs = self._search_all(self._ntpt_experiments(), where)
            if not runs:
                raise NtptError(
                    f"search {search_id!r} is not in store {self.uri}; fix: start it with start_search(task, config)"
                )
            self._runs[search_id] = (runs[0].info.run_id, runs[0].data.tags["ntpt.task"])
        return self._runs[search_id]

    def start_search(self, task: str, config: Mapping[str, Any], search_id: Optional[str] = None) -> str:
        if search_id is not None:
            try:
                run_id, found = self._run(search_id)
            except NtptError:
                if not _SEARCH_ID.match(str(search_id)):
                    raise
                run_id, found = "", ""
            if run_id:
                if found != task:
                    raise NtptError(
                        f"search {search_id!r} belongs to task {found!r}, not {task!r}; "
                        "fix: resume it with its own task or pass search_id=None for a new search"
                    )
                self.client.set_tag(run_id, "ntpt.status", "running")
                self.client.update_run(run_id, status="RUNNING")
                return search_id
        search_id = search_id or new_search_id()
        tags = {"ntpt.search_id": search_id, "ntpt.task": task, "ntpt.role": "search", "ntpt.status": "running",
                "mlflow.runName": f"search-{search_id[:8]}"}
        experiment_id = self._experiment(task)
        run_id = self.client.create_run(experiment_id, tags=tags).info.run_id
        self._log_params(run_id, flatten(config))
        self.client.log_text(run_id, json.dumps(dict(config), default=str, indent=2), "config.json")
        self._runs[search_id] = (run_id, task)
        self._children[search_id], self._child_experiment[search_id] = {}, experiment_id  # a new run has none
        return search_id

    def log_restarts(self, search_id: str, records: list[Mapping[str, Any]]) -> None:
        for record in records:
            check_record(record)
        if not records:
            return
        run_id, _ = self._run(search_id)
        # One blob per batch keeps the whole record (programs included) for resume;
        # the metrics are what the MLflow UI plots.
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:6]}.npz"
        self._log_bytes(run_id, encode([dict(r) for r in records]), "restarts", name)
        points = [
            (f"val_acc/restart_{r['index']}", acc, step)
            for r in records for step, acc in (r.get("trajectory") or [])
        ]
        self._log_metrics(run_id, points)
        for record in records:
            self._log_restart_run(search_id, record)

    def _restart_runs(self, search_id: str) -> dict[int, str]:
        """Restart index -> its child run under the search run (found once per search, then cached)."""
        if search_id not in self._children:
            run_id, _ = self._run(search_id)
            experiment_id = self.client.get_run(run_id).info.experiment_id
            found = self._search_all([experiment_id], f"tags.`mlflow.parentRunId` = '{run_id}'")
            self._children[search_id] = {
                int(run.data.tags["ntpt.restart"]): run.info.run_id for run in found if "ntpt.restart" in run.data.tags
            }
            self._child_experiment[search_id] = experiment_id
        return self._children[search_id]

    def _log_restart_run(self, search_id: str, record: Mapping[str, Any]) -> None:
        """One child run per restart, as Ray Tune's MLflow callback logs trials: metric ``val_acc`` by step.

        The MLflow UI nests these runs under the search run; selecting them charts
        every restart's validation curve on one plot. A restart logged again (a
        later batch of a resumed search) gets only the points past its last step.
        """
        index = int(record["index"])
        runs = self._restart_runs(search_id)
        points = [(int(step), float(acc)) for step, acc in (record.get("trajectory") or [])]
        params = []
        if index in runs:
            child = runs[index]
            last = max((m.step for m in self.client.get_metric_history(child, "val_acc")), default=None)
            points = [(step, acc) for step, acc in points if last is None or step > last]
        else:
            run_id, task = self._run(search_id)
            tags = {"mlflow.parentRunId": run_id, "ntpt.role": "restart", "ntpt.restart": str(index),
                    "ntpt.search": search_id, "ntpt.task": task}
            experiment_id = self._child_experiment[search_id]
            child = self.client.create_run(experiment_id, run_name=f"restart-{index}", tags=tags).info.run_id
            runs[index] = child
            params = [Param("seed", str(record.get("seed")))]
        status, jump = str(record.get("status", "")), record.get("jump_step")
        now = int(time.time() * 1000)
        metrics = [Metric("val_acc", acc, now, step) for step, acc in points]
        tags = [RunTag("ntpt.status", status), RunTag("ntpt.jump_step", "" if jump is None else str(jump))]
        for start in range(0, max(len(metrics), 1), 1000):  # MLflow's limit on metrics per log_batch call
            first = start == 0
            self.client.log_batch(child, metrics=metrics[start:start + 1000], params=params if first else [],
                                  tags=tags if first else [])
        self.client.set_terminated(child, "FAILED" if status == "failed" else "FINISHED")

    def finished_restarts(self, search_id: str) -> dict[int, dict[str, Any]]:
        run_id, _ = self._run(search_id)
        if not self.client.list_artifacts(run_id, "restarts"):
            return {}
        found: dict[int, dict[str, Any]] = {}
        with tempfile.TemporaryDirectory() as tmp:
            folder = self.client.download_artifacts(run_id, "restarts", tmp)
            for filename in sorted(os.listdir(folder)):  # names start with a timestamp: later batches win
                path = os.path.join(folder, filename)
                for record in read_file(path, f"restart records of search {search_id!r} ({filename})"):
                    found[int(record["index"])] = record
        return found

    def end_search(self, search_id: str, summary: Mapping[str, Any], winner: Optional[Mapping[str, Any]]) -> None:
        run_id, task = self._run(search_id)
        self.client.log_text(run_id, json.dumps(dict(summary), default=str, indent=2), "summary.json")
        numbers = {k: v for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        self._log_metrics(run_id, [(f"summary/{k}", v, 0) for k, v in numbers.items()])
        index = None
        if winner:
            index = int(winner["index"]) if "index" in winner else None
            self._log_bytes(run_id, encode(dict(winner)), "", "winner.npz")
            if winner.get("program"):
                self.client.log_text(run_id, program_text(winner["program"]), "program.txt")
            self.client.set_tag(run_id, "ntpt.winner", "" if index is None else str(index))
            child = None if index is None else self._restart_runs(search_id).get(index)
            if child is not None:
                self.client.set_tag(child, "ntpt.winner", "true")
                self.client.set_tag(child, "mlflow.runName", f"restart-{index} (winner)")
        png = self._plot(task, self.finished_restarts(search_id), index)
        self._log_bytes(run_id, png, "", "trajectories.png")
        self.client.set_tag(run_id, "ntpt.status", "finished")
        self.client.set_terminated(run_id, "FINISHED")

    def get_search(self, search_id: str) -> dict[str, Any]:
        run_id, task = self._run(search_id)
        run = self.client.get_run(run_id)
        base = run.info.artifact_uri
        names = {a.path for a in self.client.list_artifacts(run_id)}

        def load_json(name: str) -> Any:
            if name not in names:
                return None
            with open(self._download(f"{base}/{name}", f"{name} of search {search_id!r}")) as handle:
                return json.load(handle)

        winner = None
        if "winner.npz" in names:
            winner = read_file(self._download(f"{base}/winner.npz", f"winner of search {search_id!r}"),
                               f"winner of search {search_id!r}")
        return {
            "search_id": search_id, "task": task, "config": load_json("config.json"),
            "status": run.data.tags.get("ntpt.status", "running"), "summary": load_json("summary.json"),
            "winner": winner,
        }
