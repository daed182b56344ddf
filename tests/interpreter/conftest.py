"""Shared helpers for the front-end tests (parse, check, unroll)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from typing import Optional

import pytest
import torch
from ntpt_dist.interpreter.check import check
from ntpt_dist.interpreter.errors import SourceError
from ntpt_dist.interpreter.ir import FlatModel
from ntpt_dist.interpreter.parse import parse
from ntpt_dist.interpreter.unroll import unroll

FILENAME = "model.py"


@pytest.fixture
def one_thread():
    """torch on one thread for the test (training tests: steady timing, no oversubscription)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def front_end(source: str, hypers: Optional[Mapping[str, int]] = None) -> FlatModel:
    """parse -> check -> unroll on dedented source, as compile_source does."""
    return unroll(check(parse(textwrap.dedent(source), FILENAME, hypers or {})))


def source_error(source: str, hypers: Optional[Mapping[str, int]] = None) -> SourceError:
    """The SourceError the front end raises for ``source`` (fails the test if none)."""
    with pytest.raises(SourceError) as info:
        front_end(source, hypers)
    return info.value


@pytest.fixture
def compile_flat() -> Callable[..., FlatModel]:
    return front_end


@pytest.fixture
def compile_error() -> Callable[..., SourceError]:
    return source_error
