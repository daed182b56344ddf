"""What every benchmark does with its result: the command that made it, and the JSON printed and saved.

Imported by the scripts in this folder (run as ``python benchmarks/<script>.py``,
so the folder is on ``sys.path``).
"""

from __future__ import annotations

import json
import sys
from typing import Any, Optional


def command(script: str, argv: Optional[list[str]]) -> str:
    """The command line that ran ``script`` with ``argv`` (``sys.argv`` when called as a script).

    Example:
        >>> command("math_seeds.py", ["--seeds", "0"])
        'python benchmarks/math_seeds.py --seeds 0'
    """
    return f"python benchmarks/{script} " + " ".join(argv if argv is not None else sys.argv[1:])


def emit(out: Any, path: Optional[str]) -> None:
    """Print ``out`` as indented JSON, and write the same text to ``path`` when one is given."""
    text = json.dumps(out, indent=2)
    print(text)
    if path:
        with open(path, "w") as f:
            f.write(text + "\n")
