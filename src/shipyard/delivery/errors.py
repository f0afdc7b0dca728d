"""Why a delivery did not happen, split by who can act on it (docs/delivery.md).

::

    DeliveryError                 base; str(err) names what to do, never a token
    ├── DeliveryTargetError       the policy or the remote cannot say where to deliver (fix the
    │                             ``[deliver]`` table or the remote): a UserInputError too
    ├── ForgeAuthenticationError  no token, or the forge refused it: names the variable
    ├── ForgePermissionError      the token is valid but may not do this (403)
    ├── BranchProtectedError      the remote refused the push: the branch is protected
    ├── PushRejectedError         the remote refused the push for another reason (it holds
    │                             commits the run does not have: Shipyard never forces)
    ├── ForgeRateLimitError       the forge's rate limit, still spent after the bounded wait
    ├── ForgeRequestError         the forge answered something else unexpected (422, 404, 5xx)
    └── ForgeUnreachableError     the network or the forge is down: an InfrastructureError;
                                  ``shipyard deliver RUN`` retries

A delivery that raises one of these leaves the run ``completed`` with its delivery
``failed`` and the message as the reason.
"""

from __future__ import annotations

from datetime import UTC, datetime

from shipyard.errors import InfrastructureError, ShipyardError, UserInputError


class DeliveryError(ShipyardError):
    """Base of every delivery failure."""


class DeliveryTargetError(DeliveryError, UserInputError):
    """Where to deliver cannot be decided: a missing remote, an unknown forge, no base."""


class ForgeAuthenticationError(DeliveryError):
    """No token in the environment, or the forge refused it; the message names the variable."""


class ForgePermissionError(DeliveryError):
    """The token is valid but lacks the permission (HTTP 403 without a rate limit)."""


class BranchProtectedError(DeliveryError):
    """The remote refused the push because the branch is protected."""


class PushRejectedError(DeliveryError):
    """The remote refused the push (not fast-forward, a hook, or another reason)."""


class ForgeRateLimitError(DeliveryError):
    """The forge's rate limit is spent and resets later than Shipyard waits."""

    def __init__(self, message: str, reset_at: float | None = None) -> None:
        when = (
            f"; it resets at {datetime.fromtimestamp(reset_at, UTC).isoformat(timespec='seconds')}"
            if reset_at is not None
            else ""
        )
        super().__init__(message + when)
        self.reset_at = reset_at


class ForgeRequestError(DeliveryError):
    """The forge answered a request with something unexpected; ``status``: its HTTP status,
    when it answered one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ForgeUnreachableError(DeliveryError, InfrastructureError):
    """The remote or the forge's API could not be reached; delivering again retries."""


__all__ = [
    "BranchProtectedError",
    "DeliveryError",
    "DeliveryTargetError",
    "ForgeAuthenticationError",
    "ForgePermissionError",
    "ForgeRateLimitError",
    "ForgeRequestError",
    "ForgeUnreachableError",
    "PushRejectedError",
]
