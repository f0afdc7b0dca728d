"""The launcher: every command the agent or a check runs goes through it (docs/architecture.md §5).

Always: argv without a shell (unless the caller — policy — allows one), an environment
allowlist without secrets, a fresh session killed as a whole on timeout, output caps that
keep the tail, rlimits. Then the strongest layers available (bubblewrap, a network
namespace, Landlock, seccomp, a pids cgroup); bubblewrap or Landlock confine the command to
the filesystem view of ``isolation.view``, and paths a caller names as hidden (the policy's
forbidden globs) are masked where bubblewrap can. What held and what is missing, with the
reason, is in ``report()`` and in every ``CommandResult.isolation``; nothing falls back
silently.

::

    launcher = make_launcher(min_level="namespace")
    result = launcher.run(["python", "-m", "pytest", "-q"], workspace=worktree)
    result.exit_code, result.limit, result.isolation.level
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel

from shipyard.contracts import ISOLATION_ORDER, IsolationLevel, IsolationReport
from shipyard.errors import SandboxError
from shipyard.sandbox.isolation import bubblewrap, seccomp, usernet, view
from shipyard.sandbox.isolation.cgroup import JOIN_FAILED, JOIN_FAILED_MARK, CgroupPool, PidsCgroup
from shipyard.sandbox.isolation.environment import build_env
from shipyard.sandbox.isolation.gate import Gate
from shipyard.sandbox.isolation.landlock import Ruleset
from shipyard.sandbox.isolation.layers import Layers, choose, report_hidden
from shipyard.sandbox.isolation.limit import infer_limit
from shipyard.sandbox.isolation.namespace import NetworkUnsharer
from shipyard.sandbox.isolation.probe import probe
from shipyard.sandbox.isolation.process import Outcome, apply_rlimits, collect, rlimit_pairs
from shipyard.sandbox.isolation.request import checked_argv, checked_cwd, start


@dataclass(frozen=True)
class Limits:
    """Resource limits for one command."""

    timeout_s: float = 300.0
    cpu_s: int = 600
    memory_bytes: int = 4 << 30
    file_size_bytes: int = 1 << 30
    processes: int = 512
    output_bytes: int = 64 << 10


class CommandResult(BaseModel):
    """What a command did. ``limit`` names the limit that ended it, if any."""

    argv: list[str]
    exit_code: int | None
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False
    truncated: bool = False
    limit: str | None = None
    isolation: IsolationReport


class Launcher(Protocol):
    """Runs one command inside the workspace with the strongest isolation available."""

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
    ) -> CommandResult: ...

    def report(self) -> IsolationReport: ...


@dataclass(frozen=True)
class HidingLauncher:
    """``inner`` with ``hidden`` (the policy's forbidden globs) added to every command."""

    inner: Launcher
    hidden: tuple[str, ...]

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
            argv,
            workspace=workspace,
            cwd=cwd,
            env=env,
            limits=limits,
            shell=shell,
            hidden=(*self.hidden, *hidden),
        )

    def report(self) -> IsolationReport:
        return self.inner.report()


def hiding(launcher: Launcher, globs: Sequence[str]) -> Launcher:
    """``launcher`` hiding the existing matches of ``globs`` from every command it runs."""
    return HidingLauncher(launcher, tuple(globs)) if globs else launcher


def level_at_least(a: IsolationLevel, b: IsolationLevel) -> bool:
    """True when isolation level ``a`` is as strong as ``b`` or stronger."""
    return ISOLATION_ORDER.index(a) >= ISOLATION_ORDER.index(b)


