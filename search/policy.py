"""The restart policy (jump detection, stopping, the winner rule): ``interpreter.policy``, re-exported.

It is defined in the interpreter because the one training loop that
``Model.train`` and the search share asks it (``interpreter/restarts.py``);
re-exporting it here keeps ``ntpt_dist.search.policy`` the search's view of it
while the dependency points one way (search -> interpreter).
"""

from ..interpreter.policy import CONTINUE, CONVERGED, Decision, JumpPolicy, StopReason, StopRule, winner

__all__ = ["CONTINUE", "CONVERGED", "Decision", "JumpPolicy", "StopReason", "StopRule", "winner"]
