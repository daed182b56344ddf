"""How restarts are trained: :class:`TrainConfig` (every option of a training run) and :func:`config_with`.

Kept apart from ``engine.py`` (which imports both from here) so that the search,
the CLI and the recipes can build and check configurations without the engine.
"""

from __future__ import annotations

import ast
import dataclasses
import numbers
from dataclasses import dataclass
from typing import Any, Optional

from .errors import NtptError

__all__ = ["TrainConfig", "config_with", "parse_option"]


@dataclass
class TrainConfig:
    """How restarts are trained (keyword arguments with defaults; see docs/design.md).

    Attributes:
        optimizer: ``"rmsprop"`` or ``"adam"`` (per-slot state; Adam runs fused, see ``optim.py``).
        lr: learning rate of the Params.
        net_lr_scale: rate of library networks relative to ``lr`` (the paper: 100x smaller).
        new_net_lr_scale: rate of networks not in the library, relative to ``lr``.
        batch_size: instances per step and restart, drawn per restart; ``None``
            (or >= the data size) trains every restart on the full data.
        grad_noise: eta of the Gaussian gradient noise on Params, variance ``eta / (1 + t)^0.55``.
        entropy_bonus: weight of the Params' entropy subtracted from the loss,
            decaying as ``exp(-entropy_decay * t)``.
        entropy_decay: see ``entropy_bonus``.
        clip_norm: per-restart global gradient norm limit (``None``: no clipping).
        init_scale: Param logits start as ``init_scale * log(Exp(1))`` (softmax = Dirichlet(1) at 1).
        net_init_scale: scale of new networks' He-normal initial weights.
        eval_every: steps between validation evaluations (``Model.train`` and the search; the
            search's own ``eval_every`` argument, when given, must agree with it).
        freeze_library: library networks do not train; every restart uses the library
            copy, and their outputs on the training data are computed once for all
            slots, so a restart costs about what the symbolic program search costs.
        polish_edits: after training, climb from each restart's program by changing up to
            this many Param values at a time, scored exactly on ``polish_sample`` training
            instances (``interpreter/polish.py``); 0 = off.
        polish_sample: training instances that score the local search.
        augment_shift: shift every training image (an InputTensor cell of 2+ dims) by a
            random offset of up to this many pixels each way, drawn per instance from
            the restart's generator (zero fill); 0 = off. Validation data is never shifted.
        rms_decay: RMSProp's moving-average decay.
        betas: Adam's moment decays.
        eps: optimizer epsilon.

    Example:
        >>> TrainConfig(lr=0.1, batch_size=None).optimizer
        'adam'
    """

    # Defaults measured on ADD2x2/APPLY2x2 (docs/results.md): Adam at 0.05 for the Params,
    # new networks at 0.02x (1e-3, a usual MLP rate), library networks at 0.01x (the paper's 100x slower).
    optimizer: str = "adam"
    lr: float = 0.05
    net_lr_scale: float = 0.01
    new_net_lr_scale: float = 0.02
    batch_size: Optional[int] = 32
    grad_noise: float = 0.0
    entropy_bonus: float = 0.0
    entropy_decay: float = 0.005
    clip_norm: Optional[float] = 1.0
    init_scale: float = 1.0
    net_init_scale: float = 1.0
    eval_every: int = 25
    freeze_library: bool = False
    polish_edits: int = 0
    polish_sample: int = 100
    augment_shift: int = 0
    rms_decay: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-6

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            _check_type(field.name, getattr(self, field.name), field.type, field.default)
        if self.optimizer not in ("rmsprop", "adam"):
            raise NtptError(f"optimizer must be 'rmsprop' or 'adam', got {self.optimizer!r}; fix: pick one of them")
        for name in ("lr", "net_lr_scale", "new_net_lr_scale", "grad_noise", "entropy_bonus", "entropy_decay", "init_scale"):
            if not getattr(self, name) >= 0:
                raise NtptError(f"TrainConfig.{name} must be >= 0, got {getattr(self, name)!r}; fix: pass a non-negative number")
        if self.batch_size is not None and self.batch_size < 1:
            raise NtptError(f"batch_size must be >= 1 or None (full batch), got {self.batch_size}; fix: pass a positive size")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise NtptError(f"clip_norm must be > 0 or None, got {self.clip_norm}; fix: pass a positive norm or None")
        if self.polish_edits < 0 or self.polish_sample < 1:
            raise NtptError(f"polish_edits must be >= 0 and polish_sample >= 1, got {self.polish_edits} and "
                            f"{self.polish_sample}; fix: pass 0 (off) or a small number of edits, and a sample size")
        if self.augment_shift < 0:
            raise NtptError(f"augment_shift must be >= 0, got {self.augment_shift}; fix: pass 0 (off) or a pixel count")
        if self.eval_every < 1:
            raise NtptError(f"eval_every must be >= 1, got {self.eval_every}; fix: pass a positive number of steps")


