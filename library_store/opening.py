"""Checks made before a store is opened: that a store to read exists, and that a tracking server answers.

MLflow creates an sqlite database wherever a URI points, so a mistyped path to
read from became a new empty store; and it retries a request to an unreachable
server for minutes (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``, default 7 with backoff,
``MLFLOW_HTTP_REQUEST_TIMEOUT``, default 120 s). Both are one clear
:class:`NtptError` line here, before MLflow is asked.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request

from ..interpreter.errors import NtptError

PROBE_TIMEOUT_S = 5.0  # one attempt; a closed port fails at once, a silent host after this


def check_exists(uri: str) -> None:
    """``uri`` names a store that exists (an sqlite file; other databases and servers are not checked here).

    Raises:
        NtptError: the sqlite database is not there; names the path and the fix.

    Example:
        >>> check_exists("sqlite:////no/such/store/mlflow.db")
        Traceback (most recent call last):
        ...
        ntpt_dist.interpreter.errors.NtptError: no store at sqlite:////no/such/store/mlflow.db: /no/such/store/mlflow.db does not exist; fix: pass the folder or URI a search or merge wrote to (e.g. ./ntpt-store, --store), or run a search first
    """
    if uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///"):]
        if not os.path.isfile(path):
            raise NtptError(
                f"no store at {uri}: {path} does not exist; fix: pass the folder or URI a search or merge wrote to "
                "(e.g. ./ntpt-store, --store), or run a search first"
            )


def check_reachable(uri: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """An ``http(s)://`` tracking server answers at all (any HTTP status counts), within ``timeout_s``.

    Raises:
        NtptError: the connection is refused, times out or the host is unknown.

    Example:
        >>> check_reachable("http://127.0.0.1:9")   # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ntpt_dist.interpreter.errors.NtptError: cannot reach the MLflow tracking server at http://127.0.0.1:9 (...); fix: ...
    """
    if not uri.startswith(("http://", "https://")):
        return
    try:
        urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s).close()
    except urllib.error.HTTPError:
        return  # it answered (a 404 or a 401 from a proxy in front of it): reachable
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise NtptError(
            f"cannot reach the MLflow tracking server at {uri} ({type(exc).__name__}: {reason}); "
            "fix: start it (mlflow server --host ... --port ...) or check the host and port in --store"
        ) from None
