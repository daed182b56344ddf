"""A learned program: fixed Param values (+ the chosen networks) of a compiled model.

A :class:`Program` is what training produces and users fetch: its ``source`` is
the model text with every ``Param`` declaration replaced by its learned value,
``run`` executes it exactly (``discrete.execute``), also with other hypers (a
longer tape, more time steps), and ``to_dict``/``from_dict`` give a plain dict
that stores and round-trips it exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

import numpy as np

from . import listings
from .calls import called_networks
from .compiled import compile_model
from .discrete import check_data, check_outputs, check_params, execute
from .errors import NtptError
from .ir import Decl, FlatModel
from .netfn import check_netstate

__all__ = ["Program"]

_KEYS = ("source", "filename", "hypers", "params", "networks")


class Program:
    """Argmax of a model's Params plus the networks its ``@Learn`` calls use.

    Args:
        model: a compiled model (``compiled.CompiledModel`` or ``Model``: ``model.flat``, ``model.hypers``,
            ``model.source``, ``model.filename``, ``model.listing``, ``model.with_hypers``).
        params: Param name -> int (scalar) or nested list / int array.
        networks: ``@Learn`` name -> NetState ``{"signature", "state": {"w0", "b0", ...}}``.
        meta: free metadata set by others (``accuracy``, ``library_version``, ...);
            kept by :meth:`to_dict`.

    Raises:
        NtptError: a Param missing, of the wrong shape or out of range; a network
            whose signature does not fit its ``@Learn`` declaration.

    Example:
        >>> from ntpt_dist.interpreter.model import compile_source
        >>> m = compile_source("p = Param(3)\\ny = Output(3)\\ny.set_to(p)\\n")
        >>> prog = Program(m, {"p": 2})
        >>> prog.source
        'p = 2  # Param(3)\\ny = Output(3)\\ny.set_to(p)\\n'
        >>> prog.run({"y": np.zeros(2, int)})["y"].tolist()
        [2, 2]
    """

    def __init__(self, model: Any, params: Mapping[str, Any], networks: Optional[Mapping[str, Any]] = None,
                 meta: Optional[Mapping[str, Any]] = None):
        self.model = model
        self.params: dict[str, Any] = {k: v.tolist() for k, v in check_params(model.flat, params).items()}
        self.networks: dict[str, dict[str, Any]] = {}
        for name, net in (networks or {}).items():
            if name in model.flat.learns:
                state = check_netstate(model.flat.learns[name], net)
                sig = model.flat.learns[name].signature
            else:  # a network this model does not call: keep it as given
                state = {k: np.array(v, dtype=np.float32) for k, v in net["state"].items()}
                sig = net.get("signature", "")
            self.networks[name] = {"signature": sig, "state": {k: np.array(v) for k, v in state.items()}}
        self.meta: dict[str, Any] = dict(meta or {})
        self._models: dict[tuple, Any] = {}

    # ------------------------------------------------------------ presentation

    @property
    def source(self) -> str:
        """The model source with each Param declaration replaced by its value.

        Example: ``instr = Param(4)[3]`` becomes ``instr = [3, 2, 0]  # Param(4)[3]``.
        """
        text = self.model.source
        lines = text.splitlines(keepends=True)
        starts = np.cumsum([0] + [len(line) for line in lines]).tolist()
        edits = []
        for d in self.model.flat.params:
            if d.span.line < 1 or d.span.line > len(lines):
                continue  # a generated declaration has no text to replace
            begin = starts[d.span.line - 1] + _char_col(lines[d.span.line - 1], d.span.col)
            end = starts[d.span.end_line - 1] + _char_col(lines[d.span.end_line - 1], d.span.end_col)
            edits.append((begin, end, d))
        out, pos = [], 0
        for begin, end, group in _group_by_span(edits):
            out.append(text[pos:begin])
            out.append("\n".join(_declaration(d, self.params[d.name]) for d in group))
            pos = end
        out.append(text[pos:])
        return "".join(out)

    def listing(self) -> str:
        """The model's registered pretty printer applied to this program, else :attr:`source`.

        Example:
            >>> from ntpt_dist.interpreter.model import compile_source
            >>> Program(compile_source("p = Param(2)\\n"), {"p": 1}).listing()
            'p = 1  # Param(2)\\n'
        """
        listing = getattr(self.model, "listing", None)
        return listing(self) if listing is not None else self.source

    def __repr__(self) -> str:
        return f"Program({self.model.filename!r}, params={self.params})"

    # --------------------------------------------------------------- execution

    def run(self, inputs: Mapping[str, Any], hypers: Optional[Mapping[str, int]] = None) -> dict[str, np.ndarray]:
        """Execute the program exactly on a batch.

        Args:
            inputs: the batch (docs/design.md); extra keys such as outputs are ignored.
            hypers: other hyper values (e.g. a longer tape); Param shapes must not change.

        Returns:
            Output name -> int64 array ``[B, *shape]`` (``-1``: no value).

        Raises:
            DataError: missing input or value out of range.
            NtptError: the hypers change the shape of a Param or a network's signature.

        Example:
            >>> from ntpt_dist.interpreter.model import compile_source
            >>> m = compile_source("x = Input(2)\\np = Param(2)\\ny = Output(2)\\n"
            ...                    "if p == 0:\\n    y.set_to(x)\\nelse:\\n    y.set_to_constant(1)\\n")
            >>> Program(m, {"p": 0}).run({"x": np.array([0, 1])})["y"].tolist()
            [0, 1]
        """
        return execute(self._flat_for(hypers), self.params, self.networks, inputs)

    def accuracy(self, batch: Mapping[str, Any], hypers: Optional[Mapping[str, int]] = None) -> float:
        """Fraction of instances whose every observed output (not ``-1``) is exact.

        As for the relaxed model (``lower.prepare_batch``), an Output missing
        from the batch is unobserved; an element with no value (``-1`` from
        :meth:`run`) never matches an observed target.

        Args:
            batch: inputs and Outputs, ``-1`` marking don't care.
            hypers: as in :meth:`run`.

        Raises:
            DataError: an empty batch, no Output in it or none observed (all ``-1``), or an
                input or Output of the wrong shape, dtype or range (as in training).

        Example:
            >>> from ntpt_dist.interpreter.model import compile_source
            >>> m = compile_source("x = Input(2)\\ny = Output(2)\\ny.set_to(x)\\n")
            >>> Program(m, {}).accuracy({"x": np.array([0, 1]), "y": np.array([0, 0])})
            0.5
        """
        flat = self._flat_for(hypers)
        n = check_data(flat, batch, "the batch")  # the rules training applies (lower.prepare_batch)
        wanted = check_outputs(flat, batch, n)
        predicted = execute(flat, self.params, self.networks, batch)
        correct = np.ones(n, dtype=bool)
        for name, want in wanted.items():
            ok = (predicted[name] == want) | (want == -1)
            correct &= ok.reshape(n, -1).all(axis=1)
        return float(correct.mean())

    def _flat_for(self, hypers: Optional[Mapping[str, int]]) -> FlatModel:
        if not hypers:
            return self.model.flat
        key = tuple(sorted(hypers.items()))
        if key not in self._models:
            model = self.model.with_hypers(hypers)
            _check_same_shapes(self.model.flat, model.flat, dict(hypers))
            self._models[key] = model
        return self._models[key].flat

    # ----------------------------------------------------------- serialisation

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (JSON-able except the numpy arrays of the networks).

        Keys: ``source``, ``filename``, ``hypers``, ``params``, ``networks``, ``meta`` and ``listing``
        (the name of its pretty printer in :func:`listing_registry`, or None).

        Example:
            >>> from ntpt_dist.interpreter.model import compile_source
            >>> d = Program(compile_source("p = Param(2)\\n"), {"p": 1}).to_dict()
            >>> d["params"], d["hypers"]
            ({'p': 1}, {})
        """
        return {
            "source": self.model.source,
            "filename": self.model.filename,
            "hypers": dict(self.model.hypers),
            "params": _copy_nested(self.params),
            "networks": {
                name: {"signature": net["signature"], "state": {k: v.copy() for k, v in net["state"].items()}}
                for name, net in self.networks.items()
            },
            "meta": _copy_nested(self.meta),
            "listing": _listing_ref(self.model.listing),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], listing: Any = None) -> Program:
        """Rebuild a Program from :meth:`to_dict` output, recompiling its source.

        Args:
            d: the dict.
            listing: optional pretty printer to attach to the recompiled model.

        Raises:
            NtptError: a key is missing or of the wrong type, or a network does not fit its
                ``@Learn`` declaration; SourceError if the source no longer compiles.

        Example:
            >>> from ntpt_dist.interpreter.model import compile_source
            >>> p = Program(compile_source("p = Param(2)\\n"), {"p": 1})
            >>> Program.from_dict(p.to_dict()).params
            {'p': 1}
        """
        missing = [k for k in _KEYS if k not in d]
        if missing:
            raise NtptError(
                f"a Program dict needs keys {list(_KEYS)}, this one lacks {missing}; fix: pass what Program.to_dict() returned"
            )
        kinds = {"source": str, "filename": str, "hypers": dict, "params": dict, "networks": dict}
        for key, kind in kinds.items():
            if not isinstance(d[key], kind):
                raise NtptError(
                    f"a Program dict's {key!r} must be a {kind.__name__}, but it is {type(d[key]).__name__} "
                    f"({d[key]!r:.100}); fix: pass what Program.to_dict() returned (a stored one is corrupted: "
                    "re-run the search that wrote it, or point the task's champion alias at another version)"
                )
        bad_net = next((n for n, net in d["networks"].items() if not isinstance(net, dict)
                        or not isinstance(net.get("state"), dict)), None)
        if bad_net is not None:
            raise NtptError(
                f"a Program dict's network {bad_net!r} must be a NetState {{'signature': str, 'state': dict}}, "
                f"but it is {d['networks'][bad_net]!r:.100}; fix: pass what Program.to_dict() returned"
            )
        listing = listing or _resolve_listing(d.get("listing"))  # a registry lookup, never an import
        model = compile_model(d["source"], d["hypers"], filename=d["filename"], listing=listing)
        return cls(model, d["params"], d["networks"], d.get("meta"))

    def called_networks(self) -> frozenset[str]:
        """The ``@Learn`` networks this program's Outputs depend on (``calls.called_networks``).

        A network the model calls only on paths its Params rule out is not among them;
        the store merges and versions only these.

        Example:
            >>> from ntpt_dist.interpreter.model import compile_source
            >>> m = compile_source("x = Input(2)\\ny = Output(2)\\ny.set_to(x)\\n")
            >>> Program(m, {}).called_networks()
            frozenset()
        """
        return called_networks(self.model.flat, self.params)


