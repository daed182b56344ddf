"""Paper-style listings of learned programs: ``ntpt_dist.interpreter.listings``, re-exported.

They are defined in the interpreter, where ``Program.from_dict`` looks a stored
listing's name up in a fixed registry (``program.listing_registry``), so the
interpreter never imports ``experiments``.
"""

from ..interpreter.listings import MOVES, listing_2x2, listing_math, listing_maze

__all__ = ["MOVES", "listing_2x2", "listing_math", "listing_maze"]
