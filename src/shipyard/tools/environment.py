"""How checks get a project's dependencies: ``[environment]`` in ``.shipyard.toml``, or a
task's ``environment`` in an evaluation (``shipyard.evals``).

Two ways, which may be combined:

* ``python``: an existing interpreter, or a virtualenv directory, used read-only. Python
  checks run with it, and the command's ``PATH`` starts with its directories (the venv, its
  ``bin`` and, from ``pyvenv.cfg``, the base installation): ``PATH`` is what the sandbox's
  filesystem view mounts read-only as toolchain (``sandbox/isolation/view.py``), so the interpreter
  and its site-packages are visible and nothing of them is writable.
* ``setup``: a command (argv, never a shell) run in the sandbox once per workspace before the
  checks — e.g. ``python -m pip install --no-index --find-links wheels -e .``. It is keyed by
  the hash of the command and of the ``lockfiles`` it names: run again only when one of them
  changed. Commands have no network. A setup that says ``network = true`` gets it once per
  workspace — outbound only, this machine's loopback out of reach — on the base commit's
  files, right after a person approved the plan (``nodes/approve.py`` always asks then);
  run again later it has none. A setup that fails is an error naming its exit code and
  output tail.

Without an environment the checks use the interpreter running Shipyard (whose venv has
pytest), exposed read-only the same way (``tools/checkspec.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from shipyard.contracts import Evidence, IsolationReport
from shipyard.errors import SandboxError, UserInputError
from shipyard.policy.environment import Environment
from shipyard.sandbox.isolation.environment import DEFAULT_PATH
from shipyard.sandbox.launcher import CommandResult, Launcher, Limits, make_launcher
from shipyard.tools.checkspec import CheckSpec


class EnvironmentSetupError(UserInputError):
    """The named environment cannot be used (no such interpreter), or its setup failed."""


def interpreter(env: Environment) -> str:
    """The Python the checks run: ``env.python`` (a venv directory means its
    ``bin/python``), else the one running Shipyard. ``EnvironmentSetupError`` when it is
    not an executable file."""
    path = python_path(env)
    if not (Path(path).is_file() and os.access(path, os.X_OK)):
        raise EnvironmentSetupError(f"environment python {env.python!r}: no executable {path}")
    return path


def python_path(env: Environment) -> str:
    """:func:`interpreter` without the check that it exists (a check run by a missing
    program fails as evidence saying so)."""
    if env.python is None:
        return sys.executable
    path = Path(env.python)
    return str(path / "bin" / "python") if path.is_dir() else str(path)


def command_path(env: Environment) -> str:
    """The ``PATH`` of a check under ``env``: the interpreter's directories first (see the
    module docstring), then the usual ones."""
    python = Path(python_path(env))
    dirs = [python.parent, python.parent.parent]
    cfg = python.parent.parent / "pyvenv.cfg"
    home = _venv_home(cfg) if cfg.is_file() else None
    if home is not None:
        dirs += [home, home.parent]
    dirs.append(Path(sys.executable).parent)
    unique = dict.fromkeys(str(d) for d in dirs)
    return os.pathsep.join([*unique, os.environ.get("PATH") or DEFAULT_PATH])


def _venv_home(cfg: Path) -> Path | None:
    for line in cfg.read_text(encoding="utf-8", errors="replace").splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "home" and value.strip():
            return Path(value.strip()).resolve()
    return None


def setup_key(env: Environment, workspace: Path) -> str:
    """The hash a finished setup is remembered by: its command and its lockfiles' bytes."""
    digest = hashlib.sha256(json.dumps(env.setup).encode())
    for name in env.lockfiles:
        path = workspace / name
        digest.update(name.encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"<missing>")
    return digest.hexdigest()


def prepare(
    env: Environment, workspace: Path, launcher: Launcher, marker: Path, timeout_s: float
) -> CommandResult | None:
    """Run ``env.setup`` in ``workspace`` unless ``marker`` records it done for the same
    :func:`setup_key`; the result when it ran, ``None`` when there was nothing to do.
    ``EnvironmentSetupError`` when the setup fails (the marker is then left as it was)."""
    if not env.setup:
        return None
    key = setup_key(env, workspace)
    if marker.is_file() and marker.read_text(encoding="utf-8").strip() == key:
        return None
    result = launcher.run(
        env.setup,
        workspace=workspace,
        env={"PATH": command_path(env)},
        limits=Limits(timeout_s=timeout_s),
    )
    if result.exit_code != 0:
        tail = (result.stderr or result.stdout).strip()[-2000:]
        why = f"stopped by the {result.limit} limit" if result.limit else f"exit {result.exit_code}"
        raise EnvironmentSetupError(
            f"environment setup {shlex.join(env.setup)!r} failed ({why}): {tail}"
        )
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(key + "\n", encoding="utf-8")
    return result


