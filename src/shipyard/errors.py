"""Shipyard's exceptions, split by who can act on them.

::

    ShipyardError                  base; str(err) is a message a person can act on
    ├── UserInputError             the caller gave something wrong (exit code 2)
    │   ├── RepoError              path missing, not a git repo, dirty tree, bad ref
    │   ├── PlanFileError          a plan file that does not validate (names the field)
    │   ├── PolicyError            a policy file that does not parse or validate (file, line, field)
    │   ├── UnknownRunError        no run with that id
    │   ├── NotWaitingError        approve/resume of a run that is not waiting for that
    │   └── StaleApprovalError     a decision whose content hash or interrupt id is out of date
    ├── InfrastructureError        something outside Shipyard is broken (exit code 3)
    │   ├── DatabaseUnavailableError   says which URL and how to fix it
    │   └── ModelUnavailableError      endpoint unreachable after retries; the run is resumable
    └── SandboxError               the launcher could not start a command (not a failing one)
        └── CommandRefusedError    this command as given cannot start (program not found, NUL
                                   in argv, too many forbidden matches): the model is told

Errors the developer model can fix (bad path, no match, failing command) are not exceptions
that escape a node: they are ``tools.ToolError`` values returned to the model as tool results.
Expected endings (budget spent, rejected, blocked by policy) are run statuses, not exceptions.
"""

from __future__ import annotations


class ShipyardError(Exception):
    """Base of every error Shipyard raises on purpose."""

    exit_code = 1


class UserInputError(ShipyardError):
    """Something the caller gave is wrong; fixing the input fixes it."""

    exit_code = 2


class RepoError(UserInputError):
    """The target repository cannot be used (missing, not git, dirty, unknown ref)."""


class PlanFileError(UserInputError):
    """A user-supplied plan does not validate."""


class PolicyError(UserInputError):
    """A policy file is invalid; the message names the file, line and field."""

    def __init__(
        self, message: str, *, path: str = "", line: int | None = None, field: str = ""
    ) -> None:
        where = path + (f":{line}" if line is not None else "")
        super().__init__(f"{where}: {message}" if where else message)
        self.path = path
        self.line = line
        self.field = field


class UnknownRunError(UserInputError):
    """No run (or thread) with the given id exists."""


class ThreadTakenError(UserInputError):
    """New input for Shipyard's graph on a thread that already holds a run."""


class NotWaitingError(UserInputError):
    """The run is not stopped at the approval or pause the command expects."""


class StaleApprovalError(UserInputError):
    """The decision does not match what is pending (content hash or interrupt id)."""


class InfrastructureError(ShipyardError):
    """Something Shipyard depends on is unavailable; the run is kept and can resume."""

    exit_code = 3


class DatabaseUnavailableError(InfrastructureError):
    """Postgres cannot be reached; the message names the URL and the fix."""


class ModelUnavailableError(InfrastructureError):
    """The model endpoint failed after all retries."""


class SandboxError(ShipyardError):
    """The launcher could not start a command (as opposed to a command that failed)."""


class CommandRefusedError(SandboxError):
    """The command as given cannot start, though the sandbox works: the developer model
    gets the message as the command's result and can ask for another one."""
