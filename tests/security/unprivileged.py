"""Running Shipyard as an unprivileged user from a test session that runs as root.

``provision()`` sets up, idempotently and under a lock, everything a normal user needs:

* the system user ``shipyard-sec`` (``useradd``) with its home under ``/home``;
* a virtualenv the user can execute, built by root from the system's ``/usr/bin/python3``
  (the project's own venv may point at an interpreter under root's private home) with
  ``pip install <checkout>[dev]``, world-readable, kept while ``pyproject.toml`` is the
  same: one directory per version under ``/opt/shipyard-unpriv-venv`` (outside
  ``/var`` and ``/home``, which sandboxes must not see), built under the lock and used
  only once marked complete, so a session never runs another one's half-built venv;
* this session's own copy of the checkout (``src``, ``tests``, ``pyproject.toml``,
  ``README.md``) in the user's home, owned by the user and found first on ``PYTHONPATH``
  — the checkout itself may sit under a directory only root can enter, nothing outside
  the user's home is re-permissioned, and concurrent sessions do not share a copy.

``Unprivileged.run`` then runs a command as that user through ``setpriv`` with a clean
environment: ``HOME`` in the user's home, no ``DATABASE_URL`` (the embedded Postgres starts
as that user), and ``SHIPYARD_UNPRIVILEGED=1`` so a nested test session knows it is the
unprivileged one. Where this cannot be done here (not root, no ``useradd``/``setpriv``, a
venv that does not build offline) ``provision`` returns the reason instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import pwd
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

USER = "shipyard-sec"
VENVS = Path("/opt/shipyard-unpriv-venv")
LOCK = Path("/var/tmp/shipyard-unpriv.lock")
SYSTEM_PYTHON = Path("/usr/bin/python3")
GUARD = "SHIPYARD_UNPRIVILEGED"
"""Set (to ``1``) in every process started by ``Unprivileged.run``."""

REPO = Path(__file__).resolve().parents[2]
_COPIED = ("src", "tests", "pyproject.toml", "README.md")
_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class Unprivileged:
    """The unprivileged user and what it runs Shipyard from."""

    name: str
    uid: int
    gid: int
    home: Path
    checkout: Path
    """This session's copy of the checkout, owned by the user."""
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def shipyard(self) -> Path:
        return self.venv / "bin" / "shipyard"

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The clean environment of a command run as the user."""
        return {
            "PATH": f"{self.venv / 'bin'}:{_PATH}",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "USER": self.name,
            "LOGNAME": self.name,
            "PYTHONPATH": str(self.checkout / "src"),
            GUARD: "1",
            **(extra or {}),
        }

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """``argv`` as the user (real and effective ids, its groups only), never raising
        on a non-zero exit; ``env`` is added to ``env()``."""
        ids = [f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups"]
        return subprocess.run(
            ["setpriv", *ids, "--", *argv],
            cwd=cwd or self.home,
            env=self.env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def give(self, path: Path) -> None:
        """Make ``path`` (and all below it) the user's."""
        _chown_tree(path, self.uid, self.gid)

    def release(self) -> None:
        """Remove this session's copy of the checkout."""
        shutil.rmtree(self.checkout, ignore_errors=True)


def provision() -> Unprivileged | str:
    """The unprivileged user, ready to run this checkout; or why it cannot be had here.
    Call ``release`` on it when done."""
    if os.geteuid() != 0:
        return f"needs root to create the user and drop to it (running as uid {os.geteuid()})"
    missing = [tool for tool in ("useradd", "setpriv") if shutil.which(tool) is None]
    if missing or not SYSTEM_PYTHON.exists():
        return f"missing here: {', '.join(missing) or SYSTEM_PYTHON}"
    try:
        with _locked():
            account = _account()
            venv = _venv()
        checkouts = Path(account.pw_dir) / "checkouts"
        checkouts.mkdir(exist_ok=True)
        os.chown(checkouts, account.pw_uid, account.pw_gid)
        checkout = checkouts / uuid.uuid4().hex[:12]
        _prune(checkouts, keep=checkout)
        _copy_checkout(checkout)
        _chown_tree(checkout, account.pw_uid, account.pw_gid)
    except (OSError, subprocess.SubprocessError, KeyError) as exc:
        return f"could not set up the unprivileged user: {exc}"
    home = Path(account.pw_dir)
    user = Unprivileged(USER, account.pw_uid, account.pw_gid, home, checkout, venv)
    check = user.run([str(user.python), "-c", "import shipyard.cli"], cwd=checkout)
    if check.returncode != 0:
        user.release()
        return f"the user cannot import shipyard from {venv}: {check.stderr.strip()[-400:]}"
    return user


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """One provisioning at a time across concurrent test sessions."""
    fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _account() -> pwd.struct_passwd:
    """The user's passwd entry, created (with its home) when absent."""
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        pass
    home = f"/home/{USER}"
    subprocess.run(
        ["useradd", "--system", "--user-group", "--create-home", "--home-dir", home,
         "--shell", "/usr/sbin/nologin", USER],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    account = pwd.getpwnam(USER)
    Path(home).chmod(0o700)
    return account


def _copy_checkout(dest: Path) -> None:
    """A fresh copy of what the tests need (no caches, no build leftovers)."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache", "*.pyc")
    for name in _COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=ignore, symlinks=True)
        elif source.exists():
            shutil.copy2(source, dest / name)


def _venv() -> Path:
    """The user-executable venv for this ``pyproject.toml`` and interpreter (call under
    the lock), built when it is missing or unfinished; venvs of other versions unused for
    a day are removed."""
    VENVS.mkdir(mode=0o755, exist_ok=True)
    if not _owned_by_root(VENVS):
        raise OSError(f"{VENVS} is not root's own directory")
    venv = VENVS / _stamp()[:16]
    _prune(VENVS, keep=venv)
    if (venv / ".complete").exists():
        venv.touch()
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    source = VENVS / f".source-{os.getpid()}"
    old_umask = os.umask(0o022)
    try:
        _copy_checkout(source)
        subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", str(venv)], check=True, timeout=120)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
        done = subprocess.run(
            [*pip, f"{source}[dev]"], capture_output=True, text=True, timeout=600, check=False
        )
        if done.returncode != 0:
            raise OSError(f"pip install failed: {done.stderr.strip()[-600:]}")
        (venv / ".complete").touch()
    finally:
        os.umask(old_umask)
        shutil.rmtree(source, ignore_errors=True)
    return venv


def _prune(parent: Path, *, keep: Path) -> None:
    """Remove what ``parent`` holds besides ``keep`` that was unused for a day."""
    for entry in parent.iterdir():
        with contextlib.suppress(OSError):
            if entry != keep and time.time() - entry.stat().st_mtime > 86400:
                shutil.rmtree(entry)


def _stamp() -> str:
    digest = hashlib.sha256((REPO / "pyproject.toml").read_bytes())
    digest.update(f"{SYSTEM_PYTHON.resolve()}|{sys.version_info[:2]}".encode())
    return digest.hexdigest()


def _owned_by_root(path: Path) -> bool:
    try:
        return path.lstat().st_uid == 0 and not path.is_symlink()
    except OSError:
        return False


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid, follow_symlinks=False)
    for dirpath, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)
