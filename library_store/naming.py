"""Names of the store's MLflow registered models (no MLflow import: the fast read path uses them too)."""

from __future__ import annotations

import re


def program_model(task: str) -> str:
    """Registered model name of a task's programs (``models:/ntpt.program.<task>@champion``).

    MLflow refuses ':' and '/' in model names, so ``ADD2x2:top`` is registered as
    ``ntpt.program.ADD2x2-top`` (the task's own name stays in the tag ``ntpt.task``).

    Example:
        >>> program_model("ADD2x2:top")
        'ntpt.program.ADD2x2-top'
    """
    return "ntpt.program." + re.sub(r"[:/]", "-", task)
