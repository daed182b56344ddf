"""Forward pass of one single-copy ``@Learn`` network (a library ``NetState``).

Shared by the discrete executor (argmax of the scores) and the reference
evaluator (softmax probabilities). The network is the MLP of docs/design.md::

    y = relu(x @ w0 + b0) ... @ wL + bL

with ``L = len(hid_sizes)``; weights are float32 numpy arrays (``wi`` is in x out).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .errors import NtptError
from .ir import LearnFn, TensorArg

NetFn = Callable[[list[float]], list[float]]


def check_netstate(fn: LearnFn, net: Any) -> dict[str, np.ndarray]:
    """Validate a ``NetState`` for ``fn`` and return its weights as float32 arrays.

    Args:
        fn: the ``@Learn`` declaration the network must implement.
        net: ``{"signature": str, "state": {"w0": [D, h1], "b0": [h1], ...}}``.

    Returns:
        the state dict ``{"w0": ..., "b0": ..., ...}`` as float32 numpy arrays.

    Raises:
        NtptError: when the signature, a weight's shape or its type (finite real numbers) does not fit ``fn``.

    Example:
        >>> fn = LearnFn("g", (2,), 3, ())
        >>> st = check_netstate(fn, {"signature": fn.signature,
        ...                          "state": {"w0": np.zeros((2, 3)), "b0": np.zeros(3)}})
        >>> st["w0"].dtype
        dtype('float32')
    """
    if not isinstance(net, Mapping) or not isinstance(net.get("state"), Mapping):
        raise NtptError(
            f"network {fn.name!r} must be a NetState dict with keys 'signature' and 'state', got {type(net).__name__}; "
            "fix: pass {'signature': fn.signature, 'state': {'w0': ..., 'b0': ..., ...}}"
        )
    sig = net.get("signature", fn.signature)
    if sig != fn.signature:
        raise NtptError(
            f"network {fn.name!r} has signature {sig!r} but the model declares {fn.signature!r}; "
            "fix: use a network trained for this @Learn declaration (same arguments, output size and hid_sizes)"
        )
    sizes = [fn.in_features, *fn.hid_sizes, fn.out_size]
    state = {}
    for i in range(len(sizes) - 1):
        for key, shape in ((f"w{i}", (sizes[i], sizes[i + 1])), (f"b{i}", (sizes[i + 1],))):
            if key not in net["state"]:
                raise NtptError(f"network {fn.name!r} has no weight {key!r}; fix: its state needs w0, b0 .. w{len(sizes) - 2}, b{len(sizes) - 2}")
            arr = np.asarray(net["state"][key])
            if arr.dtype.kind not in "fiu" or not np.isfinite(arr).all():
                raise NtptError(
                    f"network {fn.name!r}: weight {key!r} must hold finite real numbers, got dtype {arr.dtype}"
                    f"{'' if arr.dtype.kind not in 'fiu' else ' with NaN or inf'}; "
                    "fix: use a network trained for this declaration (a stored one is corrupted)"
                )
            arr = arr.astype(np.float32)
            if arr.shape != shape:
                raise NtptError(
                    f"network {fn.name!r}: weight {key!r} has shape {arr.shape}, expected {shape} for signature {fn.signature!r}; "
                    "fix: use a network trained for this declaration"
                )
            state[key] = arr
    return state


def check_stored_net(name: str, net: Any, what: str) -> dict[str, Any]:
    """Validate a NetState read from a store against the signature it carries.

    A ``@Learn`` signature (``LearnFn.signature``: ``"(2,T1x28x28)->10|128-64"``) fixes every
    weight's shape, so a library version is checked without the model that declares it;
    under any other signature every weight must still be an array of finite real numbers.

    Returns:
        the NetState with its weights as float32 arrays.

    Raises:
        NtptError: naming ``what``: a missing weight, or one of the wrong shape or type.

    Example:
        >>> fn = LearnFn("g", (2, TensorArg((1, 3))), 4, (5,))
        >>> net = random_netstate(fn, np.random.default_rng(0))
        >>> check_stored_net("g", net, "blob")["state"]["w0"].shape
        (5, 5)
    """
    sig = net.get("signature") if isinstance(net, Mapping) else None
    fn = _learn_fn_of(name, sig)
    try:
        if fn is not None:
            return {**net, "signature": sig, "state": check_netstate(fn, net)}
        # a signature of another kind (not a @Learn MLP's): every weight must still be a finite real array
        if not isinstance(net, Mapping) or not isinstance(net.get("state"), Mapping):
            raise NtptError(f"it must be a NetState {{'signature': str, 'state': dict}}, got {net!r:.100}")
        for key, value in net["state"].items():
            arr = np.asarray(value)
            if arr.dtype.kind not in "fiu" or not np.isfinite(arr).all():
                raise NtptError(f"weight {key!r} must hold finite real numbers, got dtype {arr.dtype}")
    except NtptError as exc:
        raise NtptError(
            f"{what} is corrupted: {exc}; fix: re-run the search that wrote it, "
            "or point the network's champion alias at another version"
        ) from exc
    return dict(net)


def _learn_fn_of(name: str, sig: Any) -> Any:
    """The LearnFn whose signature is ``sig`` (``"(2,T1x28x28)->10|128-64"``), or None."""
    try:
        head, hidden = str(sig).split("|")
        args_text, out = head.removeprefix("(").split(")->")
        args = tuple(TensorArg(tuple(int(x) for x in a[1:].split("x"))) if a.startswith("T") else int(a)
                     for a in args_text.split(",") if a)
        fn = LearnFn(name, args, int(out), tuple(int(h) for h in hidden.split("-") if h))
    except ValueError:
        return None
    if fn.signature != sig or fn.out_size < 1 or min((*fn.hid_sizes, fn.in_features)) < 1:
        return None
    return fn


def mlp_scores(state: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Pre-softmax scores of the MLP on a batch of feature rows.

    Args:
        state: checked weights (see :func:`check_netstate`).
        x: float array ``[N, D]``.

    Returns:
        float32 array ``[N, K]``.

    Example:
        >>> st = {"w0": np.eye(2, dtype=np.float32), "b0": np.zeros(2, np.float32)}
        >>> mlp_scores(st, np.array([[0.0, 1.0]])).tolist()
        [[0.0, 1.0]]
    """
    n_layers = len(state) // 2
    y = np.asarray(x, dtype=np.float32)
    for i in range(n_layers):
        y = y @ state[f"w{i}"] + state[f"b{i}"]
        if i < n_layers - 1:
            y = np.maximum(y, 0.0)
    return y


