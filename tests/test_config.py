"""ntpt_dist/config.py: every variable declared once, with its default; the packages read them there."""

from __future__ import annotations

import ast
from pathlib import Path

from ntpt_dist import config

REPO = Path(__file__).resolve().parents[1]


def test_a_variable_is_its_default_until_set(monkeypatch):
    monkeypatch.delenv("NTPT_STORE_DIR", raising=False)
    assert config.NTPT_STORE_DIR.get() == Path("ntpt-store") and not config.NTPT_STORE_DIR.is_set()
    monkeypatch.setenv("NTPT_STORE_DIR", "~/stores/a")
    assert config.NTPT_STORE_DIR.get() == Path.home() / "stores" / "a"
    monkeypatch.setenv("NTPT_STORE_DIR", "")  # empty counts as unset
    assert config.NTPT_STORE_DIR.get() == Path("ntpt-store")


def test_the_cache_folder_follows_ntpt_cache_dir_then_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("NTPT_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert config.cache_dir() == tmp_path / "ntpt-dist"
    monkeypatch.setenv("NTPT_CACHE_DIR", str(tmp_path / "mine"))
    assert config.cache_dir() == tmp_path / "mine"


def test_telemetry_defaults_never_override_the_user(monkeypatch):
    monkeypatch.delenv("RAY_USAGE_STATS_ENABLED", raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "false")
    config.set_telemetry_defaults()
    assert config.telemetry_settings() == {"MLFLOW_DISABLE_TELEMETRY": "false", "RAY_USAGE_STATS_ENABLED": "0"}


def test_every_variable_is_documented_once():
    names = [v.name for v in config.ALL]
    assert len(names) == len(set(names)) and all(v.doc for v in config.ALL)


def _environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ"


def variable_reads(tree: ast.AST) -> list[int]:
    """Lines that read one environment variable: ``os.environ.get(...)``, ``os.environ[...]``, ``os.getenv(...)``
    (copying the whole environment for a child process is not a read of a setting)."""
    lines = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute):
            if (n.func.attr == "get" and _environ(n.func.value)) or n.func.attr == "getenv":
                lines.append(n.lineno)
        elif isinstance(n, ast.Subscript) and _environ(n.value) and isinstance(n.ctx, ast.Load):
            lines.append(n.lineno)
    return lines


def test_the_checker_finds_reads():
    code = "import os\na = os.environ.get('X')\nb = os.environ['Y']\nc = os.getenv('Z')\nd = dict(os.environ)\n"
    assert variable_reads(ast.parse(code)) == [2, 3, 4]


def test_the_packages_read_no_environment_variable_themselves():
    """Only ntpt_dist/config.py reads settings from the environment (search/ray_backend.py also sets
    what Ray's processes inherit and reports what an actor has, so it is left out)."""
    packages = ("interpreter", "search", "library_store", "experiments", "ntpt_dist")
    files = [path for package in packages for path in sorted((REPO / package).glob("*.py"))]
    assert len(files) > 60
    for path in files:
        if path.name == "ray_backend.py" or path.relative_to(REPO).as_posix() == "ntpt_dist/config.py":
            continue
        reads = variable_reads(ast.parse(path.read_text()))
        assert not reads, f"{path.relative_to(REPO)}:{reads[0]} reads the environment; declare it in ntpt_dist/config.py"
