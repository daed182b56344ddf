"""Opening an embedded sqlite store that another process may be creating at the same moment.

MLflow creates and migrates a new database's tables when a process first opens
it, with no lock between processes: two processes opening the same new store
at once ran the migrations twice, and one died with a raw sqlalchemy
``OperationalError`` ("table ... already exists") or an alembic error. So every
ntpt-dist process opens the database under an exclusive ``flock`` on
``<db>.create.lock``. The first to get it creates the tables; the others then
find them. MLflow caches each process's stores by URI, so the tables are
checked once per database and process.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from typing import Any, Optional


def open_client(uri: str, db_path: Optional[str]) -> Any:
    """An ``MlflowClient`` for ``uri`` whose tables exist; for sqlite, created while no other ntpt-dist process does.

    Args:
        uri: tracking and registry URI.
        db_path: the sqlite file of ``uri``, or None for a server or another database.

    Example:
        >>> client = open_client("sqlite:////tmp/s/mlflow.db", "/tmp/s/mlflow.db")   # doctest: +SKIP
    """
    from mlflow import MlflowClient

    if db_path is None:
        return MlflowClient(tracking_uri=uri, registry_uri=uri)
    with _exclusive(f"{db_path}.create.lock"):
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)  # creates the tracking tables
        client.search_registered_models(max_results=1)  # and the registry's, on its first use
    return client


@contextlib.contextmanager
def _exclusive(path: str) -> Iterator[None]:
    """flock on ``path``, released by the kernel even if this process dies holding it."""
    try:
        handle = open(path, "a")
    except OSError:  # a store in a folder we cannot write: we cannot create its tables either, so no race
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
