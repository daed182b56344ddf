"""A stored program as an ``mlflow.pyfunc`` model.

``mlflow.pyfunc.load_model("models:/ntpt.program.MATH@champion").predict(inputs)``
loads the program blob (``artifacts/program.npz``, see ``codec.py``) into a
``Program`` and runs it exactly (discrete execution, no torch marginals). The
model is an MLflow "model from code" (``pyfunc_model_code.py``), not a pickle.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

import mlflow.pyfunc
import numpy as np

from .codec import read_file

PROGRAM_ARTIFACT = "program"  # key in the pyfunc's artifacts: the blob written by codec.encode
MODEL_CODE = Path(__file__).with_name("pyfunc_model_code.py")  # the model's code, copied into every model directory


def to_inputs(model_input: Any) -> dict[str, np.ndarray]:
    """A batch dict ``name -> array`` from a dict or a pandas DataFrame (one column per input).

    DataFrame cells may hold lists or arrays (an input with a shape); they are stacked.

    Example:
        >>> import pandas as pd
        >>> to_inputs(pd.DataFrame({"a": [[1, 2], [3, 4]]}))["a"].shape
        (2, 2)
    """
    if isinstance(model_input, Mapping):
        return {str(k): np.asarray(v) for k, v in model_input.items()}
    columns = getattr(model_input, "columns", None)
    assert columns is not None, f"pyfunc input must be a dict or a DataFrame, got {type(model_input).__name__}"
    return {str(c): np.stack([np.asarray(x) for x in model_input[c].tolist()]) for c in columns}


class ProgramModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper: ``predict(inputs dict or DataFrame, params={"hypers": {...}})`` -> outputs dict."""

    # The input is a dict or a DataFrame of array cells, which MLflow's type-hint
    # validation cannot express; without this it warns at class creation.
    _skip_type_hint_validation = True

    def load_context(self, context) -> None:
        from ..interpreter.program import Program

        path = context.artifacts[PROGRAM_ARTIFACT]
        record = read_file(path, f"program artifact of pyfunc model at {path}")
        self.record = record
        self.program = Program.from_dict(record["program"])

    def predict(self, context, model_input, params: Optional[dict[str, Any]] = None) -> dict[str, np.ndarray]:
        hypers = (params or {}).get("hypers")
        return self.program.run(to_inputs(model_input), hypers=hypers)


def signature(hypers: Mapping[str, Any]) -> Optional[Any]:
    """The model's MLflow signature: a params schema with one parameter ``hypers``.

    ``hypers`` is an object whose optional properties are the model's ``Hyper``
    names (integers), defaulting to the values the program was learned with, so
    ``predict(batch, params={"hypers": {"N": 16}})`` runs it at another size. Inputs
    are not in the schema: they are a dict or a DataFrame of array cells whose shapes
    depend on the hypers, and the program checks them itself. None for a model without
    ``Hyper`` declarations (nothing to pass).

    Example:
        >>> signature({"N": 2}).params.to_dict()[0]["properties"]
        {'N': {'type': 'long', 'required': False}}
    """
    from mlflow.models import ModelSignature
    from mlflow.types import DataType
    from mlflow.types.schema import Object, ParamSchema, ParamSpec, Property

    values = {str(k): int(v) for k, v in hypers.items() if isinstance(v, (int, np.integer)) and not isinstance(v, bool)}
    if not values:
        return None
    spec = Object([Property(name, DataType.long, required=False) for name in sorted(values)])
    return ModelSignature(params=ParamSchema([ParamSpec("hypers", spec, default=values)]))


def save_program_model(path: str, blob_path: str, hypers: Optional[Mapping[str, Any]] = None) -> None:
    """Write a pyfunc model directory at ``path`` whose program is the blob at ``blob_path``.

    The model is saved from code (``pyfunc_model_code.py``, copied into the directory),
    not as a pickled :class:`ProgramModel`: loading it builds a fresh ProgramModel, which
    reads the blob with ``allow_pickle=False``. ``hypers`` (the program's ``Hyper``
    values) make its :func:`signature`.
    """
    with warnings.catch_warnings():  # the inputs are a batch of the task's arrays: no one example fits every use
        warnings.filterwarnings("ignore", message=".*input example was not provided")
        mlflow.pyfunc.save_model(
            path, python_model=str(MODEL_CODE), artifacts={PROGRAM_ARTIFACT: blob_path},
            pip_requirements=["ntpt-dist"], signature=signature(hypers or {}),
        )
