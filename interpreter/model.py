"""The compiler's table of contents: source -> parse -> check -> unroll -> Model.

Lowering to torch happens on demand (training builds a ``RestartBlock``), so a
``Model`` is cheap to create and to re-create with other hypers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Optional

from .check import check
from .errors import NtptError
from .ir import FlatModel
from .parse import parse
from .unroll import unroll

Listing = Callable[["Program"], str]  # noqa: F821 - see program.py


class Model:
    """A compiled NTPT model: the flat IR plus what is needed to recompile it.

    Args:
        flat: the unrolled model.
        hypers: the hyper values it was compiled with.
        listing: optional pretty printer for learned programs (paper style).
    """

    def __init__(self, flat: FlatModel, hypers: Mapping[str, int], listing: Optional[Listing] = None):
        self.flat = flat
        self.hypers = dict(hypers)
        self.listing = listing

    @property
    def source(self) -> str:
        return self.flat.source

    @property
    def filename(self) -> str:
        return self.flat.filename

    def with_hypers(self, hypers: Mapping[str, int]) -> Model:
        """The same source compiled with other hypers (e.g. a longer tape)."""
        merged = {**self.hypers, **hypers}
        return compile_source(self.source, merged, filename=self.filename, listing=self.listing)

    def train(self, data: Mapping[str, Any], **kwargs):
        """Train ``restarts`` random restarts at once; see :func:`engine.train`.

        Example:
            >>> result = model.train(data, restarts=16, steps=500, seed=0)
            >>> result.best_program().params
        """
        from .engine import train

        return train(self, data, **kwargs)

    def program(self, params: Mapping[str, Any], networks: Optional[Mapping[str, Any]] = None):
        """A :class:`Program` from explicit Param values (and network states)."""
        from .program import Program

        return Program(self, params, networks or {})

    def __repr__(self) -> str:
        return f"Model({self.filename!r}, {len(self.flat.statements)} statements)"


def compile_source(
    text: str,
    hypers: Optional[Mapping[str, int]] = None,
    filename: str = "<string>",
    listing: Optional[Listing] = None,
) -> Model:
    """Compile NTPT (or TerpreT) model source.

    Args:
        text: the model source (Python syntax, never executed as Python).
        hypers: values for the model's ``Hyper()`` constants.
        filename: shown in error messages.
        listing: optional pretty printer for the learned programs.

    Returns:
        a :class:`Model`.

    Raises:
        SourceError: with ``file:line:col`` and a caret for any problem in the source.

    Example:
        >>> m = compile_source("x = Input(2)\\ny = Output(2)\\ny.set_to(x)\\n")
    """
    hypers = dict(hypers or {})
    flat = unroll(check(parse(text, filename, hypers)))
    return Model(flat, hypers, listing)


def compile_file(path: str | Path, hypers: Optional[Mapping[str, int]] = None, listing: Optional[Listing] = None) -> Model:
    """Compile a model file; errors name the file. See :func:`compile_source`."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise NtptError(f"cannot read model file {str(path)!r}: {e.strerror}") from None
    return compile_source(text, hypers, filename=str(path), listing=listing)
