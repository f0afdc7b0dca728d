"""The evaluation harness's errors.

::

    ShipyardError
    ├── UserInputError
    │   └── TaskFileError     the tasks file cannot be read at all (exit code 2)
    └── HarnessError          one task could not be evaluated (its source, its base commit,
                              its test patch, its oracle patch): recorded as that task's
                              ``error`` status, never as resolved or unresolved; the eval
                              goes on with the next task

A line of the tasks file that does not parse is not an exception that escapes: it becomes
an entry of the report naming its line number (``evals.task.TaskLine``).
"""

from __future__ import annotations

from shipyard.errors import ShipyardError, UserInputError


class TaskFileError(UserInputError):
    """The tasks file is missing or unreadable, or no task matches ``--ids``."""


class HarnessError(ShipyardError):
    """The harness could not evaluate one task; the message says which part and why."""
