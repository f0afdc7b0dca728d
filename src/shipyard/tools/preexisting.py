"""Failures already present at the base commit: found by running the check there, not counted.

A check that fails on the step's tree is run a second time on the run's base commit: its
files exactly as committed there (a scratch checkout of the base commit's tree, which
nothing the change writes can reach), the check as detected or configured there, the same
sandbox, environment and limits, through the check cache (keyed by the base's tree, so once
per base and check). Failures are compared by identity
(:func:`~shipyard.tools.reports.failure_identity`): pytest by the set of failing node ids,
ruff and mypy by the multiset of (file, code, message) without line numbers, so a new copy
of an existing error is new. The step's check passes when every one of its failures fails
at the base too; otherwise it fails and its failures are the new ones only. Either way the
evidence says how many failures were already present and not counted (``preexisting``).

There is no comparison — the check fails as it did — when the step's report does not list
every failure (an exit-code or npm check, a timeout, a report that did not parse), when the
check does not exist at the base or its run there lists no individual failures, or when
the checks' environment imports the workspace's own code by absolute path (an editable
install), since the base commit's code could then not be run apart from the change. The
policy's ``[checks] baseline_failures = "fail"`` turns all of this off.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from shipyard.contracts import Evidence, Failure
from shipyard.policy.config import Policy
from shipyard.tools.baseline import SUFFIX, check_specs
from shipyard.tools.checkspec import CheckSpec
from shipyard.tools.environment import python_path
from shipyard.tools.git import _git
from shipyard.tools.reports import failure_identity

NOT_COUNTED = "already present at the base commit (not counted)"
"""How evidence words the failures it did not count."""

TARGETED = "[targeted]"

RunCheck = Callable[[CheckSpec, Sequence[str], Path, str], Evidence]
"""Runs a check with targets in a directory whose files are a tree (id): the validator's
launcher, limits and cache (``tools/checks.run_check``)."""


def judged_against_base(
    evidence: Sequence[Evidence],
    specs: Sequence[CheckSpec],
    *,
    workspace: Path,
    base: str,
    policy: Policy,
    scratch: Path,
    run: RunCheck,
) -> list[Evidence]:
    """``evidence`` (run from ``specs`` in ``workspace``) with each failing check compared
    with its run at ``base`` (module docstring); identities are dropped from what is
    returned, so the state stays small. ``scratch`` is a directory to create and remove."""
    failing = [e for e in evidence if not e.passed and e.identities]
    if policy.checks.baseline_failures == "fail" or not failing:
        return [_bare(e) for e in evidence]
    by_name = {s.name: s for s in specs}
    reason = _entangled(workspace, policy)
    results: dict[str, Evidence | str] = {}
    with base_checkout(workspace, base, scratch) as (directory, tree):
        at_base = {s.name: s for s in check_specs(directory, policy)}
        for ev in failing:
            name, targeted = _spec_name(ev.check)
            step_spec, base_spec = by_name.get(name), at_base.get(name)
            if reason is not None:
                results[ev.check] = reason
            elif step_spec is None or base_spec is None:
                results[ev.check] = "the check does not exist there"
            else:
                targets = ev.command[len(step_spec.argv) :] if targeted else []
                timed = base_spec.model_copy(update={"timeout": step_spec.timeout})
                results[ev.check] = run(timed, targets, directory, tree)
    kinds = {s.name: s.kind for s in specs}
    return [
        _bare(_judged(e, results[e.check], kinds.get(_spec_name(e.check)[0], "exit-code")))
        if e.check in results
        else _bare(e)
        for e in evidence
    ]


def unfinished(evidence: Sequence[Evidence], specs: Sequence[CheckSpec]) -> list[CheckSpec]:
    """The pytest checks whose targeted run now passes (its failures were all present at
    the base) but whose full run was skipped because it had failed: they still have to run."""
    names = {e.check for e in evidence}
    passed = {e.check for e in evidence if e.passed}
    return [s for s in specs if s.name + TARGETED in passed and s.name not in names]


def _spec_name(check: str) -> tuple[str, bool]:
    name = check.removesuffix(SUFFIX)
    return name.removesuffix(TARGETED), name.endswith(TARGETED)


def _bare(ev: Evidence) -> Evidence:
    return ev if ev.identities is None else ev.model_copy(update={"identities": None})


def _judged(step: Evidence, base: Evidence | str, kind: str) -> Evidence:
    """The step's failing ``step`` judged against its ``base`` run (or why there is none)."""
    if isinstance(base, Evidence) and not base.passed and base.identities is None:
        base = f"its run there lists no individual failures ({base.summary})"
    if isinstance(base, str):
        note = f" No comparison with the base commit: {base}."
        return step.model_copy(update={"summary": step.summary + note})
    new = _new(step.identities or [], base.identities or [], kind)
    count = len(step.identities or []) - len(new)
    if not new:
        summary = f"{step.summary}; all {count} failures {NOT_COUNTED}"
        update = {"passed": True, "failures": [], "failure_count": 0}
        return step.model_copy(update={**update, "summary": summary, "preexisting": count})
    summary = (
        f"{step.check}: {len(new)} new failure{'s' * (len(new) != 1)}; {count} "
        f"{'failure' if count == 1 else 'failures'} {NOT_COUNTED} ({step.summary})"
    )
    failures = _failures(step, new, kind)
    update = {"failures": failures, "failure_count": len(new), "preexisting": count}
    return step.model_copy(update={**update, "summary": summary})


