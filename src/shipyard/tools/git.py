"""The run's worktree: plain functions over the ``git`` command line.

Contract shared by every function here:

* Git runs as a subprocess with a sanitized environment: no ``GIT_*`` variable of the
  parent leaks in (a stray ``GIT_DIR`` or ``GIT_INDEX_FILE`` would point git at the user's
  checkout), prompts are off, and run commits carry a fixed identity.
* Hooks and fsmonitor are disabled for every call: a ``pre-commit`` hook would otherwise run
  agent-written code outside the sandbox, and ``post-checkout`` would run when a worktree is
  created.
* The user's checkout and its index are never written. Only :func:`repo_root`,
  :func:`is_dirty`, :func:`resolve_commit` and the worktree bookkeeping of
  :func:`create_worktree` / :func:`remove_worktree` look at the user's repository; everything
  else works on the run's worktree.
* A repository the caller named wrongly raises :class:`~shipyard.errors.RepoError`; git
  failing on a repository that was valid raises :class:`GitError`.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from shipyard.errors import RepoError, ShipyardError

__all__ = [
    "DEFAULT_IDENTITY",
    "CommitResult",
    "GitError",
    "Identity",
    "abandoned_refs",
    "blob",
    "blobs",
    "changed_files",
    "commit_all",
    "commit_tree",
    "create_worktree",
    "detached_worktree",
    "diff",
    "diff_lines",
    "diff_stat",
    "export_patch",
    "find_commit",
    "head",
    "ignored_entries",
    "is_dirty",
    "keep_abandoned",
    "remove_worktree",
    "repo_root",
    "resolve_commit",
    "restore",
    "run_branch",
    "snapshot_tree",
    "tracked_files",
]

_SAFE_CONFIG = ("core.hooksPath=/dev/null", "core.fsmonitor=false", "commit.gpgSign=false")
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class GitError(ShipyardError):
    """A git command failed on a repository that was valid; carries git's own message."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr.strip()
        super().__init__(f"git {' '.join(argv)} failed ({returncode}): {self.stderr}")


@dataclass(frozen=True)
class Identity:
    """Author and committer of run commits."""

    name: str = "Shipyard"
    email: str = "shipyard@localhost"


DEFAULT_IDENTITY = Identity()


@dataclass(frozen=True)
class CommitResult:
    """Outcome of :func:`commit_all`: ``created`` is False when there was nothing to commit
    and ``sha`` is then the unchanged HEAD."""

    sha: str
    created: bool


def _env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GIT_OPTIONAL_LOCKS"] = "0"
    env["LC_ALL"] = "C"  # stable, parseable messages
    env.update(extra or {})
    return env


def _git(
    cwd: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``git -C cwd args`` and return the completed process (bytes, never a shell)."""
    argv = ["git"]
    for item in _SAFE_CONFIG:
        argv += ["-c", item]
    argv += ["-C", str(cwd), *args]
    proc = subprocess.run(argv, capture_output=True, env=_env(env), check=False)
    if check and proc.returncode != 0:
        raise GitError(args, proc.returncode, proc.stderr.decode(errors="replace"))
    return proc


def _out(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    return _git(cwd, *args, env=env).stdout.decode(errors="replace").strip()


def run_branch(run_id: str) -> str:
    """The branch of a run: ``shipyard/<run-id>``. Raises ``ValueError`` for an id that is
    not a plain token (it becomes part of a ref name and a directory name)."""
    if not _RUN_ID.match(run_id) or ".." in run_id or run_id.endswith((".lock", ".")):
        raise ValueError(f"run id {run_id!r} cannot name a branch")
    return f"shipyard/{run_id}"


def repo_root(path: Path | str) -> Path:
    """The top directory of the git working tree containing ``path``.

    Raises ``RepoError`` saying what is wrong: the path is missing or not a directory, it is
    not inside a git repository, the repository is bare, or it has no commits yet.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise RepoError(f"{p}: no such directory")
    if not p.is_dir():
        raise RepoError(f"{p}: not a directory")
    probe = _git(p, "rev-parse", "--is-bare-repository", "--is-inside-work-tree", check=False)
    if probe.returncode != 0:
        reason = probe.stderr.decode(errors="replace").strip()
        if "not a git repository" in reason:
            raise RepoError(f"{p}: not a git repository")
        raise RepoError(f"{p}: git cannot use this repository: {reason}")
    bare, inside = probe.stdout.decode().split()
    if bare == "true":
        raise RepoError(f"{p}: is a bare repository; Shipyard needs a checkout with files")
    if inside != "true":
        raise RepoError(f"{p}: is inside a .git directory, not a working tree")
    root = Path(_out(p, "rev-parse", "--show-toplevel"))
    if _git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False).returncode:
        raise RepoError(f"{root}: repository has no commits yet; commit something first")
    return root


