"""Where a delivery goes: the remote, the forge, its API, the repository and the base branch.

The ``[deliver]`` table says what it says; everything it leaves out comes from the remote's
URL (``https://host/owner/name.git``, ``git@host:owner/name.git``, ``ssh://…``): the forge by
host (``github.com``; a host naming ``gitlab``; ``codeberg.org`` or a host naming ``gitea`` or
``forgejo``), the API root (GitHub ``https://api.github.com``, Enterprise ``/api/v3``, Gitea
``/api/v1``, GitLab ``/api/v4``) and the repository path. The base branch defaults to the
remote's default branch. A plain path remote has no forge: it takes a push, and a pull request
then needs ``forge``, ``api_url`` and ``repository`` in the table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from shipyard.delivery.errors import DeliveryTargetError
from shipyard.policy.deliver import DeliverPolicy, Forge

_SCP = re.compile(r"^(?:[^@/\s]+@)?(?P<host>[^:/\s]+):(?P<path>[^/].*)$")
_API_PATHS: dict[Forge, str] = {"github": "/api/v3", "gitea": "/api/v1", "gitlab": "/api/v4"}


@dataclass(frozen=True)
class RemoteLocation:
    """What a remote URL says: the host (None for a path), web scheme and repository path."""

    host: str | None
    scheme: str
    path: str | None


@dataclass(frozen=True)
class ForgeTarget:
    """The forge API a pull request is opened through."""

    forge: Forge
    api_url: str
    repository: str


def locate(url: str) -> RemoteLocation:
    """Parse a git remote URL; a local path or ``file://`` URL has no host."""
    if "://" in url:
        parts = urlsplit(url)
        if parts.scheme == "file" or not parts.hostname:
            return RemoteLocation(None, "https", None)
        scheme = parts.scheme if parts.scheme in ("http", "https") else "https"
        host = parts.hostname + (f":{parts.port}" if parts.port and scheme != "https" else "")
        return RemoteLocation(host, scheme, _repo_path(parts.path))
    if (scp := _SCP.match(url)) is not None and "/" not in scp["host"]:
        return RemoteLocation(scp["host"], "https", _repo_path(scp["path"]))
    return RemoteLocation(None, "https", None)


def _repo_path(path: str) -> str | None:
    path = path.strip("/")
    path = path[: -len(".git")] if path.endswith(".git") else path
    return path if "/" in path else None


def forge_of(host: str | None) -> Forge | None:
    """The forge a host is known to run, or None."""
    if host is None:
        return None
    name = host.split(":")[0].lower()
    if name == "github.com" or name.startswith("github."):
        return "github"
    if "gitlab" in name:
        return "gitlab"
    if name == "codeberg.org" or "gitea" in name or "forgejo" in name:
        return "gitea"
    return None


def forge_target(policy: DeliverPolicy, url: str) -> ForgeTarget:
    """The forge, API root and repository for a pull request on ``url``'s remote;
    ``DeliveryTargetError`` naming the ``[deliver]`` key to set when one cannot be told."""
    where = locate(url)
    forge = policy.forge or forge_of(where.host)
    if forge is None:
        raise DeliveryTargetError(
            f"cannot tell which forge the remote {_shown(url)} is on: set [deliver] forge "
            '("github", "gitea" or "gitlab")'
        )
    api_url = policy.api_url or _api_url(forge, where)
    if api_url is None:
        raise DeliveryTargetError(
            f"the remote {_shown(url)} names no host: set [deliver] api_url for the {forge} API"
        )
    repository = policy.repository or where.path
    if repository is None:
        raise DeliveryTargetError(
            f"cannot tell the repository from the remote {_shown(url)}: set [deliver] "
            'repository = "owner/name"'
        )
    return ForgeTarget(forge, api_url, repository)


def _api_url(forge: Forge, where: RemoteLocation) -> str | None:
    if where.host is None:
        return None
    if forge == "github" and where.host.lower() == "github.com":
        return "https://api.github.com"
    return f"{where.scheme}://{where.host}{_API_PATHS[forge]}"


def _shown(url: str) -> str:
    """A URL as it may be shown: without any credentials it holds."""
    if "://" not in url:
        return repr(url)
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return repr(url)
    netloc = parts.hostname or ""
    netloc += f":{parts.port}" if parts.port else ""
    return repr(parts._replace(netloc=netloc).geturl())


__all__ = ["ForgeTarget", "RemoteLocation", "forge_of", "forge_target", "locate"]
