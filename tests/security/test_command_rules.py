"""An allowed program cannot be made to run another one (category: exec-option).

The hostile cases (:data:`CASES`, 14) go through the product path in one whole run with
``Runner`` and the scripted model: the developer plants what the payloads need with
``write_file`` (a file to search, an argument list, a nested repository) and then calls
``run_command`` once per case with a form by which a program the policy allows (or its kin)
runs another program. The run's policy allows everything (``allow = ["* *"]``) so that only
the exec-form check stands between the form and the payload. Each case asserts the whole
outcome: the tool result says denied and names the rule and the form, the
``policy.command`` event records ``deny`` with that rule, the marker file the payload would
create (inside the workspace, where the sandbox would let it be written) does not exist
there, in the repository or on the run's branch, and the run completes normally.

Every case with a payload the machine can run also runs it directly, outside Shipyard, in a
scratch repository with the same files, and sees the marker appear: the form is real, so
the test could fail.
"""

from __future__ import annotations

import dataclasses
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from shipyard.contracts import RunInput
from shipyard.lifecycle.runner import Runner
from shipyard.settings import Settings
from tests.integration.conftest import MakeRepo, WriteScript, make_repo, write_script
from tests.support import PASSING_TEST, call, finish, git, plan_reply

__all__ = ["make_repo", "write_script"]  # fixtures used here

ALLOW_ALL = {"approvals": {"plan": "never"}, "commands": {"allow": ["* *"]}}


class Case(NamedTuple):
    command: str
    """The command line; ``{m}`` is the marker file its payload would create."""
    form: str
    """Text the refusal must show: the form, as the check names it."""
    rule: str = "exec-option"
    planted: dict[str, str] = {}  # noqa: RUF012 - a NamedTuple default, never mutated
    needs: str = ""
    """A program the direct control run needs besides git (skipped where missing)."""
    marker_dir: str = ""


NESTED_CONFIG = "[core]\n\trepositoryformatversion = 0\n\tfsmonitor = touch {m}; false\n"
CASES = {
    "git-grep-pager": Case(
        'git grep --open-files-in-pager="python3 -c \'open(\\"{m}\\",\\"w\\")\'" foo',
        "git grep --open-files-in-pager",
        needs="python3",
    ),
    "git-grep-pager-abbreviated": Case(
        "git grep --open-files-in-p='touch {m}' foo", "written --open-files-in-p"
    ),
    "git-grep-pager-in-cluster": Case("git grep -nO'touch {m}' foo", "git grep -O"),
    "git-config-alias": Case("git -c alias.x='!touch {m}' x", "git -c 'alias.x"),
    "git-config-fsmonitor": Case(
        "git -c core.fsmonitor='touch {m}; false' status", "git -c 'core.fsmonitor"
    ),
    "git-config-pager": Case("git -c core.pager='sh -c \"touch {m}\"' log", "git -c 'core.pager"),
    "git-diff-external": Case(
        "git -c diff.external='sh -c \"touch {m}\"' diff",
        "git -c 'diff.external",
        planted={"README.md": "foo changed\n"},
    ),
    "git-diff-output": Case("git diff --output={m} HEAD", "git diff --output"),
    "git-nested-repository": Case(
        "git -C sub status",
        "git -C uses another repository",
        planted={
            "sub/.git/HEAD": "ref: refs/heads/main\n",
            "sub/.git/objects/info/.keep": "",
            "sub/.git/refs/heads/.keep": "",
            "sub/.git/config": NESTED_CONFIG,
        },
        marker_dir="sub",
    ),
    "rg-preprocessor": Case(
        "rg --pre sh foo", "rg --pre", planted={"notes.txt": "touch {m}  # foo\n"}, needs="rg"
    ),
    "env-python": Case('env python3 -c \'open("{m}", "w")\'', "python3 -c", needs="python3"),
    "xargs-argument-file": Case(
        "xargs -a list.txt touch",
        "xargs runs a program",
        rule="exec-program",
        planted={"list.txt": "{m}\n"},
        needs="xargs",
    ),
    "find-exec": Case("find . -maxdepth 0 -exec touch {m} {{}} +", "find -exec", needs="find"),
    "timeout-shell": Case("timeout 60 sh -c 'touch {m}'", "sh -c", needs="timeout"),
}
"""The hostile cases, one marker each (``pwned-<name>``)."""


