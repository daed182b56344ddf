"""The search's worker: ``interpreter.restarts.BlockWorker`` (the one training loop), re-exported.

``Model.train`` runs the same loop in process (``interpreter.restarts.train_restarts``);
the search's backends run it in workers (``backends.LocalBackend``, ``ray_backend``).
"""

from ..interpreter.restarts import Assignment, BlockWorker, ModelSpec, real_block, train_config

__all__ = ["Assignment", "BlockWorker", "ModelSpec", "real_block", "train_config"]
