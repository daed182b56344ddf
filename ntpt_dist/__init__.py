"""ntpt-dist: Neural TerpreT programs with neural libraries, learned by distributed restart search.

Example:
    >>> import ntpt_dist
    >>> model = ntpt_dist.compile_source(open("model.py").read(), hypers={"N": 3})
    >>> result = model.train(data, restarts=16, steps=500, seed=0)
    >>> print(result.best_program().source)

The names below load lazily: importing ``ntpt_dist`` does not import torch,
ray or mlflow until one of them is used.
"""

from __future__ import annotations

import importlib
import sys

from .config import set_telemetry_defaults

# Nothing may phone home: set before Ray or MLflow are imported; users can override (ntpt_dist/config.py).
set_telemetry_defaults()


def _recheck_mlflow_telemetry() -> None:
    """MLflow imported before this package read its setting already: make it read it again."""
    try:
        from mlflow.telemetry import get_telemetry_client, set_telemetry_client

        client = get_telemetry_client()
        set_telemetry_client()  # none from now on, as MLFLOW_DISABLE_TELEMETRY says
        if client is not None and get_telemetry_client() is None:
            client.flush(terminate=True)  # and the old one's threads, if it started any, stop
    except Exception:  # an MLflow without this API: nothing more can be done from here
        pass


if "mlflow.telemetry" in sys.modules:
    _recheck_mlflow_telemetry()

_EXPORTS = {
    "NtptError": "ntpt_dist.interpreter.errors",
    "SourceError": "ntpt_dist.interpreter.errors",
    "DataError": "ntpt_dist.interpreter.errors",
    "compile_source": "ntpt_dist.interpreter.model",
    "compile_file": "ntpt_dist.interpreter.model",
    "Model": "ntpt_dist.interpreter.model",
    "TrainConfig": "ntpt_dist.interpreter.train_config",
    "JumpPolicy": "ntpt_dist.interpreter.policy",
    "StopRule": "ntpt_dist.interpreter.policy",
    "RestartRecord": "ntpt_dist.interpreter.records",
    "RestartStatus": "ntpt_dist.interpreter.records",
    "Program": "ntpt_dist.interpreter.program",
    "load_terpret_data": "ntpt_dist.interpreter.terpret_data",
    "search": "ntpt_dist.search",
    "SearchResult": "ntpt_dist.interpreter.records",
    "LibraryStore": "ntpt_dist.library_store.api",
    "best_program": "ntpt_dist.library_store.api",
    "load_library": "ntpt_dist.library_store.api",
}

__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ntpt_dist' has no attribute {name!r}")
    if name == "search":  # the callable subpackage (see search/__init__.py)
        value = importlib.import_module("ntpt_dist.search")
    else:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