# ------------------------------------------------------------------- helpers


# What a stored Program's "listing" may name: the project's own printers, by name. A store's
# text is looked up here and nowhere else, so it can never make a reader import a module.
_LEGACY_LISTING = "ntpt_dist.experiments.listings:"  # how stores recorded these before the registry


def listing_registry() -> dict[str, Any]:
    """The listing functions a stored Program may refer to, by the name it records.

    Example:
        >>> sorted(listing_registry())
        ['listing_2x2', 'listing_math', 'listing_maze']
    """
    return {"listing_2x2": listings.listing_2x2, "listing_math": listings.listing_math,
            "listing_maze": listings.listing_maze}


def _listing_ref(listing: Any) -> Optional[str]:
    """The registry name of ``listing``, so a stored Program keeps its paper-style listing; None for any other
    (the default: the program's source)."""
    if listing is None:
        return None
    return next((name for name, fn in listing_registry().items() if fn is listing), None)


def _resolve_listing(ref: Any) -> Any:
    """The registered listing ``ref`` names (also in the older ``module:function`` form), else None: the
    default listing, the program's source. Nothing named by ``ref`` is imported."""
    if not isinstance(ref, str):
        return None
    name = ref.removeprefix(_LEGACY_LISTING)
    return listing_registry().get(name)


