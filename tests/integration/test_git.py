"""The run's worktree over real git repositories in temporary directories."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from shipyard.errors import RepoError
from shipyard.tools import git

IDENTITY = {
    "GIT_AUTHOR_NAME": "User",
    "GIT_AUTHOR_EMAIL": "user@example.com",
    "GIT_COMMITTER_NAME": "User",
    "GIT_COMMITTER_EMAIL": "user@example.com",
}


def sh(cwd: Path, *args: str) -> str:
    """Run git as the user would (their identity), returning stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")} | IDENTITY
    proc = subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, env=env, check=True
    )
    return proc.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A user's checkout with a commit, an ignored file, a binary file and local edits."""
    root = tmp_path / "user-repo"
    root.mkdir()
    sh(root, "init", "-q", "-b", "main")
    (root / "src").mkdir()
    (root / "src" / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (root / "README.md").write_text("# demo\n")
    (root / ".gitignore").write_text("*.log\n")
    (root / "logo.bin").write_bytes(bytes(range(256)))
    sh(root, "add", "-A")
    sh(root, "commit", "-q", "-m", "initial")
    # The user's own uncommitted work, which Shipyard must never touch.
    (root / "README.md").write_text("# demo\nwork in progress\n")
    (root / "notes.txt").write_text("untracked user notes\n")
    (root / "debug.log").write_text("ignored\n")
    return root


def fingerprint(root: Path) -> dict[str, str]:
    """sha256 of every file in the checkout (worktree files and .git/index), not .git objects."""
    files = [p for p in root.rglob("*") if p.is_file() and ".git" not in p.relative_to(root).parts]
    files.append(root / ".git" / "index")
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(files)
    }


@pytest.fixture
def worktree(repo: Path, tmp_path: Path) -> Path:
    return git.create_worktree(
        repo, tmp_path / "ws" / "r1", git.run_branch("r1"), git.resolve_commit(repo, "HEAD")
    )


# -- repo_root and bad input ------------------------------------------------------------


def test_repo_root_finds_top_from_subdirectory(repo: Path) -> None:
    assert git.repo_root(repo / "src") == repo.resolve()


def test_repo_root_missing_path(tmp_path: Path) -> None:
    with pytest.raises(RepoError, match=r"nope: no such directory"):
        git.repo_root(tmp_path / "nope")


def test_repo_root_file_is_not_a_directory(repo: Path) -> None:
    with pytest.raises(RepoError, match=r"README.md: not a directory"):
        git.repo_root(repo / "README.md")


def test_repo_root_not_a_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(RepoError, match=r"plain: not a git repository"):
        git.repo_root(plain)


