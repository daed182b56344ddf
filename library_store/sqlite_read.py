"""Read a program from an embedded sqlite store without importing MLflow.

``import mlflow`` alone costs about 2 s; a user who only wants to run a stored
program (``ntpt_dist.best_program``) should not pay that. This reads the two
registry tables MLflow has kept stable since aliases arrived (2.3):
``registered_model_aliases(name, alias, version)`` and
``model_versions(name, version, source)``, opened read-only. Anything
unexpected (other schema, several matches, a non-local artifact) returns None
and the caller falls back to the MLflow client.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Optional, Union
from urllib.parse import unquote, urlparse

_ALIAS = (
    "SELECT mv.version, mv.source FROM registered_model_aliases a JOIN model_versions mv "
    "ON mv.name = a.name AND mv.version = a.version WHERE a.name = ? AND a.alias = ?"
)
_VERSION = "SELECT version, source FROM model_versions WHERE name = ? AND version = ?"


def program_blob_path(db_path: str, model: str, version: Union[int, str]) -> Optional[tuple[int, str]]:
    """(version, local path of the program blob) of a registered program model, or None to fall back.

    Args:
        db_path: the sqlite database file.
        model: registered model name, e.g. ``"ntpt.program.MATH"``.
        version: a version number or an alias name (``"champion"``).

    Example:
        >>> program_blob_path("/nonexistent/mlflow.db", "ntpt.program.MATH", "champion") is None
        True
    """
    if not os.path.isfile(db_path):
        return None
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5) as connection:
            if isinstance(version, int) or str(version).isdigit():
                rows = connection.execute(_VERSION, (model, int(version))).fetchall()
            else:
                rows = connection.execute(_ALIAS, (model, str(version))).fetchall()
    except sqlite3.Error:
        return None
    if len(rows) != 1:
        return None
    number, source = rows[0]
    parsed = urlparse(source)
    if parsed.scheme not in ("file", ""):
        return None
    return int(number), os.path.join(unquote(parsed.path), "artifacts", "program.npz")
