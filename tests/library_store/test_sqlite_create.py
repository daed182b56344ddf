"""Several processes opening one new sqlite store at the same moment all get a working store."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

OPENERS = 3
CHILD = """
import os, sys, time
from ntpt_dist.library_store import mlflow_store  # the slow imports happen before the barrier
from ntpt_dist.library_store.api import LibraryStore

folder, me, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
open(os.path.join(folder, "ready-" + me), "w").close()
while sum(name.startswith("ready-") for name in os.listdir(folder)) < n:  # everyone imported: go together
    time.sleep(0.001)
store = LibraryStore(os.path.join(folder, "store"))
store.start_search("T" + me, {"restarts": 1})
print("tasks", store.tasks())
"""


@pytest.mark.timeout(300)
def test_processes_opening_one_new_store_together_all_succeed(tmp_path):
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), str(i), str(OPENERS)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(OPENERS)
    ]
    outcomes = [child.communicate(timeout=240) for child in children]
    for child, (out, err) in zip(children, outcomes):
        assert child.returncode == 0, err[-3000:]  # was: sqlalchemy OperationalError 'table ... already exists'
        assert "tasks []" in out