def net_fn(fn: LearnFn, net: Any, one_hot: bool = False) -> NetFn:
    """A plain callable ``features -> probabilities`` for the reference evaluator.

    Args:
        fn: the ``@Learn`` declaration.
        net: its NetState.
        one_hot: return the one-hot argmax instead of the softmax (the relaxed
            model with discretised network outputs).

    Returns:
        a function from a list of ``fn.in_features`` floats to ``fn.out_size`` floats.

    Example:
        >>> fn = LearnFn("g", (2,), 2, ())
        >>> f = net_fn(fn, {"signature": fn.signature,
        ...                 "state": {"w0": np.eye(2), "b0": np.zeros(2)}}, one_hot=True)
        >>> f([0.0, 1.0])
        [0.0, 1.0]
    """
    state = check_netstate(fn, net)

    def call(features: list[float]) -> list[float]:
        scores = [float(s) for s in mlp_scores(state, np.asarray([features], dtype=np.float64))[0]]
        if one_hot:
            best = max(range(len(scores)), key=lambda k: scores[k])
            return [1.0 if k == best else 0.0 for k in range(len(scores))]
        top = max(scores)
        exps = [math.exp(s - top) for s in scores]
        total = sum(exps)
        return [e / total for e in exps]

    return call


def random_netstate(fn: LearnFn, rng: np.random.Generator, scale: float = 1.0) -> dict[str, Any]:
    """A NetState with random weights (tests and examples).

    Example:
        >>> net = random_netstate(LearnFn("g", (3,), 2, (4,)), np.random.default_rng(0))
        >>> net["state"]["w1"].shape
        (4, 2)
    """
    sizes = [fn.in_features, *fn.hid_sizes, fn.out_size]
    state = {}
    for i in range(len(sizes) - 1):
        state[f"w{i}"] = (rng.standard_normal((sizes[i], sizes[i + 1])) * scale / math.sqrt(sizes[i])).astype(np.float32)
        state[f"b{i}"] = (rng.standard_normal(sizes[i + 1]) * 0.1 * scale).astype(np.float32)
    return {"signature": fn.signature, "state": state}