def _new(step: Sequence[str], base: Sequence[str], kind: str) -> list[str]:
    """The step's identities not at the base: for pytest by set, otherwise by count."""
    if kind == "pytest":
        present = set(base)
        return [i for i in dict.fromkeys(step) if i not in present]
    return list((Counter(step) - Counter(base)).elements())


def _failures(step: Evidence, new: Sequence[str], kind: str) -> list[Failure]:
    """The new failures as evidence keeps them: the kept ones with their detail, the rest
    (beyond what evidence keeps) rebuilt from their identity, at most as many as kept."""
    wanted = Counter(new)
    found: list[Failure] = []
    for failure in step.failures:
        key = failure_identity(kind, failure)
        if wanted[key] > 0:
            wanted[key] -= 1
            found.append(failure)
    for key in wanted.elements():
        found.append(_rebuilt(key, kind))
    return found[: max(len(step.failures), 1)]


def _rebuilt(key: str, kind: str) -> Failure:
    if kind == "pytest":
        return Failure(id=key, message="fails (details in the check's log)")
    path, code, message = [*key.split("::", 2), "", ""][:3]
    detail = f"{path}: {code} {message} (line: see the check's log)"
    return Failure(id=code, message=message, path=path or None, detail=detail)


def _entangled(workspace: Path, policy: Policy) -> str | None:
    """Why the base commit's code cannot be run apart from the change: an environment the
    checks use names the workspace by absolute path (an editable install's ``.pth`` or
    ``__editable__`` finder); ``None`` when none does."""
    roots = [workspace / ".venv", workspace / "venv"]
    if policy.environment.python is not None:
        roots.append(Path(python_path(policy.environment)).parent.parent)
    names = {str(workspace), str(workspace.resolve())}
    for root in roots:
        for pattern in (
            "lib/python3*/site-packages/*.pth",
            "lib/python3*/site-packages/__editable__*.py",
        ):
            for path in root.glob(pattern):
                try:
                    text = path.read_text(encoding="utf-8", errors="replace")[:100_000]
                except OSError:
                    continue
                if any(name in text for name in names):
                    return f"the checks' environment imports the workspace's code ({path.name})"
    return None


@contextmanager
def base_checkout(workspace: Path, base: str, scratch: Path) -> Iterator[tuple[Path, str]]:
    """The files of commit ``base`` in ``scratch`` (created, removed after) and its tree id;
    the workspace's ignored virtualenv is linked in, as the checks use it."""
    tree = _git(workspace, "rev-parse", f"{base}^{{tree}}").stdout.decode().strip()
    if scratch.exists():
        _remove(scratch)
    scratch.mkdir(parents=True)
    try:
        with tempfile.TemporaryDirectory(prefix="shipyard-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            _git(workspace, "read-tree", tree, env=env)
            _git(workspace, "checkout-index", "-a", "-f", f"--prefix={scratch}/", env=env)
        for venv in (".venv", "venv"):
            if (workspace / venv).is_dir() and not (scratch / venv).exists():
                (scratch / venv).symlink_to(workspace / venv)
        yield scratch, tree
    finally:
        _remove(scratch)


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


__all__ = ["NOT_COUNTED", "RunCheck", "base_checkout", "judged_against_base", "unfinished"]
