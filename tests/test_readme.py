"""The README's Python example runs as written and prints what its comments say."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(text: str) -> list[str]:
    """The bodies of the ```python blocks of a Markdown text."""
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.S | re.M)


def test_the_readme_has_one_python_example():
    assert len(python_blocks(README.read_text())) == 1
    assert python_blocks("a\n```python\nx = 1\n```\nb\n```\nnot python\n```\n") == ["x = 1\n"]


def test_the_readme_python_example_runs_as_written(tmp_path):
    (code,) = python_blocks(README.read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith("NTPT_STORE")}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", RAY_USAGE_STATS_ENABLED="0", OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "op = 2  # Param(4)" in out  # the listing of the learned program: multiplication
    assert "[3 2]" in out and "1.0 {}" in out
    assert (tmp_path / "my-store" / "mlflow.db").is_file()  # the store it names, in the working folder
