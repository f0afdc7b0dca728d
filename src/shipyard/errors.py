"""Shipyard's exceptions, split by who can act on them.

::

    ShipyardError                  base; str(err) is a message a person can act on
    ├── UserInputError             the caller gave something wrong (exit code 2; HTTP 400)
    │   ├── RepoError              path missing, not a git repo, dirty tree, bad ref
    │   ├── PlanFileError          a plan file that does not validate (names the field)
    │   ├── PolicyError            a policy file that does not parse or validate (file, line, field)
    │   ├── ScriptError            a scripted-model script that cannot be read or lacks a reply
    │   │                          (llm/scripted.py)
    │   ├── TaskFileError          an eval's tasks file cannot be read, or --ids names no task
    │   │                          (evals/errors.py)
    │   ├── EnvironmentSetupError  [environment]'s interpreter is missing or its setup failed
    │   │                          (tools/environment.py)
    │   ├── NotifyConfigError      a notification endpoint configured wrongly (notify/config.py)
    │   ├── WebhookRefusedError    a webhook URL the server may not call (notify/guard.py; 422)
    │   ├── ResumeShapeError       a LangChain-shaped resume that maps to no decision (hitl.py)
    │   ├── AuthenticationError    no API key where one is required, or a bad one (HTTP 401)
    │   ├── UnknownRunError        no run with that id (HTTP 404)
    │   │   └── NoSuchThreadError  a run enqueued for a thread that is missing or another
    │   │                          owner's (server/runs/records.py)
    │   ├── ThreadTakenError       new input for Shipyard's graph on a thread holding a run
    │   ├── ThreadBusyError        a run with multitask_strategy "reject" on a busy thread
    │   │                          (server/runs/records.py; HTTP 409)
    │   ├── NotWaitingError        approve/resume of a run that is not waiting for that (HTTP 409)
    │   │   └── RunTakenOverError  another process took the run's lease over (lifecycle/lease.py)
    │   └── StaleApprovalError     a decision whose content hash or interrupt id is out of date
    │                              (HTTP 409)
    ├── InfrastructureError        something outside Shipyard is broken (exit code 3; HTTP 503)
    │   ├── DatabaseUnavailableError   says which URL and how to fix it
    │   ├── EndpointUnreachableError   `notify drain` could not reach an endpoint (cli/notify.py)
    │   └── ModelUnavailableError      endpoint unreachable after retries; the run is resumable
    ├── GitError                   a git command failed on a valid repository; carries git's
    │                              message (tools/git.py)
    ├── DeliveryError              a push or pull request did not happen; the run stays
    │   │                          completed, its delivery failed (delivery/errors.py)
    │   ├── DeliveryTargetError    the policy or remote cannot say where (also a UserInputError)
    │   ├── ForgeAuthenticationError   no token, or the forge refused it (names the variable)
    │   ├── ForgePermissionError   the token may not do this (403)
    │   ├── BranchProtectedError   the remote refused the push: a protected branch
    │   ├── PushRejectedError      the remote refused the push otherwise (never forced)
    │   ├── ForgeRateLimitError    the rate limit is still spent after the bounded wait
    │   ├── ForgeRequestError      the forge answered something unexpected (422, 404)
    │   └── ForgeUnreachableError  network or forge down (also an InfrastructureError)
    ├── HarnessError               one eval task could not be evaluated: its error result,
    │                              never scored (evals/errors.py)
    ├── PlanInputError             a plan uploaded in the console's start form does not
    │                              validate (server/console/actions.py)
    ├── CallOverBudgetError        a model call not made: its worst case exceeds the budgets
    │                              left; the run ends needs_human_review (llm/gateway.py)
    └── SandboxError               the launcher could not start a command (not a failing one)
        └── CommandRefusedError    this command as given cannot start (program not found, NUL
                                   in argv, too many forbidden matches): the model is told

Internal signals that never reach a person are plain exceptions next to the code that
raises and catches them: ``RunCancelledError`` (a drive stopped by a cancel request,
lifecycle/lease.py), ``WriteBehindError`` (queued rows not written yet; the step re-runs,
store/writer.py), ``MalformedReplyError`` (a 2xx that is not a chat completion; retried like
a 5xx, llm/factory.py) and ``tools.ToolError`` (below).

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


class AuthenticationError(UserInputError):
    """The caller is not who it must be: no API key where one is required, or a key that is
    unknown or revoked (HTTP 401)."""


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