def is_dirty(repo: Path) -> list[str]:
    """Paths with uncommitted changes or untracked (non-ignored) files in ``repo``.

    Read-only: ``--no-optional-locks`` keeps git from refreshing the user's index.
    """
    raw = _git(
        repo, "--no-optional-locks", "status", "--porcelain=v1", "-z", "--untracked-files=all"
    ).stdout
    paths: list[str] = []
    fields = raw.decode(errors="surrogateescape").split("\0")
    i = 0
    while i < len(fields):
        entry = fields[i]
        i += 1
        if len(entry) < 4:
            continue
        paths.append(entry[3:])
        if entry[0] in "RC":  # a rename is followed by its source path
            paths.append(fields[i])
            i += 1
    return paths


def resolve_commit(repo: Path, ref: str) -> str:
    """The full sha of the commit ``ref`` names. Raises ``RepoError`` for an unknown ref."""
    if not ref or ref.startswith("-"):
        raise RepoError(f"{ref!r} is not a valid git ref")
    proc = _git(
        repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}",
        check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RepoError(f"{repo}: unknown ref {ref!r} (no commit by that name)")
    return proc.stdout.decode().strip()


def _worktrees(repo: Path) -> dict[Path, str | None]:
    """Registered worktrees of ``repo``: resolved path -> checked-out branch (None if detached)."""
    found: dict[Path, str | None] = {}
    raw = _git(repo, "worktree", "list", "--porcelain", "-z").stdout.decode(
        errors="surrogateescape"
    )
    for block in raw.split("\0\0"):
        lines = dict(field.partition(" ")[::2] for field in block.split("\0"))
        if lines.get("worktree"):
            branch = lines.get("branch", "").removeprefix("refs/heads/") or None
            found[Path(lines["worktree"]).resolve()] = branch
    return found


def create_worktree(repo: Path, path: Path, branch: str, base_commit: str) -> Path:
    """Create the run's worktree at ``path`` on a new ``branch`` starting at ``base_commit``.

    Idempotent: when ``path`` is already a worktree on ``branch`` it is returned unchanged (a
    resumed intake must not fail). When ``branch`` exists without a worktree (a crash between
    the two), the worktree is attached to the existing branch, keeping its commits. Raises
    ``RepoError`` when ``path`` is taken by something else.
    """
    path = path.resolve()
    existing = _worktrees(repo)
    if path in existing:
        if existing[path] != branch:
            raise RepoError(f"{path}: already a worktree on {existing[path]!r}, not {branch!r}")
        return path
    if path.exists() and any(path.iterdir()):
        raise RepoError(f"{path}: exists and is not an empty directory")
    _git(repo, "worktree", "prune")  # forget worktrees whose directory was deleted
    path.parent.mkdir(parents=True, exist_ok=True)
    known = _git(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False)
    if known.returncode == 0:
        _git(repo, "worktree", "add", "--", str(path), branch)
    else:
        _git(repo, "worktree", "add", "-b", branch, "--", str(path), base_commit)
    return path


def remove_worktree(repo: Path, path: Path) -> None:
    """Remove the worktree at ``path`` (files and registration); the run branch is kept.
    Idempotent: a worktree that is already gone is not an error."""
    path = path.resolve()
    if path in _worktrees(repo):
        _git(repo, "worktree", "remove", "--force", "--force", "--", str(path))
    elif path.exists():
        raise RepoError(f"{path}: not a worktree of {repo}; refusing to delete it")
    _git(repo, "worktree", "prune")


