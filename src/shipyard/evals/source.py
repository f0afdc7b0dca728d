"""Where a task's repository comes from, materialised as a fresh clone at its base commit.

``repo`` is one of:

* a local path (absolute, or relative to the tasks file's directory) of a git repository;
  it is cloned, never modified;
* a git URL (``https://``, ``http://``, ``git://``, ``ssh://``, ``file://``, ``git@host:path``),
  mirrored once into the cache and cloned from there;
* ``pypi:NAME==VERSION``: the release's sdist, fetched with ``pip download --no-binary
  :all: --no-deps``, unpacked without its top directory and committed once with a fixed
  author, committer and date (:data:`IDENTITY`), so the commit hash is the same on every
  machine; cached.

Every failure (unreachable URL, no such release, no such path, a base commit the
repository does not have) is a ``HarnessError`` naming the source and git's or pip's own
words. Cache entries are built in a scratch directory and renamed into place, so tasks
sharing a source may materialise it concurrently.

``python -m shipyard.evals.source pypi:NAME==VERSION`` prints the commit such a source gets.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shipyard.evals.errors import HarnessError

IDENTITY = {
    "GIT_AUTHOR_NAME": "Shipyard Eval",
    "GIT_AUTHOR_EMAIL": "eval@shipyard.invalid",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00+0000",
    "GIT_COMMITTER_NAME": "Shipyard Eval",
    "GIT_COMMITTER_EMAIL": "eval@shipyard.invalid",
    "GIT_COMMITTER_DATE": "2000-01-01T00:00:00+0000",
}
"""Who made an sdist's commit, and when: fixed, so its hash depends on the files alone."""

FETCH_TIMEOUT_S = 600.0
_URL = re.compile(r"^(https?|git|ssh|file)://|^[\w.-]+@[\w.-]+:")
_PYPI = re.compile(r"^pypi:(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[A-Za-z0-9._+!-]+)$")


def kind_of(repo: str) -> str:
    """``pypi``, ``url`` or ``path``."""
    if repo.startswith("pypi:"):
        return "pypi"
    return "url" if _URL.match(repo) else "path"


def materialise(repo: str, base_commit: str, dest: Path, *, cache: Path, relative_to: Path) -> str:
    """Clone the source ``repo`` names into ``dest`` (which must not exist) and check out
    ``base_commit`` detached; returns the base commit's full hash."""
    origin = _origin(repo, cache=cache, relative_to=relative_to)
    _git("clone", "--quiet", "--no-checkout", str(origin), str(dest), what=f"clone {repo}")
    sha = _git(
        "rev-parse", "--verify", "--quiet", f"{base_commit}^{{commit}}", cwd=dest, check=False
    )
    if not sha:
        raise HarnessError(f"base_commit {base_commit!r} does not exist in {repo}")
    _git("checkout", "--quiet", "--detach", sha, cwd=dest, what=f"check out {base_commit}")
    return sha


def _origin(repo: str, *, cache: Path, relative_to: Path) -> Path | str:
    kind = kind_of(repo)
    if kind == "pypi":
        return sdist_repo(repo, cache)
    if kind == "url":
        return _mirror(repo, cache)
    path = (relative_to / Path(repo).expanduser()).resolve()
    if not path.exists():
        raise HarnessError(f"repository {repo!r} does not exist ({path})")
    if not _git("rev-parse", "--git-dir", cwd=path, check=False):
        raise HarnessError(f"repository {repo!r} is not a git repository ({path})")
    return path


def _mirror(url: str, cache: Path) -> Path:
    """A bare mirror of ``url`` in the cache, made on first use."""
    target = cache / "git" / (hashlib.sha256(url.encode()).hexdigest()[:20] + ".git")
    if target.is_dir():
        return target
    with _scratch(cache) as tmp:
        _git("clone", "--quiet", "--mirror", url, str(tmp / "m.git"), what=f"fetch {url}")
        _settle(tmp / "m.git", target)
    return target


def sdist_repo(spec: str, cache: Path) -> Path:
    """The git repository made from the sdist ``spec`` (``pypi:NAME==VERSION``)."""
    match = _PYPI.match(spec)
    if match is None:
        raise HarnessError(f"source {spec!r}: expected pypi:NAME==VERSION")
    name, version = match["name"], match["version"]
    target = cache / "pypi" / f"{name.lower()}-{version}.git"
    if target.is_dir():
        return target
    with _scratch(cache) as tmp:
        archive = _download(name, version, tmp / "dl")
        tree = tmp / "tree"
        _unpack(archive, tree)
        _git("init", "--quiet", "-b", "main", str(tree), what="git init")
        _git("add", "--all", cwd=tree, what="git add")
        _git("commit", "--quiet", "--no-verify", "--no-gpg-sign", "-m", f"{name} {version} (sdist)",
             cwd=tree, what="commit the sdist", env=IDENTITY)  # fmt: skip
        _settle(tree, target)
    return target


def _download(name: str, version: str, into: Path) -> Path:
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:",
            "--no-deps", "--disable-pip-version-check", "-d", str(into),
            f"{name}=={version}"]  # fmt: skip
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise HarnessError(
            f"pip download {name}=={version}: no answer in {FETCH_TIMEOUT_S:.0f} s"
        ) from None
    archives = sorted(into.glob("*")) if into.is_dir() else []
    if done.returncode != 0 or not archives:
        raise HarnessError(f"cannot fetch the sdist of {name}=={version}: {_tail(done.stderr)}")
    return archives[0]


def _unpack(archive: Path, dest: Path) -> None:
    """Extract ``archive`` into ``dest``, without its single top directory."""
    raw = dest.parent / "raw"
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(raw)  # noqa: S202 - zipfile drops absolute and ".." members
    else:
        with tarfile.open(archive) as tf:
            tf.extractall(raw, filter="data")
    entries = list(raw.iterdir())
    top = entries[0] if len(entries) == 1 and entries[0].is_dir() else raw
    top.rename(dest)


def _settle(built: Path, target: Path) -> None:
    """Move a finished cache entry into place; another task's identical entry may win."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        built.rename(target)
    except OSError:
        if not target.is_dir():
            raise


@contextmanager
def _scratch(cache: Path) -> Iterator[Path]:
    """A temporary directory inside the cache (same filesystem: the final rename is atomic)."""
    cache.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=".build-", dir=cache))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _git(
    *args: str,
    cwd: Path | None = None,
    what: str = "git",
    check: bool = True,
    env: dict[str, str] | None = None,
) -> str:
    """git's stdout; with ``check``, a ``HarnessError`` naming ``what`` when git fails."""
    full_env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True,
            timeout=FETCH_TIMEOUT_S, env=full_env, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise HarnessError(f"{what}: git gave no answer in {FETCH_TIMEOUT_S:.0f} s") from None
    if done.returncode != 0:
        if check:
            raise HarnessError(f"{what}: {_tail(done.stderr)}")
        return ""
    return done.stdout.strip()


def _tail(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " / ".join(lines[-3:]) or "no output"


def main(argv: list[str]) -> int:
    """Print the commit of each ``pypi:`` source named in ``argv``."""
    cache = Path(os.environ.get("SHIPYARD_EVAL_CACHE") or tempfile.mkdtemp(prefix="shipyard-src-"))
    for spec in argv:
        repo = sdist_repo(spec, cache)
        print(spec, _git("rev-parse", "HEAD", cwd=repo))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
