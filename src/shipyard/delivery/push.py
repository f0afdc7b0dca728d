"""Pushing the run branch: never forced, never to the base branch, only the run's own branch.

Every command is plain ``git`` in the user's repository (the run's worktree shares its git
directory and remotes) with the repository's hooks switched off. A token reaches git only
through a credential helper given for that one command: ``-c credential.helper=`` clears the
configured helpers, then a shell function prints the username and password from two
variables that only this git process's environment holds. The token is never in a URL, in a
config file, in argv or in the process list.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from shipyard.delivery.errors import (
    BranchProtectedError,
    DeliveryTargetError,
    ForgeAuthenticationError,
    ForgeUnreachableError,
    PushRejectedError,
)
from shipyard.delivery.tokens import Token
from shipyard.redact import redact

TIMEOUT_S = 300.0
"""The longest one git command talking to a remote may take."""

_USER = "SHIPYARD_GIT_USERNAME"
_PASSWORD = "SHIPYARD_GIT_PASSWORD"  # noqa: S105 - the variable's name, not a password
_HELPER = (
    '!f() { test "$1" = get || exit 0; '
    f'printf \'username=%s\\npassword=%s\\n\' "${_USER}" "${_PASSWORD}"; }}; f'
)
_UNREACHABLE = re.compile(
    r"Could not resolve host|Failed to connect|Connection refused|Connection timed out|"
    r"Could not read from remote repository|does not appear to be a git repository|"
    r"unable to access|Operation timed out|Empty reply from server|returned error: 5\d\d",
    re.IGNORECASE,
)
_AUTH = re.compile(
    r"Authentication failed|could not read (?:Username|Password)|returned error: 40[13]|"
    r"terminal prompts disabled|HTTP Basic: Access denied|invalid credentials",
    re.IGNORECASE,
)
_PROTECTED = re.compile(r"protected branch|GH006|GL-HOOK-ERR.*protect|is protected", re.I)
_NOT_FORWARD = re.compile(r"non-fast-forward|fetch first|\(stale info\)", re.IGNORECASE)


@dataclass(frozen=True)
class Credential:
    """What the credential helper answers: a forge's username convention and a token."""

    username: str
    token: Token


class Remote:
    """One remote of the user's repository, as git sees it."""

    def __init__(self, repo: Path, name: str, credential: Credential | None = None) -> None:
        self.repo = repo
        self.name = name
        self.credential = credential

    def url(self) -> str:
        """The remote's push URL; ``DeliveryTargetError`` when there is no such remote."""
        proc = self._git("remote", "get-url", "--push", self.name, network=False)
        if proc.returncode != 0:
            raise DeliveryTargetError(
                f"the repository {self.repo} has no remote {self.name!r}: add it "
                f"(git remote add {self.name} URL) or set [deliver] remote"
            )
        return proc.stdout.strip()

    def branch_commit(self, branch: str) -> str | None:
        """The commit ``refs/heads/<branch>`` is at on the remote, or None when it has none."""
        out = self._checked("ls-remote", "--heads", self.name, f"refs/heads/{branch}")
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            if ref == f"refs/heads/{branch}":
                return sha
        return None

    def default_branch(self) -> str | None:
        """The branch the remote's ``HEAD`` names, or None when it names none."""
        out = self._checked("ls-remote", "--symref", self.name, "HEAD")
        for line in out.splitlines():
            if line.startswith("ref: refs/heads/") and line.endswith("\tHEAD"):
                return line[len("ref: refs/heads/") : -len("\tHEAD")]
        return None

    def push(self, commit: str, branch: str) -> None:
        """Push ``commit`` to ``refs/heads/<branch>``: never forced (no ``+``, no
        ``--force``), so a remote branch with commits the run does not have refuses it."""
        self._checked(
            "push", "--porcelain", "--no-verify", self.name, f"{commit}:refs/heads/{branch}"
        )

    def _checked(self, *args: str) -> str:
        proc = self._git(*args, network=True)
        if proc.returncode != 0:
            raise _push_error(self, args[0], proc.stdout + proc.stderr)
        return proc.stdout

    def _git(self, *args: str, network: bool) -> subprocess.CompletedProcess[str]:
        argv = ["git", "-c", "core.hooksPath=/dev/null", "-c", "credential.helper="]
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C", GIT_ASKPASS="", SSH_ASKPASS="")
        if network and self.credential is not None:
            argv += ["-c", f"credential.helper={_HELPER}"]
            env[_USER] = self.credential.username
            env[_PASSWORD] = self.credential.token.value
        argv += ["-C", str(self.repo), *args]
        try:
            return subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            raise ForgeUnreachableError(
                f"git {args[0]} to remote {self.name!r} took more than {TIMEOUT_S:.0f} s"
            ) from None


def _push_error(remote: Remote, command: str, output: str) -> Exception:
    """The typed error for git's failing ``command`` (its words, secrets masked)."""
    said = redact(output.strip())[-800:]
    where = f"git {command} to remote {remote.name!r}"
    if _PROTECTED.search(output):
        return BranchProtectedError(f"{where} was refused: the branch is protected ({said})")
    if _NOT_FORWARD.search(output):
        return PushRejectedError(
            f"{where} was refused: the remote branch has commits this run does not have, and "
            f"Shipyard never force-pushes ({said})"
        )
    if _AUTH.search(output):
        variable = remote.credential.token.variable if remote.credential else None
        fix = f"check the token in {variable}" if variable else "set a forge token"
        return ForgeAuthenticationError(f"{where}: authentication failed; {fix} ({said})")
    if _UNREACHABLE.search(output):
        return ForgeUnreachableError(f"{where}: the remote cannot be reached ({said})")
    return PushRejectedError(f"{where} failed: {said}")


__all__ = ["TIMEOUT_S", "Credential", "Remote"]