def snapshot_tree(worktree: Path) -> str:
    """The tree id of the worktree's current files, untracked included, ignored excluded.

    The worktree's own index is not touched: a temporary index is seeded from HEAD, every
    file is added to it and the tree written from it. Equal files give an equal id, which
    is what the check cache keys on.
    """
    with tempfile.TemporaryDirectory(prefix="shipyard-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        _git(worktree, "read-tree", "HEAD", env=env)
        _git(worktree, "add", "-A", "--", ".", env=env)
        return _out(worktree, "write-tree", env=env)


def _object_type(worktree: Path, rev: str) -> str:
    proc = _git(worktree, "cat-file", "-t", "--end-of-options", rev, check=False)
    if proc.returncode != 0:
        raise RepoError(f"{worktree}: unknown commit or tree {rev!r}")
    return proc.stdout.decode().strip()


def restore(worktree: Path, commit_or_tree: str) -> None:
    """Make the worktree's files exactly ``commit_or_tree``; ignored files are kept.

    A commit: ``reset --hard`` to it (the run branch moves there) and untracked files are
    removed. A tree: HEAD and the branch stay; the index and files become the tree. Either
    way :func:`snapshot_tree` equals the target's tree afterwards. This is what resume and
    time travel use.
    """
    kind = _object_type(worktree, commit_or_tree)
    if kind == "commit":
        _git(worktree, "reset", "--hard", "--quiet", commit_or_tree)
        _git(worktree, "clean", "-ffdq")
    elif kind == "tree":
        # Back to HEAD first, so no untracked file can block or survive the tree checkout.
        _git(worktree, "reset", "--hard", "--quiet", "HEAD")
        _git(worktree, "clean", "-ffdq")
        _git(worktree, "read-tree", "-u", "--reset", commit_or_tree)
        # Untracked files a stray untracked .gitignore hid from the first clean.
        _git(worktree, "clean", "-ffdq")
    else:
        raise RepoError(f"{commit_or_tree!r} is a {kind}, not a commit or tree")


def keep_abandoned(worktree: Path, run_id: str, target: str) -> str | None:
    """Before the run branch is rewound to ``target`` (a fork from an older checkpoint),
    keep the commits it would drop reachable: a new ref
    ``refs/shipyard/<run-id>/abandoned/<n>`` (n = 1, 2, … per run) at the branch's tip.
    Returns the ref, or ``None`` when moving to ``target`` drops no commit (the tip is
    ``target`` or one of its ancestors)."""
    taken = abandoned_refs(worktree, run_id)  # (refuses a run id that is not a plain token)
    tip = head(worktree)
    target = resolve_commit(worktree, target)
    ancestor = _git(worktree, "merge-base", "--is-ancestor", tip, target, check=False)
    if ancestor.returncode == 0:
        return None
    number = int(taken[-1].rsplit("/", 1)[1]) + 1 if taken else 1
    ref = f"refs/shipyard/{run_id}/abandoned/{number}"
    # The empty old value: create only, never move a ref another fork made meanwhile.
    _git(worktree, "update-ref", "-m", "shipyard: fork keeps the abandoned line", ref, tip, "")
    return ref


def abandoned_refs(worktree: Path, run_id: str) -> list[str]:
    """The refs :func:`keep_abandoned` made for the run, oldest (lowest number) first."""
    run_branch(run_id)  # the run id becomes part of the ref name: refuse anything else
    prefix = f"refs/shipyard/{run_id}/abandoned/"
    taken = _out(worktree, "for-each-ref", "--format=%(refname)", prefix).split()
    numbered = [r for r in taken if r.removeprefix(prefix).isdigit()]
    return sorted(numbered, key=lambda r: int(r.removeprefix(prefix)))


def head(worktree: Path) -> str:
    """The sha HEAD points at."""
    return _out(worktree, "rev-parse", "--verify", "HEAD^{commit}")


def commit_all(worktree: Path, message: str, identity: Identity = DEFAULT_IDENTITY) -> CommitResult:
    """Commit every change in the worktree (untracked included, ignored excluded).

    Nothing to commit is not an error: HEAD comes back with ``created=False``.
    """
    if not message.strip():
        raise ValueError("a commit message must not be empty")
    _git(worktree, "add", "-A", "--", ".")
    if _git(worktree, "diff", "--cached", "--quiet", check=False).returncode == 0:
        return CommitResult(head(worktree), created=False)
    who = {
        "GIT_AUTHOR_NAME": identity.name,
        "GIT_AUTHOR_EMAIL": identity.email,
        "GIT_COMMITTER_NAME": identity.name,
        "GIT_COMMITTER_EMAIL": identity.email,
    }
    _git(worktree, "commit", "--quiet", "--no-verify", f"--message={message}", env=who)
    return CommitResult(head(worktree), created=True)


def commit_tree(
    worktree: Path, tree: str, message: str, identity: Identity = DEFAULT_IDENTITY
) -> CommitResult:
    """Commit exactly ``tree`` (a tree id, e.g. a :func:`snapshot_tree`) on top of HEAD and
    move the branch there, whatever the worktree's files are now; the index and files are
    then reset to it. ``tree`` equal to HEAD's tree is not an error: HEAD comes back with
    ``created=False``."""
    if not message.strip():
        raise ValueError("a commit message must not be empty")
    if _object_type(worktree, tree) != "tree":
        raise RepoError(f"{tree!r} is not a tree")
    parent = head(worktree)
    if _out(worktree, "rev-parse", f"{parent}^{{tree}}") == tree:
        return CommitResult(parent, created=False)
    who = {
        "GIT_AUTHOR_NAME": identity.name,
        "GIT_AUTHOR_EMAIL": identity.email,
        "GIT_COMMITTER_NAME": identity.name,
        "GIT_COMMITTER_EMAIL": identity.email,
    }
    sha = _out(worktree, "commit-tree", tree, "-p", parent, "-m", message, env=who)
    _git(worktree, "update-ref", "-m", "shipyard: commit", "HEAD", sha, parent)
    restore(worktree, sha)
    return CommitResult(sha, created=True)


def ignored_entries(worktree: Path) -> set[str]:
    """Ignored paths in the worktree (an ignored directory as one ``dir/`` entry)."""
    raw = _git(
        worktree, "ls-files", "--others", "--ignored", "--exclude-standard", "--directory", "-z"
    ).stdout
    return {p for p in raw.decode(errors="surrogateescape").split("\0") if p}


def find_commit(worktree: Path, message_contains: str, tree: str | None = None) -> str | None:
    """The newest commit reachable from HEAD whose message contains ``message_contains``
    (an exact substring, newlines included) and whose tree is ``tree`` when given, else
    None. The journal's reconcile uses it to learn whether a step's commit was already made
    before a crash."""
    lines = [line for line in message_contains.splitlines() if line.strip()]
    if not lines:
        raise ValueError("find_commit needs a non-empty message to look for")
    # git's --grep matches line by line, so it only narrows; the substring test decides.
    greps = [f"--grep={line}" for line in lines]
    raw = _git(
        worktree, "log", "-z", "--format=%H %T%n%B", "--fixed-strings", "--all-match", *greps,
        "HEAD",
    ).stdout.decode(errors="replace")  # fmt: skip
    for entry in filter(None, raw.split("\0")):
        ids, _, body = entry.partition("\n")
        sha, tree_id = ids.split()
        if message_contains in body and (tree is None or tree_id == tree):
            return sha
    return None


def _diff_args(worktree: Path, base: str) -> list[str]:
    """Plumbing ``diff-tree`` from ``base`` to the worktree's snapshot: immune to the
    user's diff config (external diff, colour, prefixes), so patches always apply."""
    base_commit = resolve_commit(worktree, base)
    return ["diff-tree", "-r", "--no-renames", base_commit, snapshot_tree(worktree)]


def diff(worktree: Path, base: str) -> str:
    """Unified diff from ``base`` to the worktree's files, untracked included; binary files
    appear as ``--binary`` patches. Not-UTF-8 bytes are replaced (see :func:`export_patch`
    for a byte-exact patch)."""
    return _git(worktree, *_diff_args(worktree, base), "-p", "--binary").stdout.decode(
        errors="replace"
    )


def diff_stat(worktree: Path, base: str) -> str:
    """``git diff --stat`` of the same change as :func:`diff` ("" when nothing changed)."""
    return _out(worktree, *_diff_args(worktree, base), "--stat=100")


def changed_files(worktree: Path, base: str) -> list[str]:
    """Paths (relative to the worktree) that differ between ``base`` and the files now."""
    raw = _git(worktree, *_diff_args(worktree, base), "--name-only", "-z").stdout
    return [p for p in raw.decode(errors="surrogateescape").split("\0") if p]


def export_patch(worktree: Path, base: str, dest: Path) -> Path:
    """Write the change from ``base`` to the worktree's files to ``dest`` as a binary-safe
    patch that ``git apply`` applies to a checkout of ``base``. Returns ``dest``; the file
    is empty when nothing changed."""
    data = _git(worktree, *_diff_args(worktree, base), "-p", "--binary", "--full-index").stdout
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(dest)  # a reader never sees half a patch
    return dest


def tracked_files(worktree: Path, commit: str, *, regular_only: bool = False) -> list[str]:
    """Every file path of ``commit``'s tree, sorted; with ``regular_only`` without symlinks
    and submodules."""
    raw = _git(worktree, "ls-tree", "-r", "-z", commit).stdout
    paths: list[str] = []
    for item in raw.decode(errors="surrogateescape").split("\0"):
        meta, _, path = item.partition("\t")
        if path and (not regular_only or meta.startswith(("100644 ", "100755 "))):
            paths.append(path)
    return sorted(paths)


def blob(worktree: Path, commit: str, path: str, max_bytes: int) -> bytes | None:
    """The first ``max_bytes + 1`` bytes of the regular file ``path`` at ``commit`` (so a
    caller sees that it was longer), or None when ``commit`` has no regular file there."""
    listed = _out(worktree, "ls-tree", "-z", commit, "--", path).rstrip("\0")
    if not listed.startswith(("100644 blob ", "100755 blob ")):
        return None
    sha = listed.split()[2]
    proc = _git(worktree, "cat-file", "blob", sha)
    return proc.stdout[: max_bytes + 1]


def detached_worktree(worktree: Path, path: Path, commit: str) -> Path:
    """A fresh worktree at ``path`` with ``commit`` checked out and no branch (a scratch
    copy of the run's repository); whatever was registered at ``path`` before is removed."""
    path = path.resolve()
    if path in _worktrees(worktree) or path.exists():
        remove_worktree(worktree, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _git(worktree, "worktree", "add", "--detach", "--", str(path), commit)
    return path


def diff_lines(worktree: Path, base: str, tree: str) -> int:
    """Lines added plus lines removed from ``base`` to ``tree`` (a binary file counts 1)."""
    out = _out(worktree, "diff-tree", "-r", "--no-renames", "--numstat", base, tree)
    total = 0
    for line in out.splitlines():
        added, removed, _ = line.split("\t", 2)
        total += (int(added) + int(removed)) if added != "-" else 1
    return total


def blobs(worktree: Path, commit: str, paths: Sequence[str], max_bytes: int) -> dict[str, bytes]:
    """The regular files among ``paths`` at ``commit`` that are at most ``max_bytes`` long,
    read in one ``git cat-file --batch`` (larger files and non-files are left out)."""
    wanted = set(paths)
    shas: dict[str, str] = {}
    raw = _git(worktree, "ls-tree", "-r", "-z", "--long", commit).stdout
    for item in raw.decode(errors="surrogateescape").split("\0"):
        meta, _, path = item.partition("\t")
        fields = meta.split()
        regular = len(fields) == 4 and fields[0] in ("100644", "100755")
        if path in wanted and regular and fields[3].isdigit() and int(fields[3]) <= max_bytes:
            shas[path] = fields[2]
    if not shas:
        return {}
    order = list(shas)
    batch = "".join(f"{shas[p]}\n" for p in order).encode()
    argv = ["git", *(f for item in _SAFE_CONFIG for f in ("-c", item)), "-C", str(worktree)]
    proc = subprocess.run(
        [*argv, "cat-file", "--batch"], input=batch, capture_output=True, env=_env(), check=False
    )
    if proc.returncode != 0:
        stderr = proc.stderr.decode(errors="replace")
        raise GitError(["cat-file", "--batch"], proc.returncode, stderr)
    found: dict[str, bytes] = {}
    data, offset = proc.stdout, 0
    for path in order:
        header_end = data.index(b"\n", offset)
        size = int(data[offset:header_end].split()[2])
        found[path] = data[header_end + 1 : header_end + 1 + size]
        offset = header_end + 1 + size + 1
    return found
