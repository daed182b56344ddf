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


def real_program_available() -> str | None:
    """None if Program.from_dict works on the tiny model here, else why not (a skip reason)."""
    try:
        from ntpt_dist.interpreter.program import Program

        Program.from_dict(program({}))
    except Exception as exc:  # noqa: BLE001 - any failure means: not usable yet
        return f"ntpt_dist.interpreter.program cannot rebuild a program yet ({type(exc).__name__}: {exc})"
    return None
