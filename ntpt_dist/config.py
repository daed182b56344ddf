"""Configuration declared once: each environment variable with its type and default.

Constructors and CLI options take explicit arguments; these variables only
supply the defaults (as MLflow's ``environment_variables.py`` does). This is a
leaf module (standard library only), so every package of ntpt-dist may import
it; read a variable through its :class:`EnvVar`, never ``os.environ`` directly.

Example:
    >>> NTPT_STORE_DIR.get().name  # doctest: +SKIP
    'ntpt-store'
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Optional, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class EnvVar(Generic[T]):
    """One environment variable: its name, default, how its text is parsed and what it is for."""

    name: str
    default: Optional[T]
    parse: Callable[[str], T]
    doc: str

    def get(self) -> Optional[T]:
        """The variable's value (parsed), or the default when it is unset or empty."""
        raw = os.environ.get(self.name)
        return self.default if raw in (None, "") else self.parse(raw)

    def is_set(self) -> bool:
        return os.environ.get(self.name) not in (None, "")


def _path(raw: str) -> Path:
    return Path(raw).expanduser()


NTPT_DATA_DIR = EnvVar("NTPT_DATA_DIR", None, _path, "folder with MNIST/, operators/, gtsrb/ (else downloads to the cache)")
XDG_CACHE_HOME = EnvVar("XDG_CACHE_HOME", Path.home() / ".cache", _path, "the user's cache folder (freedesktop)")
NTPT_CACHE_DIR = EnvVar("NTPT_CACHE_DIR", None, _path, "downloads and decoded datasets (default: $XDG_CACHE_HOME/ntpt-dist)")
NTPT_STORE_DIR = EnvVar("NTPT_STORE_DIR", Path("ntpt-store"), _path, "embedded store: <dir>/mlflow.db + <dir>/artifacts")
NTPT_STORE_URI = EnvVar("NTPT_STORE_URI", None, str, "MLflow tracking URI of a shared store (overrides NTPT_STORE_DIR)")
NTPT_DEVICE = EnvVar("NTPT_DEVICE", None, str, "torch device for training (default: cuda if available, else cpu)")
RAY_ADDRESS = EnvVar("RAY_ADDRESS", None, str, "the Ray cluster a search joins with address='auto'")
# Nothing may phone home: ntpt_dist sets these (unless the user did) before Ray or MLflow start.
MLFLOW_DISABLE_TELEMETRY = EnvVar("MLFLOW_DISABLE_TELEMETRY", "true", str, "MLflow's usage telemetry (off)")
RAY_USAGE_STATS_ENABLED = EnvVar("RAY_USAGE_STATS_ENABLED", "0", str, "Ray's usage statistics (off)")

TELEMETRY = (MLFLOW_DISABLE_TELEMETRY, RAY_USAGE_STATS_ENABLED)
ALL = [NTPT_DATA_DIR, XDG_CACHE_HOME, NTPT_CACHE_DIR, NTPT_STORE_DIR, NTPT_STORE_URI, NTPT_DEVICE, RAY_ADDRESS,
       *TELEMETRY]


def telemetry_settings() -> dict[str, str]:
    """The telemetry variables as this process has them (the defaults where unset), e.g. for Ray actors."""
    return {var.name: os.environ.get(var.name, var.default) for var in TELEMETRY}


def set_telemetry_defaults() -> None:
    """Turn MLflow's and Ray's telemetry off in this process's environment, unless the user set them."""
    for var in TELEMETRY:
        os.environ.setdefault(var.name, var.default)


def cache_dir() -> Path:
    """Where downloads and decoded datasets go: ``$NTPT_CACHE_DIR``, else ``$XDG_CACHE_HOME/ntpt-dist``."""
    return NTPT_CACHE_DIR.get() or XDG_CACHE_HOME.get() / "ntpt-dist"


def default_device() -> str:
    """``$NTPT_DEVICE``, else ``cuda`` when torch sees a GPU, else ``cpu``."""
    explicit = NTPT_DEVICE.get()
    if explicit:
        return explicit
    import torch  # noqa: PLC0415 - heavy, and only this default needs it

    return "cuda" if torch.cuda.is_available() else "cpu"