@dataclass
class _Plan:
    """How one command is started: full argv, environment, fds to pass, and either child
    steps (run between fork and exec) or a gate (bubblewrap: confined from outside)."""

    argv: list[str]
    env: dict[str, str]
    pass_fds: tuple[int, ...] = ()
    steps: list[Callable[[], None]] | None = None
    gate: Gate | None = None
    joins_cgroup: bool = False
    """``argv`` moves itself into the pids cgroup first (``PidsCgroup.join_then_exec``)."""
    network: usernet.UserNetwork | None = None
    """Attached at the gate: the command's outbound network (``isolation/usernet.py``)."""

    def preexec(self) -> Callable[[], None] | None:
        """The ``preexec_fn``, or ``None`` (none needed: CPython can then ``vfork``)."""
        steps = self.steps
        if not steps:
            return None

        def run_steps() -> None:
            for step in steps:
                step()

        return run_steps

    def spawned(self) -> None:
        """Close the parent's copies of the fds passed to the child."""
        gate_fds = self.gate.child_fds if self.gate is not None else ()
        for fd in self.pass_fds:
            if fd not in gate_fds:
                os.close(fd)
        if self.gate is not None:
            self.gate.spawned()


class SandboxLauncher:
    """The launcher at the strongest level available up to ``prefer``.

    ``disable`` names layers to treat as unavailable (``bubblewrap``, ``namespace``,
    ``landlock``, ``seccomp``, ``pids-cgroup``) — the fallback path, reported as such.
    ``network=True`` gives every command outbound network in its own namespace, this
    machine's loopback unreachable (``isolation/usernet.py``; bubblewrap and slirp4netns
    needed, else ``SandboxError``): only for what a person allowed it. ``tmp_root`` is where
    private ``HOME``/``TMPDIR`` directories are made below the bubblewrap level.
    """

    def __init__(
        self,
        *,
        prefer: IsolationLevel = "bubblewrap",
        limits: Limits | None = None,
        bwrap: str | None = None,
        disable: Collection[str] = (),
        network: bool = False,
        tmp_root: Path | None = None,
    ) -> None:
        if prefer not in ISOLATION_ORDER:
            raise SandboxError(f"unknown isolation level {prefer!r}; one of {ISOLATION_ORDER}")
        try:
            caps = probe(bwrap=bwrap, disable=disable)
        except ValueError as exc:
            raise SandboxError(str(exc)) from exc
        self._layers: Layers = choose(caps, prefer, network=network)
        pids_root = caps.pids_root if self._layers.pids_cgroup else None
        self._pool = _pool(pids_root) if pids_root is not None else None
        self._limits = limits or Limits()
        self._tmp_root = tmp_root
        self._seccomp = seccomp.Loader() if self._layers.seccomp else None
        self._netns = NetworkUnsharer() if self._layers.netns else None
        self._usernet = usernet.program_for(self._layers) if network else None

    @property
    def level(self) -> IsolationLevel:
        return self._layers.level

    def report(self) -> IsolationReport:
        return self._layers.report.model_copy(deep=True)

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
        """Run ``argv`` (through ``/bin/sh -c`` only if ``shell``) with cwd inside
        ``workspace``. ``hidden`` are workspace-relative globs (the policy's forbidden
        paths, same syntax) whose existing matches the command must not see; under
        bubblewrap they are masked, below it the report says they are not. A failing or
        limited command is a result; ``SandboxError`` only when it could not be started at
        all (bad argv/cwd, missing program, refused layer, too many hidden paths)."""
        lim = limits or self._limits
        argv = checked_argv(argv, shell)
        workdir = checked_cwd(workspace, cwd)
        masked = view.hidden_paths(workspace.resolve(), hidden)
        pairs = rlimit_pairs(
            cpu_s=lim.cpu_s,
            memory_bytes=lim.memory_bytes,
            file_size_bytes=lim.file_size_bytes,
            processes=lim.processes,
        )
        with contextlib.ExitStack() as stack:
            group = self._cgroup(lim, stack)
            where = _Where(workspace.resolve(), workdir, masked)
            plan = self._plan(argv, where, env, lim, pairs, stack)
            if group is not None and plan.gate is None:
                plan.steps = [group.join, *(plan.steps or [])]
            elif group is not None and self._pool is not None and self._pool.fast_self_join:
                plan.argv, plan.joins_cgroup = group.join_then_exec(plan.argv), True
            proc = start(plan.argv, workdir, plan.env, plan.preexec(), plan.pass_fds, argv[0])
            plan.spawned()
            if plan.gate is not None:
                moved_by_gate = None if plan.joins_cgroup else group
                plan.gate.open(
                    proc,
                    rlimits=pairs,
                    cgroup=moved_by_gate,
                    timeout_s=lim.timeout_s,
                    network=plan.network,
                )
            kill_all = group.kill_all if group is not None else None
            outcome = collect(
                proc, timeout_s=lim.timeout_s, output_bytes=lim.output_bytes, cleanup=kill_all
            )
            hit = group.limit_hit() if group is not None else False
        if plan.joins_cgroup and _join_failed(outcome):
            raise SandboxError(outcome.stderr.text().strip().splitlines()[-1])
        report = self.report()
        if shell:
            report.held.remove("argv-no-shell")
            report.missing["argv-no-shell"] = "a shell was allowed by policy for this command"
        if hidden:
            report_hidden(report, masked, under_bwrap=self._layers.bwrap is not None)
        return _result(argv, outcome, lim, report, processes_hit=hit)

    def _cgroup(self, lim: Limits, stack: contextlib.ExitStack) -> PidsCgroup | None:
        if self._pool is None:
            return None
        # Where bwrap joins the cgroup itself (see ``run``), bwrap and its pid-namespace init
        # are members too: two more pids, so the command still gets ``processes``.
        own = 2 if self._layers.bwrap and self._pool.fast_self_join else 0
        try:
            return stack.enter_context(self._pool.lease(lim.processes + own))
        except OSError as exc:
            raise SandboxError(f"cannot set up the command's pids cgroup: {exc}") from exc

    def _plan(
        self,
        argv: list[str],
        where: _Where,
        extra_env: Mapping[str, str] | None,
        lim: Limits,
        pairs: list[tuple[int, tuple[int, int]]],
        stack: contextlib.ExitStack,
    ) -> _Plan:
        if self._layers.bwrap:
            return self._bwrap_plan(argv, where, extra_env, lim, stack)
        steps: list[Callable[[], None]] = [lambda: apply_rlimits(pairs)]
        priv = stack.enter_context(
            tempfile.TemporaryDirectory(prefix="shipyard-cmd-", dir=self._tmp_root)
        )
        plan = _Plan(
            argv, build_env(os.environ, home=priv, tmpdir=priv, extra=extra_env), (), steps
        )
        if self._netns is not None:
            steps.append(self._netns)
        if self._layers.landlock_abi:
            path_var = plan.env.get("PATH", "")
            ruleset = Ruleset(
                self._layers.landlock_abi,
                view.landlock_rules(where.root, priv, path_var),
                deny_tcp=self._netns is None,
                under=view.landlock_mask_ruleset(self._layers.landlock_abi),
            )
            stack.callback(ruleset.close)
            steps.append(ruleset.restrict_self)
        if self._seccomp is not None:
            steps.append(self._seccomp)
        return plan

    def _bwrap_plan(
        self,
        argv: list[str],
        where: _Where,
        extra_env: Mapping[str, str] | None,
        lim: Limits,
        stack: contextlib.ExitStack,
    ) -> _Plan:
        """bwrap without a ``preexec_fn``: rlimits and the pids cgroup are applied from
        here to bwrap's sandbox process while it waits at its gate (see ``gate``)."""
        assert self._layers.bwrap is not None
        gate = Gate()
        stack.callback(gate.close)
        fds: tuple[int, ...] = ()
        if self._seccomp is not None:
            read_end, write_end = os.pipe()
            os.write(write_end, seccomp.program())
            os.close(write_end)
            fds = (read_end,)
        env = build_env(os.environ, home=bubblewrap.SANDBOX_HOME, tmpdir="/tmp", extra=extra_env)
        prefix = bubblewrap.command(
            self._layers.bwrap,
            workspace=where.root,
            cwd=where.workdir,
            tmp_size=lim.file_size_bytes,
            resolv_conf=usernet.resolv_conf() if self._usernet else None,
            seccomp_fd=fds[0] if fds else None,
            gate_fds=gate.child_fds,
            path_var=env.get("PATH", ""),
            hidden=where.hidden,
        )
        network = None
        if self._usernet is not None:
            network = usernet.UserNetwork(self._usernet)
            stack.callback(network.close)
        plan = _Plan([*prefix, "--", *argv], env, (*fds, *gate.child_fds), gate=gate)
        plan.network = network
        return plan