def test_repo_root_bare_repository(tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    sh(tmp_path, "init", "-q", "--bare", str(bare))
    with pytest.raises(RepoError, match=r"bare.git: is a bare repository"):
        git.repo_root(bare)


def test_repo_root_no_commits_yet(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    sh(empty, "init", "-q")
    with pytest.raises(RepoError, match=r"empty: repository has no commits yet"):
        git.repo_root(empty)


def test_repo_root_inside_dot_git(repo: Path) -> None:
    with pytest.raises(RepoError, match=r"inside a .git directory"):
        git.repo_root(repo / ".git")


def test_parent_git_environment_does_not_leak(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.setenv("GIT_DIR", str(repo / ".git"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(repo / ".git" / "index"))
    with pytest.raises(RepoError, match="not a git repository"):
        git.repo_root(plain)


def test_resolve_commit_and_unknown_ref(repo: Path) -> None:
    sha = git.resolve_commit(repo, "main")
    assert sha == sh(repo, "rev-parse", "HEAD") and len(sha) == 40
    with pytest.raises(RepoError, match=r"unknown ref 'no-such-branch'"):
        git.resolve_commit(repo, "no-such-branch")
    with pytest.raises(RepoError, match="not a valid git ref"):
        git.resolve_commit(repo, "--output=/tmp/x")


def test_is_dirty_lists_changes_without_writing_index(repo: Path) -> None:
    before = (repo / ".git" / "index").read_bytes()
    sh(repo, "mv", "src/calc.py", "src/calc2.py")
    index_after_mv = (repo / ".git" / "index").read_bytes()
    assert before != index_after_mv
    assert sorted(git.is_dirty(repo)) == ["README.md", "notes.txt", "src/calc.py", "src/calc2.py"]
    assert (repo / ".git" / "index").read_bytes() == index_after_mv


def test_run_branch_rejects_unsafe_ids() -> None:
    assert git.run_branch("abc-123") == "shipyard/abc-123"
    for bad in ["", "../x", "a b", "-x", "a..b", "x.lock"]:
        with pytest.raises(ValueError, match="cannot name a branch"):
            git.run_branch(bad)


# -- the worktree lifecycle ---------------------------------------------------------------


def test_whole_lifecycle_never_touches_user_checkout(repo: Path, tmp_path: Path) -> None:
    before = fingerprint(repo)
    user_head = sh(repo, "rev-parse", "HEAD")
    base = git.resolve_commit(repo, "HEAD")
    wt = git.create_worktree(repo, tmp_path / "ws" / "r1", "shipyard/r1", base)
    assert (wt / "src" / "calc.py").is_file() and not (wt / "notes.txt").exists()
    assert sh(wt, "branch", "--show-current") == "shipyard/r1"
    (wt / "src" / "calc.py").write_text("def add(a, b):\n    return b + a\n")
    (wt / "new.py").write_text("X = 1\n")
    git.snapshot_tree(wt)
    result = git.commit_all(wt, "shipyard run r1 step s1")
    assert result.created
    git.diff(wt, base)
    git.export_patch(wt, base, tmp_path / "out.patch")
    git.restore(wt, git.snapshot_tree(wt))
    git.restore(wt, result.sha)
    git.remove_worktree(repo, wt)
    assert fingerprint(repo) == before
    assert sh(repo, "rev-parse", "HEAD") == user_head
    assert sh(repo, "branch", "--show-current") == "main"
    assert not wt.exists()
    # The run branch survives removal: its commits are the run's record.
    assert sh(repo, "log", "-1", "--format=%s", "shipyard/r1") == "shipyard run r1 step s1"


def test_create_worktree_is_idempotent(repo: Path, worktree: Path) -> None:
    (worktree / "work.py").write_text("kept\n")
    again = git.create_worktree(repo, worktree, "shipyard/r1", git.resolve_commit(repo, "HEAD"))
    assert again == worktree and (worktree / "work.py").read_text() == "kept\n"


def test_create_worktree_reattaches_existing_branch(repo: Path, worktree: Path) -> None:
    (worktree / "step.py").write_text("1\n")
    commit = git.commit_all(worktree, "step one").sha
    # A crash lost the worktree directory but the branch with its commit remains.
    git.remove_worktree(repo, worktree)
    again = git.create_worktree(repo, worktree, "shipyard/r1", git.resolve_commit(repo, "main"))
    assert git.head(again) == commit and (again / "step.py").read_text() == "1\n"


def test_create_worktree_refuses_other_branch_or_busy_directory(
    repo: Path, worktree: Path, tmp_path: Path
) -> None:
    base = git.resolve_commit(repo, "HEAD")
    with pytest.raises(RepoError, match=r"already a worktree on 'shipyard/r1'"):
        git.create_worktree(repo, worktree, "shipyard/r2", base)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "precious.txt").write_text("mine\n")
    with pytest.raises(RepoError, match="exists and is not an empty directory"):
        git.create_worktree(repo, busy, "shipyard/r3", base)
    assert (busy / "precious.txt").read_text() == "mine\n"


def test_remove_worktree_refuses_foreign_directory(repo: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "f").write_text("x")
    with pytest.raises(RepoError, match="not a worktree of"):
        git.remove_worktree(repo, other)
    assert (other / "f").exists()
    git.remove_worktree(repo, tmp_path / "never-existed")  # idempotent


# -- snapshots, commits, restore ---------------------------------------------------------


def test_snapshot_includes_untracked_excludes_ignored_and_keeps_index(worktree: Path) -> None:
    index = Path(sh(worktree, "rev-parse", "--path-format=absolute", "--git-path", "index"))
    index_before = index.read_bytes()
    clean = git.snapshot_tree(worktree)
    assert clean == sh(worktree, "rev-parse", "HEAD^{tree}")
    (worktree / "new.py").write_text("X = 1\n")
    with_new = git.snapshot_tree(worktree)
    assert with_new != clean
    assert sh(worktree, "cat-file", "-p", f"{with_new}:new.py") == "X = 1"
    (worktree / "trace.log").write_text("ignored\n")
    assert git.snapshot_tree(worktree) == with_new
    assert index.read_bytes() == index_before
    assert sh(worktree, "status", "--porcelain") == "?? new.py"


def test_commit_all_and_nothing_to_commit(worktree: Path) -> None:
    start = git.head(worktree)
    nothing = git.commit_all(worktree, "empty step")
    assert nothing == git.CommitResult(start, created=False)
    (worktree / "src" / "calc.py").unlink()
    (worktree / "added.txt").write_text("a\n")
    made = git.commit_all(worktree, "run r1 step s2")
    assert made.created and made.sha != start and git.head(worktree) == made.sha
    assert sh(worktree, "log", "-1", "--format=%an <%ae>|%cn <%ce>|%s") == (
        "Shipyard <shipyard@localhost>|Shipyard <shipyard@localhost>|run r1 step s2"
    )
    assert sh(worktree, "show", "--name-status", "--format=", "HEAD").splitlines() == [
        "A\tadded.txt",
        "D\tsrc/calc.py",
    ]
    with pytest.raises(ValueError, match="must not be empty"):
        git.commit_all(worktree, "  ")


def test_commit_does_not_run_user_hooks(repo: Path, worktree: Path, tmp_path: Path) -> None:
    marker = tmp_path / "hook-ran"
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    hook.chmod(0o755)
    (worktree / "x.txt").write_text("x\n")
    assert git.commit_all(worktree, "step").created
    assert not marker.exists()


def test_find_commit_by_message_and_tree(worktree: Path) -> None:
    (worktree / "a.txt").write_text("a\n")
    first = git.commit_all(worktree, "run r1 step s1: add a").sha
    (worktree / "b.txt").write_text("b\n")
    second = git.commit_all(worktree, "run r1 step s2: add b").sha
    tree1 = sh(worktree, "rev-parse", f"{first}^{{tree}}")
    assert git.find_commit(worktree, "run r1 step s1", tree1) == first
    assert git.find_commit(worktree, "run r1 step s2") == second
    assert git.find_commit(worktree, "run r1 step s2", tree1) is None
    assert git.find_commit(worktree, "step s9") is None
    assert git.find_commit(worktree, "run r1 step") == second  # newest first


def test_find_commit_matches_multiline_substring_exactly(worktree: Path) -> None:
    (worktree / "a.txt").write_text("a\n")
    one = git.commit_all(worktree, "shipyard: add a\n\nRun: r1\nStep: s1 (attempt 1)").sha
    (worktree / "a.txt").write_text("b\n")
    git.commit_all(worktree, "shipyard: change a\n\nRun: r1\nStep: s1 (attempt 2)")
    assert git.find_commit(worktree, "Run: r1\nStep: s1 (attempt 1)") == one
    # Both lines occur, but not as one block: no match.
    assert git.find_commit(worktree, "Run: r1\nStep: s1 (attempt 3)") is None
    assert git.find_commit(worktree, "Step: s1 (attempt 1)\nRun: r1") is None
    with pytest.raises(ValueError, match="non-empty message"):
        git.find_commit(worktree, "\n")


def test_restore_to_commit(worktree: Path) -> None:
    base = git.head(worktree)
    (worktree / "a.txt").write_text("a\n")
    step1 = git.commit_all(worktree, "s1").sha
    (worktree / "b.txt").write_text("b\n")
    git.commit_all(worktree, "s2")
    (worktree / "README.md").write_text("scribbled\n")
    (worktree / "stray").mkdir()
    (worktree / "stray" / "junk.py").write_text("junk\n")
    (worktree / "keep.log").write_text("ignored stays\n")
    git.restore(worktree, step1)
    assert git.head(worktree) == step1
    assert sh(worktree, "branch", "--show-current") == "shipyard/r1"
    assert git.snapshot_tree(worktree) == sh(worktree, "rev-parse", f"{step1}^{{tree}}")
    assert not (worktree / "b.txt").exists() and not (worktree / "stray").exists()
    assert (worktree / "README.md").read_text() == "# demo\n"
    assert (worktree / "keep.log").exists()
    git.restore(worktree, base)
    assert not (worktree / "a.txt").exists() and git.head(worktree) == base


def test_restore_to_tree_keeps_head(worktree: Path) -> None:
    head_before = git.head(worktree)
    (worktree / "src" / "calc.py").write_text("changed\n")
    (worktree / "new" / "deep").mkdir(parents=True)
    (worktree / "new" / "deep" / "f.txt").write_text("f\n")
    (worktree / "README.md").unlink()
    target = git.snapshot_tree(worktree)
    (worktree / "src" / "calc.py").write_text("changed again\n")
    (worktree / "other.txt").write_text("later work\n")
    (worktree / "README.md").write_text("back\n")
    git.restore(worktree, target)
    assert git.snapshot_tree(worktree) == target
    assert git.head(worktree) == head_before
    assert (worktree / "src" / "calc.py").read_text() == "changed\n"
    assert not (worktree / "other.txt").exists() and not (worktree / "README.md").exists()
    assert (worktree / "new" / "deep" / "f.txt").read_text() == "f\n"


def test_restore_unknown_target(worktree: Path) -> None:
    with pytest.raises(RepoError, match="unknown commit or tree 'deadbeef'"):
        git.restore(worktree, "deadbeef")
    blob = sh(worktree, "rev-parse", "HEAD:README.md")
    with pytest.raises(RepoError, match="is a blob, not a commit or tree"):
        git.restore(worktree, blob)


# -- diff and patch --------------------------------------------------------------------


def change_everything(worktree: Path) -> None:
    (worktree / "src" / "calc.py").write_text("def add(a, b):\n    return int(a) + int(b)\n")
    (worktree / "README.md").unlink()
    (worktree / "pkg").mkdir()
    (worktree / "pkg" / "new.py").write_text("VALUE = 'naïve'\n")
    (worktree / "logo.bin").write_bytes(bytes(reversed(range(256))) + b"\0\xff")
    (worktree / "skip.log").write_text("ignored\n")


def test_diff_stat_and_changed_files(worktree: Path) -> None:
    base = git.head(worktree)
    assert git.diff(worktree, base) == "" and git.diff_stat(worktree, base) == ""
    change_everything(worktree)
    text = git.diff(worktree, base)
    assert "+    return int(a) + int(b)" in text
    assert "+VALUE = 'naïve'" in text and "GIT binary patch" in text
    assert "skip.log" not in text
    stat = git.diff_stat(worktree, base)
    assert "4 files changed" in stat and "pkg/new.py" in stat
    assert git.changed_files(worktree, base) == [
        "README.md",
        "logo.bin",
        "pkg/new.py",
        "src/calc.py",
    ]


def test_patch_applies_to_fresh_clone(repo: Path, worktree: Path, tmp_path: Path) -> None:
    base = git.head(worktree)
    (worktree / "committed.txt").write_text("from a step commit\n")
    git.commit_all(worktree, "step 1")
    change_everything(worktree)
    patch = git.export_patch(worktree, base, tmp_path / "out" / "run.patch")
    clone = tmp_path / "clone"
    sh(tmp_path, "clone", "-q", str(repo), str(clone))
    sh(clone, "checkout", "-q", base)
    sh(clone, "apply", "--index", str(patch))
    assert sh(clone, "write-tree") == git.snapshot_tree(worktree)
    assert (clone / "logo.bin").read_bytes() == (worktree / "logo.bin").read_bytes()


def test_diff_ignores_user_diff_config(repo: Path, worktree: Path, tmp_path: Path) -> None:
    sh(repo, "config", "diff.noprefix", "true")
    sh(repo, "config", "diff.external", "false")
    sh(repo, "config", "color.ui", "always")
    base = git.head(worktree)
    change_everything(worktree)
    patch = git.export_patch(worktree, base, tmp_path / "run.patch")
    assert b"diff --git a/src/calc.py b/src/calc.py" in patch.read_bytes()
    assert b"\x1b[" not in patch.read_bytes()


def test_export_patch_empty_when_unchanged(worktree: Path, tmp_path: Path) -> None:
    patch = git.export_patch(worktree, git.head(worktree), tmp_path / "none.patch")
    assert patch.read_bytes() == b""
