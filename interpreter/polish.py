"""Discrete local search around a learned program: the last few Param values gradient descent got wrong.

Gradient descent on the relaxed model often ends one or two Param values away
from a correct program, on a plateau where the relaxed loss no longer points
the way (MATH: docs/results.md). :func:`local_search` climbs from a program by
best-improvement over every program that differs in at most ``max_edits``
Param elements, scored by exact accuracy on data (networks by argmax).

Candidates are scored many at once by the exact executor (``discrete.py``):
candidate ``c``'s copy of instance ``i`` is row ``c * n + i`` of one batch,
with its own Param values, and the networks' answers on the data are
computed once and shared by every candidate.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from .discrete import _calls, _check_networks, _Executor, as_numpy, batch_size, check_inputs, check_tensors
from .errors import DataError
from .ir import Const, Elem, TensorElem
from .program import Program
from .train_config import TrainConfig

__all__ = ["local_search", "polished"]

Edit = tuple[tuple[str, tuple[int, ...]], int]  # ((param name, index), new value)


class _Scorer:
    """Exact accuracy of many programs of one model on one batch, all in one executor pass per chunk."""

    def __init__(self, model: Any, networks: Mapping[str, Any], data: Mapping[str, Any], chunk: int):
        flat = self.flat = model.flat
        self.n = n = batch_size(flat, data)
        self.chunk = chunk
        self.inputs = check_inputs(flat, data, n)
        self.targets = {d.name: as_numpy(data[d.name]).astype(np.int64) for d in flat.outputs if d.name in data}
        if not self.targets:
            raise DataError("no Output in the scoring data; fix: give the observed outputs")
        self.nets = _check_networks(flat, networks)
        tensors = check_tensors(flat, data, n)
        # Network calls on data alone (image cells, Inputs, constants) answer the same for every
        # candidate: compute them once here.
        base = _Executor(flat, dict(self.inputs), tensors, self.nets, n)
        everyone = np.ones(n, dtype=bool)
        self.fixed_calls = {}
        for call in dict.fromkeys(_calls(flat)):
            on_data = all(isinstance(a, (TensorElem, Const)) or (isinstance(a, Elem) and a.name in self.inputs)
                          for a in call.args)
            if call.fn in flat.learns and on_data:
                self.fixed_calls[call] = base.eval(call, everyone).copy()
        learned = {call for call in _calls(flat) if call.fn in flat.learns}
        # network calls on computed values run per row: they need the tensors, tiled per chunk
        self.tensors = tensors if len(learned) > len(self.fixed_calls) else {}

    def __call__(self, candidates: list[dict[str, np.ndarray]]) -> np.ndarray:
        return np.concatenate([self._chunk(candidates[i: i + self.chunk])
                               for i in range(0, len(candidates), self.chunk)] or [np.zeros(0)])

    def _chunk(self, part: list[dict[str, np.ndarray]]) -> np.ndarray:
        flat, n, c = self.flat, self.n, len(part)
        rows = c * n
        values = {name: np.tile(arr, (c,) + (1,) * (arr.ndim - 1)) for name, arr in self.inputs.items()}
        for d in flat.params:
            values[d.name] = np.repeat(np.stack([p[d.name] for p in part]).reshape(c, *d.shape), n, axis=0)
        for d in flat.decls.values():
            if d.kind in ("var", "output"):
                values[d.name] = np.full((rows, *d.shape), -1, dtype=np.int64)
        tensors = {k: np.tile(v, (c,) + (1,) * (v.ndim - 1)) for k, v in self.tensors.items()}
        ex = _Executor(flat, values, tensors, self.nets, rows)
        done = np.ones(rows, dtype=bool)
        ex.cache.update({call: (np.tile(v, c), done.copy()) for call, v in self.fixed_calls.items()})
        for stmt in flat.statements:
            ex.assign(stmt)
        correct = np.ones(rows, dtype=bool)
        for name, target in self.targets.items():
            t = np.tile(target, (c,) + (1,) * (target.ndim - 1)).reshape(rows, -1)
            got = values[name].reshape(rows, -1)
            correct &= ((got == t) | (t < 0)).all(1)
        return correct.reshape(c, n).mean(1)


def _edits(flat, params: Mapping[str, np.ndarray]) -> list[Edit]:
    """Every single-element change of ``params`` (Params fixed by set_to_constant excluded)."""
    fixed = {(e.name, e.index) for e in flat.fixed}
    out = []
    for d in flat.params:
        for index in np.ndindex(*d.shape):
            if (d.name, index) in fixed:
                continue
            out += [((d.name, index), v) for v in range(d.size) if v != params[d.name][index]]
    return out


def _neighbours(edits: list[Edit], max_edits: int, limit: int, rng: np.random.Generator) -> Iterator[tuple[Edit, ...]]:
    """Every combination of up to ``max_edits`` changes (one per element); of a size with more
    than ``limit`` combinations, ``limit`` drawn at random."""
    for k in range(1, max_edits + 1):
        if math.comb(len(edits), k) <= limit:
            for combo in itertools.combinations(edits, k):
                if len({where for where, _ in combo}) == k:  # one new value per element
                    yield combo
            continue
        for _ in range(limit):
            combo = tuple(edits[i] for i in sorted(rng.choice(len(edits), k, replace=False)))
            if len({where for where, _ in combo}) == k:
                yield combo


def _apply(params: Mapping[str, np.ndarray], combo: tuple[Edit, ...]) -> dict[str, np.ndarray]:
    out = dict(params)
    for (name, index), value in combo:
        if out[name] is params[name]:
            out[name] = params[name].copy()
        out[name][index] = value
    return out


def local_search(program: Any, data: Mapping[str, Any], max_edits: int = 2, rounds: int = 3,
                 chunk: int = 512, limit: int = 20000, seed: int = 0) -> tuple[Any, float]:
    """Best-improvement hill climbing over programs within ``max_edits`` Param changes.

    Args:
        program: a ``Program`` (its model and networks are kept; networks are not trained).
        data: the batch that scores programs (exact accuracy, networks by argmax), e.g. a
            few hundred training instances.
        max_edits: how many Param elements one move may change.
        rounds: moves at most; the search also stops at a local optimum or accuracy 1.
        chunk: candidates scored per executor pass.
        limit: at most this many candidates of each number of changes per round (drawn at
            random, from ``seed``, when there are more: large models).

    Returns:
        ``(program, accuracy on data)``: the best program found (``program`` itself when
        no neighbour scores higher).

    Example:
        >>> better, acc = local_search(result.programs[k], train_sample)  # doctest: +SKIP
    """
    flat = program.model.flat
    scorer = _Scorer(program.model, program.networks, data, chunk)
    current = {name: np.asarray(value, dtype=np.int64).copy() for name, value in program.params.items()}
    best_acc = float(scorer([current])[0])
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        if best_acc >= 1.0:
            break
        combos = list(_neighbours(_edits(flat, current), max_edits, limit, rng))
        candidates = [_apply(current, combo) for combo in combos]
        scores = scorer(candidates)
        if not len(scores) or scores.max() <= best_acc:
            break
        pick = int(scores.argmax())
        current, best_acc = candidates[pick], float(scores[pick])
    params = {name: value.tolist() for name, value in current.items()}
    return Program(program.model, params, program.networks), best_acc


def polished(program: Program, data: Mapping[str, Any], config: TrainConfig) -> Program:
    """``program`` after the local search of ``config.polish_edits`` edits, scored on the first
    ``config.polish_sample`` instances of ``data`` (what a restart's program gets when polishing is on)."""
    sample = {k: v[: config.polish_sample] for k, v in data.items()}
    return local_search(program, sample, max_edits=config.polish_edits)[0]