_KINDS = {  # a field's annotation (a string: annotations are postponed) -> accepted types, what to say
    "str": ((str,), "a string"),
    "float": ((numbers.Real,), "a number"),  # numpy's scalars included
    "int": ((numbers.Integral,), "an integer"),
    "bool": ((bool,), "true or false"),
}


def _check_type(name: str, value: Any, annotation: Any, default: Any) -> None:
    """An NtptError unless ``value`` has the field's type (``lr="abc"`` failed later as a raw TypeError)."""
    annotation = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    optional = annotation.startswith("Optional[")
    kind = annotation[len("Optional["):-1] if optional else annotation
    if optional and value is None:
        return
    if kind.startswith("tuple["):  # betas: a pair of numbers
        ok = isinstance(value, (tuple, list)) and len(value) == kind.count(",") + 1 and all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)
        expected = f"a tuple of {kind.count(',') + 1} numbers"
    elif kind in _KINDS:
        types, expected = _KINDS[kind]
        ok = isinstance(value, types) and (kind == "bool" or not isinstance(value, bool))
        ok = ok or (kind == "bool" and getattr(getattr(value, "dtype", None), "kind", "") == "b")  # numpy's
    else:
        return  # a kind of field this check does not know yet
    if not ok:
        raise NtptError(
            f"TrainConfig.{name} must be {expected}{' or None' if optional else ''}, but got {value!r} "
            f"({type(value).__name__}); fix: pass e.g. {name}={default!r}"
        )


def config_with(config: Optional[TrainConfig] = None, **options: Any) -> TrainConfig:
    """``config`` (default: ``TrainConfig()``) with ``options`` replacing its fields.

    Raises:
        NtptError: an option that is not a TrainConfig field, or a bad value.

    Example:
        >>> config_with(init_scale=3.0).init_scale
        3.0
    """
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise NtptError(f"unknown training option(s) {unknown}; fix: use TrainConfig fields {sorted(known)}")
    return dataclasses.replace(config or TrainConfig(), **options)


def parse_option(text: str) -> tuple[str, Any]:
    """``"KEY=VALUE"`` (a command-line training option) -> ``(key, value)``.

    The value is a Python literal (int, float, tuple, ``None``, ``True``; also
    lower-case ``none``/``true``/``false``), else kept as a string.

    Raises:
        ValueError: no ``=`` or an empty key.

    Example:
        >>> parse_option("init_scale=3.0"), parse_option("freeze_library=true"), parse_option("optimizer=rmsprop")
        (('init_scale', 3.0), ('freeze_library', True), ('optimizer', 'rmsprop'))
    """
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key:
        raise ValueError(f"expected KEY=VALUE (a TrainConfig field), got {text!r}")
    named = {"none": None, "true": True, "false": False}
    if raw.lower() in named:
        return key, named[raw.lower()]
    try:
        return key, ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return key, raw
