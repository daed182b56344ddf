"""The compiler's table of contents: source -> parse -> check -> unroll -> :class:`CompiledModel`.

This is the interpreter's *model* layer: what a compiled model is, with nothing
above it (no training, no programs). ``program.py`` builds on it (a stored
Program recompiles its source here), and ``model.py`` at the top of the
interpreter adds training and ``Model.program`` to it, so imports point one
way: ir/errors -> parse/check/unroll -> compiled -> program -> engine ->
polish/tune -> restarts -> model.

Lowering to torch happens on demand (training builds a ``RestartBlock``), so a
compiled model is cheap to create and to re-create with other hypers.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from typing import Any, Optional

from .check import check
from .errors import NtptError
from .ir import FlatModel
from .parse import parse
from .unroll import unroll

__all__ = ["CompiledModel", "Listing", "check_hypers", "compile_model"]

Listing = Callable[[Any], str]  # a pretty printer: Program -> text


class CompiledModel:
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

    def with_hypers(self, hypers: Mapping[str, int]):
        """The same source compiled with other hypers (e.g. a longer tape), as the same class."""
        merged = {**self.hypers, **check_hypers(hypers)}
        return compile_model(self.source, merged, filename=self.filename, listing=self.listing, cls=type(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.filename!r}, {len(self.flat.statements)} statements)"


def check_hypers(hypers: Any) -> dict[str, int]:
    """``hypers`` as a ``dict[str, int]``.

    Raises:
        NtptError: not a mapping, a name that is not a string or a value that is not an integer.

    Example:
        >>> check_hypers({"N": 3}), check_hypers(None)
        ({'N': 3}, {})
    """
    if hypers is None:
        return {}
    if not isinstance(hypers, Mapping):
        raise NtptError(f"hypers must be a dict name -> int, but got {type(hypers).__name__} ({hypers!r:.60}); "
                        "fix: pass e.g. hypers={'N': 3}")
    for name, value in hypers.items():
        if not isinstance(name, str) or not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise NtptError(f"hypers must map names to integers, but got {name!r}: {value!r:.60}; "
                            "fix: pass e.g. hypers={'N': 3}")
    return {name: int(value) for name, value in hypers.items()}


def compile_model(text: str, hypers: Optional[Mapping[str, int]] = None, filename: str = "<string>",
                  listing: Optional[Listing] = None, cls: type = CompiledModel) -> Any:
    """Compile NTPT (or TerpreT) model source into ``cls`` (a :class:`CompiledModel` or subclass).

    Raises:
        SourceError: with ``file:line:col`` and a caret for any problem in the source.
        NtptError: hypers that are not a dict name -> int, a filename that is not a string.

    Example:
        >>> [d.name for d in compile_model("x = Input(2)\\ny = Output(2)\\ny.set_to(x)\\n").flat.outputs]
        ['y']
    """
    hypers = check_hypers(hypers)
    if not isinstance(filename, str):
        raise NtptError(f"filename must be a string, but got {type(filename).__name__}; fix: pass e.g. 'model.py'")
    if listing is not None and not callable(listing):
        raise NtptError(f"listing must be a function Program -> str, but got {type(listing).__name__}")
    flat = unroll(check(parse(text, filename, hypers)))
    return cls(flat, hypers, listing)
