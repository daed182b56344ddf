"""The paper's tasks by name over the product pipeline (for the experiment scripts).

The pipeline itself lives in :mod:`ntpt_dist.pipeline` (any model) and the
task names in :mod:`ntpt_dist.paper_tasks`; this module keeps the names the
experiments import: ``search_and_merge(task_name, store, ...)`` and ``demo``.
"""

from __future__ import annotations

from ntpt_dist.paper_tasks import demo, search_and_merge
from ntpt_dist.pipeline import SearchReport

__all__ = ["search_and_merge", "demo", "SearchReport"]
