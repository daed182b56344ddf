"""Stand-ins shared by the library_store tests: nets whose 'quality' an evaluate function reads."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np

TINY_MODEL = "x = Input(3)\np = Param(3)\ny = Output(3)\nif p == 0:\n    y.set_to(x)\nelse:\n    y.set_to(p)\n"


def uid(prefix: str) -> str:
    """A name no other test uses (the MLflow stores are shared per module)."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def net(quality: float, signature: str = "net(img[4]) -> digit") -> dict[str, Any]:
    """A NetState whose w0[0, 0] is its 'quality' (what fake evaluators return as accuracy)."""
    w0 = np.full((4, 3), quality, dtype=np.float32)
    return {"signature": signature, "state": {"w0": w0, "b0": np.arange(3, dtype=np.float32)}}


def quality(netstate: dict[str, Any]) -> float:
    return float(netstate["state"]["w0"][0, 0])


def program(networks: dict[str, Any], p: int = 1) -> dict[str, Any]:
    """A dict shaped like Program.to_dict() (the tiny model above)."""
    return {"source": TINY_MODEL, "filename": "<tiny>", "hypers": {}, "params": {"p": p},
            "networks": networks, "meta": {"note": "stand-in"}}


def champion_pyfunc(store: Any, task: str) -> Any:
    """``mlflow.pyfunc.load_model("models:/<task's program model>@champion")`` with the store as registry."""
    import mlflow
    from ntpt_dist.library_store.naming import program_model

    previous = mlflow.get_registry_uri()
    mlflow.set_registry_uri(store.uri)
    try:
        return mlflow.pyfunc.load_model(f"models:/{program_model(task)}@champion")
    finally:
        mlflow.set_registry_uri(previous)


# ---------------------------------------------------------- real programs for the store's own gate
# A lookup-table network on 8 integers: a linear layer whose weight row x is one-hot at mapping[x],
# so a program's accuracy under any library is known exactly.


def lookup_source(name: str, unused: str | None = None) -> str:
    """``y = name(x)``; with ``unused``, a Param chooses ``name`` (0) or a 2-class ``unused`` network (1)."""
    nets = f"@Learn([8], 8, hid_sizes=[])\ndef {name}(a):\n    pass\n\n"
    if unused is None:
        return nets + f"x = Input(8)\ny = Output(8)\ny.set_to({name}(x))\n"
    return nets + (
        f"@Learn([8], 2, hid_sizes=[])\ndef {unused}(a):\n    pass\n\n"
        "@Runtime([2], 8)\ndef widen(b):\n    return b\n\n"
        f"x = Input(8)\np = Param(2)\ny = Output(8)\nif p == 0:\n    y.set_to({name}(x))\nelse:\n"
        f"    y.set_to(widen({unused}(x)))\n"
    )


def lookup_net(mapping: list[int], out: int = 8) -> dict[str, Any]:
    """The NetState computing ``x -> mapping[x]`` exactly."""
    w0 = np.zeros((8, out), dtype=np.float32)
    w0[np.arange(8), mapping] = 10.0
    return {"signature": f"(8)->{out}|", "state": {"w0": w0, "b0": np.zeros(out, dtype=np.float32)}}


def lookup_program(name: str, mapping: list[int], unused: str | None = None):
    """A compiled Program calling ``name`` = the lookup ``mapping`` (the ``unused`` network random, never called)."""
    from ntpt_dist.interpreter.model import compile_source
    from ntpt_dist.interpreter.program import Program

    model = compile_source(lookup_source(name, unused), filename="lookup.py")
    nets = {name: lookup_net(mapping)}
    params = {}
    if unused is not None:
        nets[unused] = lookup_net([k % 2 for k in range(8)], out=2)
        params = {"p": 0}
    return Program(model, params, nets)


def lookup_batch(xs: list[int], shift: int = 0) -> dict[str, np.ndarray]:
    """Inputs ``xs``, expected output ``(x + shift) % 8``."""
    x = np.array(xs, dtype=np.int64)
    return {"x": x, "y": (x + shift) % 8}
