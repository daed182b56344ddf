"""Opening a store to read never creates one, and a tracking server that does not answer is one quick error."""

from __future__ import annotations

import socket
import time

import pytest
from ntpt_dist.interpreter.errors import NtptError
from ntpt_dist.library_store import api
from ntpt_dist.library_store.mlflow_store import MlflowStore

from .helpers import net, quality


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


@pytest.mark.parametrize("form", ["folder", "uri"])
def test_a_read_only_open_of_a_mistyped_path_is_an_error_and_creates_nothing(tmp_path, form):
    missing = tmp_path / "ntpt-stroe"
    uri = str(missing) if form == "folder" else f"sqlite:///{missing}/mlflow.db"
    with pytest.raises(NtptError, match=r"^no store at sqlite:///.*ntpt-stroe/mlflow\.db: .* does not exist; fix: "):
        api.LibraryStore(uri, create=False)
    with pytest.raises(NtptError, match="no store at"):
        api.best_program("MATH", uri)
    with pytest.raises(NtptError, match="no store at"):
        api.load_library(uri)
    with pytest.raises(NtptError, match="no store at"):
        api.serve_ui(uri)
    assert not missing.exists()


def test_a_read_only_open_of_an_existing_store_reads_it(tmp_path):
    writer = api.LibraryStore(str(tmp_path / "store"))
    writer.set_champion("net_0", writer.add_net_version("net_0", net(0.5)))
    reader = api.LibraryStore(str(tmp_path / "store"), create=False)
    assert isinstance(reader, MlflowStore) and reader.champion_versions() == {"net_0": 1}
    assert quality(api.load_library(str(tmp_path / "store"))["net_0"]) == 0.5


def test_an_unreachable_tracking_server_fails_fast_with_one_line():
    uri = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    with pytest.raises(NtptError) as caught:
        api.LibraryStore(uri)
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert message.startswith(f"cannot reach the MLflow tracking server at {uri} (") and "\n" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
