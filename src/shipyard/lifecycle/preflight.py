"""Bad input refused before anything is recorded (the CLI's ``run`` and the server's
Shipyard runs): a missing or non-git repository, an unknown base ref, a dirty tree, and (for
the CLI) a policy that does not validate."""

from __future__ import annotations

from shipyard.contracts import RunInput
from shipyard.errors import RepoError
from shipyard.policy.config import load_policy
from shipyard.tools import git


def preflight(run_input: RunInput, *, policy: bool = False) -> None:
    """Refuse bad input before anything is recorded: missing or non-git repo, unknown base
    ref, dirty tree; with ``policy``, also the repository's ``.shipyard.toml`` merged with the
    run's overrides (``PolicyError`` naming the file, line and field). Without it (the
    server), such a policy ends the run ``failed`` at intake and the thread takes corrected
    input."""
    root = git.repo_root(run_input.repo)
    if policy:
        load_policy(root, run_input.policy)
    if run_input.base_ref:
        git.resolve_commit(root, run_input.base_ref)
    dirty = git.is_dirty(root)
    if dirty and not run_input.allow_dirty:
        shown = ", ".join(dirty[:5]) + (" ..." if len(dirty) > 5 else "")
        raise RepoError(
            f"{root} has uncommitted changes ({shown}). Shipyard works from a commit and never "
            "touches your files: commit or stash them, or pass --allow-dirty to start from "
            "the last commit anyway"
        )


__all__ = ["preflight"]
