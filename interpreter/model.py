"""The interpreter's surface: :func:`compile_source`, :func:`compile_file` and :class:`Model`.

A :class:`Model` is a compiled model (``compiled.py``) that can also train
(:meth:`Model.train`) and make programs (:meth:`Model.program`). It sits at the
top of the interpreter, so nothing below it imports it and imports point one
way: ir/errors -> parse/check/unroll -> compiled -> program -> engine ->
polish/tune -> policy/records/restarts -> model. ``search`` builds on the same
loop (``restarts.py``) and the interpreter never imports ``search``.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

from .compiled import CompiledModel, Listing, compile_model
from .errors import NtptError
from .policy import JumpPolicy
from .program import Program
from .records import SearchResult
from .restarts import train_restarts
from .train_config import TrainConfig, config_with

__all__ = ["Model", "compile_file", "compile_source"]


class Model(CompiledModel):
    """A compiled NTPT model: the flat IR plus what is needed to recompile, train and run it.

    Args:
        flat: the unrolled model.
        hypers: the hyper values it was compiled with.
        listing: optional pretty printer for learned programs (paper style).
    """

    def train(self, data: Mapping[str, Any], restarts: int = 16, steps: int = 1000, seed: int = 0,
              val_data: Optional[Mapping[str, Any]] = None, config: Optional[TrainConfig] = None,
              library: Optional[Mapping[str, Any]] = None, device: Any = "cpu", progress: bool = False,
              policy: Optional[JumpPolicy] = None, keep_programs: bool = False,
              **config_overrides: Any) -> SearchResult:
        """Train ``restarts`` random restarts at once in this process; the search's in-process backend.

        Restart ``k`` uses ``restart_seed(seed, k)`` and is trained, evaluated every
        ``config.eval_every`` steps and ended by the policy exactly as in
        ``ntpt_dist.search(model, data, backend="local", restarts_per_actor=restarts)``:
        converged once its validation accuracy jumps (then refined), stopped at the
        ``steps`` budget; the winner is the converged restart whose program is most
        accurate on the validation data.

        Args:
            data: training batch (docs/design.md format).
            restarts: number of restarts R, all trained in one block.
            steps: each restart's step budget (``JumpPolicy.budget_steps``; a restart that
                converged near it still trains its ``refine_evals`` evaluations).
            seed: the run's seed.
            val_data: validation batch (default: the training data).
            config: a :class:`TrainConfig`; ``config_overrides`` replace its fields.
            library: ``dict[name, NetState]`` of pre-trained networks.
            device: torch device.
            progress: print one line per evaluation round to stderr.
            policy: a :class:`JumpPolicy` (default ``JumpPolicy(budget_steps=steps)``; ``steps`` is then unused).
            keep_programs: also record the programs of restarts that did not converge
                (``result.programs()``); they never win.

        Returns:
            a ``SearchResult``: ``records`` (one ``RestartRecord`` per restart), ``winner``,
            ``best_program()`` (``None`` when no restart converged).

        Raises:
            NtptError: a bad argument or training option (named), a library network that does not fit.
            DataError: bad data.

        Example:
            >>> result = model.train(data, restarts=16, steps=500, seed=0)  # doctest: +SKIP
            >>> result.best_program().params  # doctest: +SKIP
        """
        _check_count("restarts", restarts, 1)
        _check_count("steps", steps, 1)
        _check_count("seed", seed, 0)
        if policy is not None and not isinstance(policy, JumpPolicy):
            raise NtptError(f"policy must be a JumpPolicy, but got {type(policy).__name__}")
        if config is not None and not isinstance(config, TrainConfig):
            raise NtptError(f"config must be a TrainConfig (or pass its fields as keywords), but got "
                            f"{type(config).__name__}; fix: model.train(data, lr=0.1) or config=TrainConfig(lr=0.1)")
        config = config_with(config, **config_overrides)
        policy = policy or JumpPolicy(budget_steps=steps)
        return train_restarts(self, data, restarts, seed, config=config, policy=policy,
                              eval_every=min(config.eval_every, policy.budget_steps), val_data=val_data,
                              library=library, device=device, progress=progress, keep_programs=keep_programs)

    def program(self, params: Mapping[str, Any], networks: Optional[Mapping[str, Any]] = None) -> Program:
        """A :class:`Program` from explicit Param values (and network states)."""
        return Program(self, params, networks or {})


def _check_count(name: str, value: Any, low: int) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise NtptError(f"{name} must be an integer >= {low}, but got {name}={value!r}; fix: pass e.g. {name}={max(low, 1)}")


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
        NtptError: hypers that are not a dict name -> int.

    Example:
        >>> m = compile_source("x = Input(2)\\ny = Output(2)\\ny.set_to(x)\\n")
    """
    return compile_model(text, hypers, filename=filename, listing=listing, cls=Model)


def compile_file(path: str | Path, hypers: Optional[Mapping[str, int]] = None, listing: Optional[Listing] = None) -> Model:
    """Compile a model file; errors name the file. See :func:`compile_source`."""
    if not isinstance(path, (str, Path)):
        raise NtptError(f"path must be a file path (str or Path), but got {type(path).__name__}")
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise NtptError(f"cannot read model file {str(path)!r}: {e.strerror}") from None
    return compile_source(text, hypers, filename=str(path), listing=listing)
