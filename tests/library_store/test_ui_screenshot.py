"""The MLflow UI shows a store's search: runs, the metric and program.txt (headless Chromium)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ui_screenshot.py"


@pytest.mark.slow
def test_ui_shows_runs_metric_and_program(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path), "--store-dir", str(tmp_path / "s")],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout[done.stdout.index("{"):])
    assert report["ok"] and all(Path(p).stat().st_size > 10_000 for p in report["screenshots"])