def _char_col(line: str, col: int) -> int:
    """ast columns count UTF-8 bytes; turn one into a character offset."""
    return len(line.encode("utf-8")[:col].decode("utf-8", errors="ignore"))


def _group_by_span(edits):
    """Edits sorted by position, declarations sharing one statement grouped."""
    groups: dict[tuple[int, int], list[Decl]] = {}
    for begin, end, d in edits:
        groups.setdefault((begin, end), []).append(d)
    for (begin, end), group in sorted(groups.items()):
        yield begin, end, group


def _declaration(d: Decl, value: Any) -> str:
    shape = f"[{', '.join(map(str, d.shape))}]" if d.shape else ""
    return f"{d.name} = {value}  # Param({d.size}){shape}"


def _copy_nested(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {k: _copy_nested(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_copy_nested(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.copy()
    return x


def _check_same_shapes(old: FlatModel, new: FlatModel, hypers: dict[str, int]) -> None:
    for d in old.params:
        nd = new.decls.get(d.name)
        if nd is None or nd.kind != "param" or (nd.size, nd.shape) != (d.size, d.shape):
            found = "no such Param" if nd is None or nd.kind != "param" else f"Param({nd.size}) of shape {nd.shape}"
            raise NtptError(
                f"with hypers {hypers} Param {d.name!r} becomes {found}, but the program was learned for "
                f"Param({d.size}) of shape {d.shape}; fix: change only hypers that do not size a Param "
                "(e.g. tape length or time steps)"
            )
    extra = [d.name for d in new.params if d.name not in old.decls]
    if extra:
        raise NtptError(f"with hypers {hypers} the model gains Params {extra} the program has no value for; fix: change other hypers")
    for name, fn in new.learns.items():
        if name in old.learns and old.learns[name].signature != fn.signature:
            raise NtptError(
                f"with hypers {hypers} @Learn {name!r} changes signature from {old.learns[name].signature!r} "
                f"to {fn.signature!r}; the program's network no longer fits; fix: keep the network's sizes fixed"
            )
