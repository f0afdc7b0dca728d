"""Delivering a completed run: push its branch, open its pull request (docs/delivery.md).

``consent`` (may it be delivered, and what the changes approval says), ``target`` (remote,
forge, API, repository), ``tokens`` (from the environment, masked), ``push`` (git with a
one-command credential helper), ``forge`` (the protocol and its HTTP client) with the
``github``, ``gitea`` and ``gitlab`` adapters, ``body`` (the pull request's text) and
``shipment`` (the journaled effects). The graph's ``deliver`` node (``nodes/deliver.py``)
drives them.
"""

from __future__ import annotations

from shipyard.delivery.errors import (
    BranchProtectedError,
    DeliveryError,
    DeliveryTargetError,
    ForgeAuthenticationError,
    ForgePermissionError,
    ForgeRateLimitError,
    ForgeRequestError,
    ForgeUnreachableError,
    PushRejectedError,
)
from shipyard.delivery.forge import Forge, PullRequest, PullRequestDraft

__all__ = [
    "BranchProtectedError",
    "DeliveryError",
    "DeliveryTargetError",
    "Forge",
    "ForgeAuthenticationError",
    "ForgePermissionError",
    "ForgeRateLimitError",
    "ForgeRequestError",
    "ForgeUnreachableError",
    "PullRequest",
    "PullRequestDraft",
    "PushRejectedError",
]
