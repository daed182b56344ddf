"""What importing ntpt_dist sets for the libraries it drives, whichever was imported first."""

from __future__ import annotations

import os
import subprocess
import sys

# MLflow turns its telemetry off by itself under pytest and CI: the child must see none of these
TEST_ENVIRONMENT = ("PYTEST_CURRENT_TEST", "CI", "GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "BUILDKITE",
                    "MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")
PROBE = """
import mlflow
from mlflow.telemetry import get_telemetry_client
{import_package}
print(get_telemetry_client() is None)
"""


def telemetry_is_off(import_package: str) -> bool:
    env = {k: v for k, v in os.environ.items() if k not in TEST_ENVIRONMENT}
    run = subprocess.run([sys.executable, "-c", PROBE.format(import_package=import_package)], env=env,
                         capture_output=True, text=True, timeout=120, check=True)
    return run.stdout.strip().splitlines()[-1] == "True"


def test_importing_ntpt_dist_after_mlflow_still_turns_mlflow_telemetry_off():
    assert not telemetry_is_off(""), "control: MLflow alone should have its telemetry client here"
    assert telemetry_is_off("import ntpt_dist")
    assert not telemetry_is_off("import os; os.environ['MLFLOW_DISABLE_TELEMETRY'] = 'false'\nimport ntpt_dist")
