"""Environments of checks (``tools/environment.py``): an interpreter of the task's own,
used read-only in the real sandbox, and a setup command run once per workspace — for the
harness's hidden tests and, through ``.shipyard.toml``, for a normal run's checks."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from shipyard.contracts import RunInput
from shipyard.evals.errors import HarnessError
from shipyard.evals.hidden import run_hidden
from shipyard.evals.task import Task
from shipyard.lifecycle.runner import Runner
from shipyard.llm import Script, ScriptedChatModel
from shipyard.policy.environment import Environment
from shipyard.sandbox.launcher import SandboxLauncher, make_launcher
from shipyard.settings import Role, Settings
from shipyard.tools.environment import setup_evidence
from tests.integration.eval_support import diff, make_calc_repo
from tests.support import call, finish, git, plan_reply

pytestmark = pytest.mark.slow  # whole runs through the graph

MARKER_TEST = """import os

import envmarker


def test_marker():
    assert envmarker.VALUE == 7


def test_read_only():
    try:
        open(os.path.join(os.path.dirname(envmarker.__file__), "x"), "w")
    except OSError:
        return
    raise AssertionError("the environment is writable")
"""


@pytest.fixture(scope="module")
def launcher() -> SandboxLauncher:
    return make_launcher()


def _venv(root: Path) -> Path:
    """A venv without pip that sees Shipyard's packages (pytest) and has ``envmarker``."""
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(root)], check=True)  # type: ignore[attr-defined]
    site = next((root / "lib").glob("python3*/site-packages"))
    (site / "shipyard_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (site / "envmarker.py").write_text("VALUE = 7\n")
    return root


def _task(test_patch: str, base: str, **environment: object) -> Task:
    return Task.model_validate({
        "instance_id": "env", "repo": "calc", "base_commit": base, "problem_statement": "x",
        "test_patch": test_patch, "environment": environment,
        "FAIL_TO_PASS": ["tests/test_env.py::test_marker", "tests/test_env.py::test_read_only"],
        "PASS_TO_PASS": [],
    })  # fmt: skip


def test_hidden_tests_use_the_tasks_interpreter_read_only(
    tmp_path: Path, launcher: SandboxLauncher
) -> None:
    repo, base = make_calc_repo(tmp_path / "calc")
    patch = diff(repo, {"tests/test_env.py": MARKER_TEST})
    venv = _venv(tmp_path / "venv")

    own = run_hidden(
        _task(patch, base, python=str(venv)), repo, base, tmp_path / "h1", launcher, 60, base=base
    )
    default = run_hidden(_task(patch, base), repo, base, tmp_path / "h2", launcher, 60, base=base)

    assert own.resolved, own.log
    assert set(own.fail_to_pass.values()) == {"PASSED"}
    assert str(venv / "bin" / "python") in own.log.splitlines()[0]
    assert not default.resolved  # Shipyard's own interpreter has no envmarker
    assert "No module named 'envmarker'" in default.log
    assert not (tmp_path / "h1").exists() and git(repo, "worktree", "list").count("\n") == 0


def test_a_setup_runs_in_the_hidden_tree_and_a_failing_one_is_a_harness_error(
    tmp_path: Path, launcher: SandboxLauncher
) -> None:
    repo, base = make_calc_repo(tmp_path / "calc")
    test = "from generated import VALUE\n\n\ndef test_marker():\n    assert VALUE == 7\n"
    patch = diff(repo, {"tests/test_env.py": test})
    write = "open('generated.py', 'w').write('VALUE = 7')"
    ids = {"FAIL_TO_PASS": ["tests/test_env.py::test_marker"]}
    made = _task(patch, base, setup=["python", "-c", write]).model_copy(update=ids)
    broken = _task(patch, base, setup=["python", "-c", "raise SystemExit(3)"])

    assert run_hidden(made, repo, base, tmp_path / "h1", launcher, 60, base=base).resolved
    with pytest.raises(HarnessError, match=r"environment setup .* failed \(exit 3\)"):
        run_hidden(broken, repo, base, tmp_path / "h2", launcher, 60, base=base)


def test_setup_runs_once_per_workspace_until_a_lockfile_changes(
    tmp_path: Path, launcher: SandboxLauncher
) -> None:
    repo, _ = make_calc_repo(tmp_path / "calc")
    (repo / ".gitignore").write_text("setup.log\n")
    (repo / "requirements.txt").write_text("a==1\n")
    append = "open('setup.log', 'a').write('ran\\n')"
    env = Environment(setup=["python", "-c", append], lockfiles=["requirements.txt"])

    assert setup_evidence(repo, env, launcher, 60) is None
    assert setup_evidence(repo, env, launcher, 60) is None
    assert (repo / "setup.log").read_text() == "ran\n"
    (repo / "requirements.txt").write_text("a==2\n")
    assert setup_evidence(repo, env, launcher, 60) is None
    assert (repo / "setup.log").read_text() == "ran\nran\n"

    leaves = Environment(setup=["python", "-c", "open('stray.txt', 'w').write('x')"])
    evidence = setup_evidence(repo, leaves, launcher, 60)
    assert evidence is not None and not evidence.passed
    assert "left files git would commit: stray.txt" in evidence.summary


async def test_a_runs_checks_use_the_policys_environment(
    settings: Settings, tmp_path: Path
) -> None:
    venv = _venv(tmp_path / "venv")
    repo, _ = make_calc_repo(tmp_path / "calc")
    (repo / "tests" / "test_env.py").write_text(MARKER_TEST)
    policy = f'[budgets]\nattempts_per_step = 1\n\n[environment]\npython = "{venv}"\n'
    (repo / ".shipyard.toml").write_text(policy)
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=T", "-c", "user.email=t@t", "commit", "-qm", "env test")
    script = {
        "planner": [plan_reply(("s1", "note"))],
        "developer": {"s1/1": [call("write_file", path="NOTE.md", content="x\n"), finish()]},
    }
    roles: tuple[Role, ...] = ("planner", "developer", "reviewer")
    models = {r: ScriptedChatModel(script=Script(script), role=r) for r in roles}
    overrides = {"approvals": {"plan": "never"}}
    async with Runner.open(settings, models=models) as runner:
        stop = await runner.start(RunInput(goal="note", repo=str(repo), policy=overrides))
    assert stop.status == "completed", stop.error
    assert stop.report is not None
    pytest_evidence = [e for e in stop.report.evidence if e.check == "pytest"]
    assert pytest_evidence and pytest_evidence[0].command[0] == str(venv / "bin" / "python")
