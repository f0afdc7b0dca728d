"""The evaluation harness (``shipyard eval``): Shipyard on tasks in SWE-bench's format.

Module map, in the order a task goes through them: ``task`` (a line of the tasks file),
``source`` (its repository as a fresh clone at the base commit), ``oracle`` (the scripted
models of ``--oracle``), ``run`` (the Shipyard run), ``hidden`` (the hidden tests),
``result`` (the task's result file, which makes an eval resumable), ``report`` (preds,
report.json, report.md), ``progress`` (the stderr line), ``harness`` (all of it, N at a
time) and ``command`` (the CLI). Design: ``docs/evaluation.md``.
"""

from __future__ import annotations

from shipyard.evals.errors import HarnessError, TaskFileError

__all__ = ["HarnessError", "TaskFileError"]
