"""The task-history half of ``MlflowStore``: kept validation data and evaluation series.

A mixin (like ``mlflow_search.py``) calling MLflow only through the store's
helpers (``client``, ``_home_run``, ``_experiment_named``, ``_log_bytes``,
``_download``, ``_log_metrics``, ``_search_all``):

- a task's validation data: ``data/validation.npz`` (a codec blob) in the
  ``store`` run of experiment ``ntpt/<task>``, tags ``ntpt.validation`` and
  ``ntpt.validation.n``;
- experiment ``ntpt.lifetimes``, one run per evaluation series (run name = the
  series, tag ``ntpt.series``): metrics ``<split>_acc/<task>`` and
  ``library/<net>`` (the champion version) with step = the evaluation's step,
  so the UI draws each task's accuracy over a lifetime, and
  ``evaluations/<step>.json`` with the whole record.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from typing import Any, Optional

import numpy as np

from .codec import encode, read_file
from .naming import equals_filter
from .records import Evaluation

SERIES_EXPERIMENT = "ntpt.lifetimes"
VALIDATION = "data/validation.npz"


def _metric_slug(text: str) -> str:
    """``text`` in the characters MLflow allows in a metric name (``ADD2x2:top`` stays as it is)."""
    return re.sub(r"[^\w.\- :/]", "_", text)


class TaskHistory:
    """``_put_validation_data`` / ``validation_data`` / ``_add_evaluation`` / ``evaluations`` on MLflow."""

    client: Any
    uri: str
    _validation: dict[str, dict[str, Any]]
    _series_runs: dict[str, str]

    def _put_validation_data(self, task: str, batch: Mapping[str, Any]) -> None:
        run_id = self._home_run(task, None)
        folder, filename = os.path.split(VALIDATION)
        self._log_bytes(run_id, encode(dict(batch)), folder, filename)
        n = len(next(iter(batch.values()))) if batch else 0
        self.client.set_tag(run_id, "ntpt.validation", VALIDATION)
        self.client.set_tag(run_id, "ntpt.validation.n", str(n))

    def validation_data(self, task: str) -> Optional[dict[str, Any]]:
        if task not in self._validation:
            experiment = self.client.get_experiment_by_name(f"ntpt/{task}")  # a read creates nothing
            if experiment is None:
                return None
            runs = self.client.search_runs(
                [experiment.experiment_id], "tags.`ntpt.role` = 'store' and tags.`ntpt.validation` != ''", max_results=1
            )
            if not runs:
                return None
            what = f"validation data of task {task!r} in store {self.uri}"
            path = self._download(f"{runs[0].info.artifact_uri}/{VALIDATION}", what)
            self._validation[task] = read_file(path, what)
        return {k: np.array(v) for k, v in self._validation[task].items()}

    # ---- evaluations

    def _series_run(self, series: str) -> str:
        if series not in self._series_runs:
            experiment_id = self._experiment_named(SERIES_EXPERIMENT)
            runs = self.client.search_runs([experiment_id], equals_filter("tags.`ntpt.series`", series), max_results=1)
            run = runs[0] if runs else self.client.create_run(
                experiment_id, run_name=series, tags={"ntpt.role": "series", "ntpt.series": series}
            )
            self._series_runs[series] = run.info.run_id
        return self._series_runs[series]

    def _add_evaluation(self, evaluation: Evaluation) -> None:
        run_id = self._series_run(evaluation.series)
        self.client.log_dict(run_id, evaluation.to_dict(), f"evaluations/{evaluation.step:05d}.json")
        points = [(f"{evaluation.split}_acc/{_metric_slug(t)}", a, evaluation.step) for t, a in evaluation.accuracies.items()]
        points += [(f"library/{_metric_slug(n)}", v, evaluation.step) for n, v in evaluation.library_version.items()]
        self._log_metrics(run_id, points)
        self.client.set_terminated(run_id, "FINISHED")  # a series is complete after each step; later steps still log

    def evaluations(self, series: Optional[str] = None) -> list[Evaluation]:
        experiment = self.client.get_experiment_by_name(SERIES_EXPERIMENT)
        if experiment is None:
            return []
        where = "tags.`ntpt.role` = 'series'" + (f" and tags.`ntpt.series` = '{series}'" if series is not None else "")
        found = []
        for run in self._search_all([experiment.experiment_id], where):
            if not self.client.list_artifacts(run.info.run_id, "evaluations"):
                continue
            with tempfile.TemporaryDirectory() as tmp:
                folder = self.client.download_artifacts(run.info.run_id, "evaluations", tmp)
                for filename in os.listdir(folder):
                    with open(os.path.join(folder, filename)) as handle:
                        found.append(Evaluation(**json.load(handle)))
        return sorted(found, key=lambda e: (e.series, e.step))
