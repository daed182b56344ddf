"""Bad command-line input is one `error:` line and exit status 2, before any data is read or work starts."""

from __future__ import annotations

import socket
import time

import pytest

from ntpt_dist.cli import main


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err  # one line, no traceback, no usage block
    assert lines[0].startswith("error:") or ": error:" in lines[0], err
    return lines[0]


@pytest.mark.ray
def test_an_unreachable_cluster_address_fails_in_seconds_before_the_data_is_read(capsys, tmp_path):
    with socket.socket() as sock:  # bound, never listening: every connection is refused
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
        start = time.monotonic()
        code = main(["search", "ADD2x2:top", "--address", address, "--restarts", "1", "--store", str(tmp_path),
                     "--data-dir", "/nonexistent"])  # the data would fail later: the address fails first
    assert code == 2 and time.monotonic() - start < 15
    assert f"no Ray cluster answers at {address}" in error_line(capsys)
