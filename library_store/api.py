"""The user-facing store API, re-exported as ``ntpt_dist.LibraryStore``, ``best_program``, ``load_library``.

Example:
    >>> import ntpt_dist
    >>> store = ntpt_dist.LibraryStore()               # sqlite in $NTPT_STORE_DIR or ./ntpt-store  # doctest: +SKIP
    >>> prog = ntpt_dist.best_program("MATH", store)    # doctest: +SKIP
    >>> prog.accuracy, prog.library_version             # doctest: +SKIP
    (0.97, {'net_0': 3})
    >>> prog.run({"tape": images})["result"]           # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any, Optional, Union

from .. import config
from ..interpreter.errors import NtptError
from . import base
from .base import CHAMPION, NetState, ProgramRecord
from .opening import check_exists
from .records import program_record

StoreLike = Union[base.LibraryStore, str, None]
MEMORY = "memory://"


def default_uri() -> str:
    """The embedded store's URI: ``sqlite:///<dir>/mlflow.db``, dir = ``$NTPT_STORE_DIR`` or ``./ntpt-store``.

    Example:
        >>> default_uri().endswith("/mlflow.db")
        True
    """
    folder = os.path.abspath(config.NTPT_STORE_DIR.get())
    return f"sqlite:///{folder}/mlflow.db"


def resolve_uri(uri: Optional[str] = None) -> str:
    """The tracking URI that :func:`LibraryStore` opens for ``uri`` (a folder becomes its ``mlflow.db``).

    Raises:
        NtptError: the URI scheme is not one MLflow understands here.

    Example:
        >>> resolve_uri("/tmp/my-store"), resolve_uri("http://127.0.0.1:5000")
        ('sqlite:////tmp/my-store/mlflow.db', 'http://127.0.0.1:5000')
    """
    uri = uri or config.NTPT_STORE_URI.get() or default_uri()
    schemes = ("sqlite:///", "http://", "https://", "postgresql", "mysql", "databricks")
    if "://" not in uri:  # a folder: the embedded store inside it
        uri = f"sqlite:///{os.path.abspath(uri)}/mlflow.db"
    if not uri.startswith(schemes):
        raise NtptError(
            f"a store URI starts with one of {schemes} or is 'memory://', but got {uri!r}; "
            "fix: pass e.g. 'sqlite:///./ntpt-store/mlflow.db' (MLflow >= 3 refuses a bare ./mlruns folder)"
        )
    return uri


def LibraryStore(uri: Optional[str] = None, *, create: bool = True) -> base.LibraryStore:  # noqa: N802 - a constructor
    """Open a library store.

    Args:
        uri: None for the embedded default (:func:`default_uri`; artifacts in
            ``<dir>/artifacts``), a folder (an embedded store there: ``<folder>/mlflow.db``),
            ``"memory://"`` for an in-memory store, or any MLflow tracking URI
            (``sqlite:///path/mlflow.db``, ``http://127.0.0.1:5000``).
        create: True (writers: searches, merges) creates an embedded store that is not there
            yet; False (readers: ``show``, ``library``, ``ui``, :func:`best_program`) opens only
            a store that exists, so a mistyped path is an error and leaves no new store behind.

    Returns:
        A :class:`ntpt_dist.library_store.base.LibraryStore`.

    Raises:
        NtptError: the URI scheme is not one MLflow understands here; a tracking server
            does not answer within 5 s; with ``create=False``, no store is at ``uri``.

    Example:
        >>> store = LibraryStore("memory://")
        >>> store.tasks()
        []
    """
    if uri == MEMORY:
        from .memory import MemoryStore

        return MemoryStore()
    uri = resolve_uri(uri)
    if not create:
        check_exists(uri)  # before the MLflow import: a mistyped path fails fast
    from .mlflow_store import MlflowStore

    return MlflowStore(uri, create=create)


def _open(store: StoreLike) -> base.LibraryStore:
    """A store to read from: an existing one (a URI or folder that names no store is an error)."""
    return store if isinstance(store, base.LibraryStore) else LibraryStore(store, create=False)


class StoredProgram:
    """A task's stored program: the runnable ``Program`` plus the numbers it was stored with.

    Attributes:
        task, version: where it is stored.
        accuracy: validation accuracy measured when it was stored (float).
        test_accuracy: test accuracy if one was stored, else None.
        library_version: name -> network version it was validated with.
        search_id, seed, hypers, merge: provenance (merge = the gate's decision dict).

    Every other attribute (``params``, ``networks``, ``listing()``, ``to_dict()``)
    is the underlying :class:`ntpt_dist.Program`'s; ``evaluate(batch)`` is its
    ``accuracy(batch)`` (re-measured on ``batch``).
    """

    def __init__(self, record: ProgramRecord) -> None:
        self.record = record
        self.task = record.task
        self.version = record.version
        self.accuracy = record.val_acc
        self.test_accuracy = record.test_acc
        self.library_version = dict(record.library_version)
        self.search_id = record.search_id
        self.seed = record.seed
        self.hypers = dict(record.hypers)
        self.merge = record.merge
        self._program: Any = None

    @property
    def source(self) -> str:
        """The program's source text (the model with each Param replaced by its value)."""
        return self.program.source

    @property
    def program(self) -> Any:
        """The :class:`ntpt_dist.Program` (built on first use)."""
        if self._program is None:
            from ..interpreter.program import Program

            self._program = Program.from_dict(self.record.program)
        return self._program

    def run(self, inputs: Any, hypers: Optional[dict[str, int]] = None) -> dict[str, Any]:
        """Execute the program exactly on a batch; see ``Program.run``."""
        return self.program.run(inputs, hypers=hypers)

    def evaluate(self, batch: Any, hypers: Optional[dict[str, int]] = None) -> float:
        """Accuracy on ``batch`` (``Program.accuracy``), as opposed to the stored :attr:`accuracy`."""
        return self.program.accuracy(batch, hypers=hypers)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name == "record":
            raise AttributeError(name)
        return getattr(self.program, name)

    def __repr__(self) -> str:
        return (f"StoredProgram(task={self.task!r}, version={self.version}, accuracy={self.accuracy:.4f}, "
                f"library_version={self.library_version})")


def best_program(task: str, store: StoreLike = None, version: Union[int, str] = CHAMPION) -> StoredProgram:
    """The task's champion program (or a given version) from a store.

    Args:
        task: task name, e.g. ``"MATH"``.
        store: a store, a URI, or None for the embedded default.
        version: ``"champion"`` or a program version number.

    Returns:
        A :class:`StoredProgram` with ``.source``, ``.run(inputs)``, ``.accuracy``, ``.library_version``.

    Raises:
        NtptError: no such task/version, or its artifact is missing or corrupted (named with its URI).

    Example:
        >>> prog = best_program("MATH")                   # doctest: +SKIP
        >>> print(prog.source); prog.run(batch)["result"]  # doctest: +SKIP
    """
    if store is None or (isinstance(store, str) and store.startswith("sqlite:///")):
        fast = _read_sqlite_program(task, store or default_uri(), version)
        if fast is not None:
            return fast
    return StoredProgram(_open(store).get_program(task, version))


def _read_sqlite_program(task: str, uri: str, version: Union[int, str]) -> Optional[StoredProgram]:
    """The stored program read straight from an sqlite store (no MLflow import), or None to use the client."""
    from .codec import read_file
    from .naming import check_stored_task, program_model
    from .sqlite_read import program_blob_path

    found = program_blob_path(_local(uri), program_model(task), version)
    if found is None or not os.path.isfile(found[1]):
        return None  # the client path gives the full error message
    number, path = found
    what = f"program of task {task!r} version {number} in store {uri}"
    record = read_file(path, f"{what} ({path})")
    parsed = program_record(task, number, record, what)
    check_stored_task(record.get("task"), task, what)
    return StoredProgram(parsed)


def load_library(store: StoreLike = None, version: base.Version = CHAMPION) -> dict[str, NetState]:
    """The neural library: name -> ``{"signature": str, "state": {"w0": ndarray, ...}}``.

    Args:
        store: a store, a URI, or None for the embedded default.
        version: ``"champion"`` (current library) or ``{name: version number}``.

    Returns:
        name -> NetState.

    Raises:
        NtptError: an unknown name/version or a missing or corrupted weights artifact.

    Example:
        >>> load_library(LibraryStore("memory://"))
        {}
    """
    return _open(store).load_library(version)


class ServerProcess(subprocess.Popen):
    """The ``mlflow server`` that :func:`serve_ui` starts, in a process group of its own.

    The server starts uvicorn and job consumers, which a signal to the server alone
    leaves running; ``terminate()``, ``kill()`` and ``send_signal()`` signal the whole group.
    """

    def send_signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # the group has ended already
            os.killpg(self.pid, sig)

    def stop(self, timeout_s: float = 15.0) -> None:
        """Terminate the server and everything it started; kill what is left after ``timeout_s``."""
        self.terminate()
        try:
            self.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + timeout_s
        while _group_alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.kill()  # whatever ignored SIGTERM
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.wait(timeout=timeout_s)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def serve_ui(store: StoreLike = None, port: Optional[int] = None, wait_s: float = 120.0) -> tuple[ServerProcess, str]:
    """Start the MLflow UI (``mlflow server``) for a database store on 127.0.0.1 and wait until it answers.

    Args:
        store: a store, a folder or a URI with a database backend (``sqlite:///...``); None = the embedded default.
        port: the port; None picks a free one.
        wait_s: how long to wait for ``/health``.

    Returns:
        ``(process, url)``; ``process.stop()`` (or ``terminate()``) stops the server and all it started.

    Raises:
        NtptError: the store is in memory or already a server, or the UI did not start (its log is quoted).

    Example:
        >>> proc, url = serve_ui("sqlite:///ntpt-store/mlflow.db")   # doctest: +SKIP
        >>> proc.stop()                                              # doctest: +SKIP
    """
    uri = store.uri if isinstance(store, base.LibraryStore) else store
    uri = uri if uri == MEMORY else resolve_uri(uri)
    if uri == MEMORY or uri.startswith(("http://", "https://")):
        raise NtptError(
            f"serve_ui needs a database store, but got {uri!r}; fix: an in-memory store has no UI, "
            "and a server URI already is one (open it in a browser)"
        )
    check_exists(uri)  # the server would create a database at a mistyped path
    if port is None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    env = {**os.environ, **config.telemetry_settings()}  # the server phones home no more than this process
    log = open(os.path.join(os.path.dirname(_local(uri)) or ".", f"mlflow-ui-{port}.log"), "w")
    proc = ServerProcess(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + wait_s
    while True:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            return proc, url
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.stop()
                with open(log.name) as handle:
                    tail = handle.read()[-1500:]
                raise NtptError(f"the MLflow UI for {uri} did not start on {url}; its log ends:\n{tail}") from None
            time.sleep(0.5)


def _local(uri: str) -> str:
    return uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else ""
