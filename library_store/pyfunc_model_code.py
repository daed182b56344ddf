"""The code of every stored program's pyfunc model, saved as an MLflow "model from code".

``mlflow.pyfunc.save_model`` copies this file into the model directory and
``mlflow.pyfunc.load_model`` runs that copy, which only builds a
:class:`ProgramModel`; the program itself is data (``artifacts/program.npz``),
so no pickled Python object is ever written or read.
"""

import mlflow
from ntpt_dist.library_store.mlflow_pyfunc import ProgramModel

mlflow.models.set_model(ProgramModel())
