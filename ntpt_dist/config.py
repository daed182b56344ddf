"""Configuration declared once: each environment variable with its type and default.

Constructors and CLI options take explicit arguments; these variables only
supply the defaults (as MLflow's ``environment_variables.py`` does).
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
    name: str
    default: Optional[T]
    parse: Callable[[str], T]
    doc: str

    def get(self) -> Optional[T]:
        raw = os.environ.get(self.name)
        return self.default if raw in (None, "") else self.parse(raw)


NTPT_DATA_DIR = EnvVar("NTPT_DATA_DIR", None, Path, "folder with MNIST/, operators/, gtsrb/ (else downloads to the cache)")
NTPT_CACHE_DIR = EnvVar(
    "NTPT_CACHE_DIR", Path.home() / ".cache" / "ntpt-dist", Path, "downloads and decoded datasets"
)
NTPT_STORE_DIR = EnvVar("NTPT_STORE_DIR", Path("ntpt-store"), Path, "embedded store: <dir>/mlflow.db + <dir>/artifacts")
NTPT_STORE_URI = EnvVar("NTPT_STORE_URI", None, str, "MLflow tracking URI of a shared store (overrides NTPT_STORE_DIR)")
NTPT_DEVICE = EnvVar("NTPT_DEVICE", None, str, "torch device for training (default: cuda if available, else cpu)")

ALL = [NTPT_DATA_DIR, NTPT_CACHE_DIR, NTPT_STORE_DIR, NTPT_STORE_URI, NTPT_DEVICE]


def default_device() -> str:
    explicit = NTPT_DEVICE.get()
    if explicit:
        return explicit
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