@dataclass(frozen=True)
class _Where:
    """Where one command runs: the resolved workspace, its cwd, the paths it must not see."""

    root: Path
    workdir: Path
    hidden: list[Path]


_POOLS: dict[Path, CgroupPool] = {}


def _pool(root: Path) -> CgroupPool:
    """One pool of cgroups per hierarchy for the whole process."""
    if root not in _POOLS:
        _POOLS[root] = CgroupPool(root)
    return _POOLS[root]


class ProcessLauncher(SandboxLauncher):
    """Level ``process`` only: session, rlimits, environment allowlist, output caps, plus
    Landlock, seccomp and a pids cgroup where available."""

    def __init__(
        self,
        *,
        limits: Limits | None = None,
        tmp_root: Path | None = None,
        disable: Collection[str] = (),
    ) -> None:
        super().__init__(prefer="process", limits=limits, tmp_root=tmp_root, disable=disable)


def make_launcher(
    min_level: IsolationLevel = "none",
    prefer: IsolationLevel = "bubblewrap",
    limits: Limits | None = None,
    *,
    disable: Collection[str] = (),
    network: bool = False,
    bwrap: str | None = None,
) -> SandboxLauncher:
    """The strongest launcher up to ``prefer``.

    Raises ``SandboxError`` naming what is missing when the best available level is below
    ``min_level`` (the policy decides whether that means ask or refuse).
    """
    if min_level not in ISOLATION_ORDER:
        raise SandboxError(f"unknown isolation level {min_level!r}; one of {ISOLATION_ORDER}")
    launcher = SandboxLauncher(
        prefer=prefer, limits=limits, bwrap=bwrap, disable=disable, network=network
    )
    if not level_at_least(launcher.level, min_level):
        missing = launcher.report().missing
        why = "; ".join(f"{k}: {v}" for k, v in missing.items() if k in _LEVEL_LAYERS)
        raise SandboxError(
            f"isolation level {min_level!r} required but only {launcher.level!r} is available"
            f" ({why or 'prefer=' + prefer})"
        )
    return launcher


_LEVEL_LAYERS = ("bubblewrap", "network-namespace")


def _join_failed(outcome: Outcome) -> bool:
    return outcome.returncode == JOIN_FAILED and JOIN_FAILED_MARK in outcome.stderr.text()


def _result(
    argv: list[str],
    outcome: Outcome,
    lim: Limits,
    report: IsolationReport,
    *,
    processes_hit: bool,
) -> CommandResult:
    stderr = outcome.stderr.text()
    return CommandResult(
        argv=argv,
        exit_code=outcome.returncode,
        stdout=outcome.stdout.text(),
        stderr=stderr,
        duration_s=outcome.duration_s,
        timed_out=outcome.timed_out,
        truncated=outcome.stdout.truncated or outcome.stderr.truncated,
        limit=infer_limit(
            returncode=outcome.returncode,
            timed_out=outcome.timed_out,
            cpu_used_s=outcome.cpu_s,
            cpu_limit_s=lim.cpu_s,
            processes_hit=processes_hit,
            stderr_tail=stderr,
        ),
        isolation=report,
    )