def _marker(name: str) -> str:
    return f"pwned-{name}"


def _command(name: str) -> str:
    return CASES[name].command.format(m=_marker(name))


def _planted(name: str) -> dict[str, str]:
    return {p: c.format(m=_marker(name)) for p, c in CASES[name].planted.items()}


def _marker_path(name: str) -> str:
    return str(Path(CASES[name].marker_dir, _marker(name)))


@pytest.mark.parametrize("name", CASES)
def test_each_hostile_form_really_runs_its_payload_outside_shipyard(
    name: str, make_repo: MakeRepo, tmp_path: Path
) -> None:
    """The control: run directly in a copy of the repository with the planted files, the
    payload creates its marker (a pager needs a terminal, so that case has no control)."""
    case = CASES[name]
    if case.needs and shutil.which(case.needs) is None:
        pytest.skip(f"{case.needs} is not installed")
    if "core.pager" in case.command:
        pytest.skip("git starts a pager only on a terminal")
    scratch = tmp_path / "scratch"
    shutil.copytree(make_repo({"README.md": "foo\n"}), scratch)
    for path, content in _planted(name).items():
        (scratch / path).parent.mkdir(parents=True, exist_ok=True)
        (scratch / path).write_text(content)
    command = shlex.split(_command(name))
    subprocess.run(command, cwd=scratch, capture_output=True, timeout=60, check=False)
    assert (scratch / _marker_path(name)).exists(), f"the payload of {name} did not run"


async def test_every_exec_form_is_refused_through_the_product_path(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    """One run in which the developer tries every case in :data:`CASES` in turn."""
    repo = make_repo({"README.md": "foo\n", "tests/test_ok.py": PASSING_TEST})
    plants = [call("write_file", path=p, content=c) for n in CASES for p, c in _planted(n).items()]
    commands = [call("run_command", command=_command(name)) for name in CASES]
    turns = [*plants, *commands, finish("tried")]
    script = {"planner": [plan_reply(("s1", "search"))], "developer": {"s1/1": turns}}
    scripted = dataclasses.replace(settings, model_script=write_script(script))
    async with Runner.open(scripted) as runner:
        stop = await runner.start(RunInput(goal="search", repo=str(repo), policy=ALLOW_ALL))
        entries = runner.context.journal.entries(stop.run_id)
        events = runner.context.runs.events(stop.run_id)

    assert stop.status == "completed", stop
    tools = {e.call_id: str((e.outcome or {}).get("content")) for e in entries}
    decisions = [e.payload for e in events if e.kind == "policy.command"]
    assert len(decisions) == len(CASES)
    workspace = settings.workspaces / stop.run_id
    branch = git(repo, "ls-tree", "-r", "--name-only", f"shipyard/{stop.run_id}").splitlines()
    failures = []
    for index, name in enumerate(CASES):
        result = tools[f"tool.{len(plants) + index}.0"]
        try:
            _assert_refused(name, result, decisions[index], [workspace, repo], branch)
        except AssertionError as err:
            failures.append(f"{name}: {err}")
    assert not failures, "\n".join(failures)


def _assert_refused(
    name: str, result: str, decision: dict[str, Any], roots: list[Path], branch: list[str]
) -> None:
    case = CASES[name]
    assert result.startswith("denied by policy"), result
    assert f'(built-in rule "{case.rule}")' in result, result
    assert case.form in result, result
    assert (decision["action"], decision["rule"]) == ("deny", case.rule), decision
    assert decision["argv"] == shlex.split(_command(name)), decision
    marker = _marker_path(name)
    assert not any((root / marker).exists() for root in roots), marker
    assert marker not in branch, marker