PYTHON_KINDS = frozenset({"pytest", "ruff", "mypy"})


def environment_checks(specs: Sequence[CheckSpec], env: Environment) -> list[CheckSpec]:
    """``specs`` with every Python check (``<python> -m <tool>``) run by ``env.python`` and
    every pytest check given ``env.pytest_args`` (an evaluation's task needs them for the
    run's own tests as for its hidden ones)."""
    python = python_path(env) if env.python is not None else None
    found: list[CheckSpec] = []
    for spec in specs:
        argv = list(spec.argv)
        if python is not None and spec.kind in PYTHON_KINDS and argv[1:2] == ["-m"]:
            argv[0] = python
        if spec.kind == "pytest":
            argv += env.pytest_args
        found.append(spec if argv == spec.argv else spec.model_copy(update={"argv": argv}))
    return found


@dataclass(frozen=True)
class EnvironmentLauncher:
    """``inner`` giving every command the ``PATH`` of an environment (:func:`command_path`)."""

    inner: Launcher
    path: str

    def run(
        self,
        argv: Sequence[str],
        *,
        workspace: Path,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        limits: Limits | None = None,
        shell: bool = False,
        hidden: Sequence[str] = (),
    ) -> CommandResult:
        return self.inner.run(
            argv, workspace=workspace, cwd=cwd, env={**(env or {}), "PATH": self.path},
            limits=limits, shell=shell, hidden=hidden,
        )  # fmt: skip

    def report(self) -> IsolationReport:
        return self.inner.report()


def environment_launcher(launcher: Launcher, env: Environment) -> Launcher:
    """``launcher`` with ``env``'s ``PATH`` when it names an interpreter, else itself."""
    return EnvironmentLauncher(launcher, command_path(env)) if env.python else launcher


NETWORK_ONCE = (
    "the setup had the network only once, on the base commit's files right after the plan "
    "was approved; run again here (a lockfile changed, or that setup failed) it has none"
)


def networked_setup(workspace: Path, env: Environment, timeout_s: float) -> Evidence | None:
    """``setup_evidence`` with outbound network (``sandbox/isolation/usernet.py``), for a
    setup that asks for it (``env.network``) and that a person allowed: the caller's
    business. Failing ``Evidence`` also when this machine cannot give a command the network
    without sharing its own (no bubblewrap, no slirp4netns)."""
    try:
        launcher = make_launcher(min_level="bubblewrap", network=True)
    except SandboxError as err:
        return Evidence(check="environment setup", command=env.setup, exit_code=None,
                        passed=False, duration_s=0.0, summary=str(err))  # fmt: skip
    return setup_evidence(workspace, env, launcher, timeout_s, networked=True)


def setup_evidence(
    workspace: Path,
    env: Environment,
    launcher: Launcher,
    timeout_s: float,
    *,
    networked: bool = False,
) -> Evidence | None:
    """Run ``env.setup`` once for ``workspace`` (a worktree: the marker lives in its own git
    directory, never in the tree); failing ``Evidence`` when it fails or leaves files git
    would commit, ``None`` when it passed or had nothing to do. ``networked``: ``launcher``
    gives it the network."""
    if not env.setup:
        return None
    marker = _private_git_dir(workspace) / "shipyard-environment"
    before = _untracked(workspace)
    try:
        prepare(env, workspace, launcher, marker, timeout_s)
        left = sorted(_untracked(workspace) - before)
        if left:
            marker.unlink(missing_ok=True)
            raise EnvironmentSetupError(
                f"environment setup left files git would commit: {', '.join(left[:5])}; "
                "ignore them in .gitignore so they never reach a commit"
            )
    except EnvironmentSetupError as err:
        why = str(err) if networked or not env.network else f"{err} ({NETWORK_ONCE})"
        return Evidence(check="environment setup", command=env.setup, exit_code=None,
                        passed=False, duration_s=0.0, summary=why)  # fmt: skip
    return None


def _private_git_dir(workspace: Path) -> Path:
    done = subprocess.run(["git", "rev-parse", "--absolute-git-dir"], cwd=workspace,
                          capture_output=True, text=True, check=True)  # fmt: skip
    return Path(done.stdout.strip())


def _untracked(workspace: Path) -> set[str]:
    done = subprocess.run(["git", "ls-files", "--others", "--exclude-standard", "--directory"],
                          cwd=workspace, capture_output=True, text=True, check=True)  # fmt: skip
    return set(done.stdout.splitlines())


__all__ = [
    "Environment",
    "EnvironmentLauncher",
    "EnvironmentSetupError",
    "command_path",
    "environment_checks",
    "environment_launcher",
    "interpreter",
    "networked_setup",
    "prepare",
    "python_path",
    "setup_evidence",
    "setup_key",
]
