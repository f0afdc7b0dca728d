"""Checks that produce evidence, run for real through the launcher on temporary git repos."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from shipyard.contracts import Evidence, Finding
from shipyard.errors import PolicyError
from shipyard.policy.config import load_policy
from shipyard.sandbox.launcher import Limits, make_launcher
from shipyard.store.artifacts import ArtifactStore
from shipyard.tools import git
from shipyard.tools.checks import (
    CheckSpec,
    MemoryCheckCache,
    command_key,
    detect_checks,
    run_checks,
    targeted_tests,
    verdict_from,
)

PY = sys.executable


class Artifacts(ArtifactStore):
    def text(self, ref: str) -> str:
        return self.read(ref).decode()


def write(root: Path, files: dict[str, str]) -> None:
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body).lstrip("\n"))


def commit(root: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env |= {"GIT_AUTHOR_NAME": "u", "GIT_AUTHOR_EMAIL": "u@x", "GIT_COMMITTER_NAME": "u"}
    env |= {"GIT_COMMITTER_EMAIL": "u@x"}
    for args in (["add", "-A"], ["commit", "-q", "-m", "c"]):
        subprocess.run(["git", "-C", str(root), *args], check=True, env=env)


# Every test function appends its name to runs.log (ignored by git), proving what ran.
MARK = """
    import pathlib


    def mark(name):
        with pathlib.Path(__file__).resolve().parents[1].joinpath("runs.log").open("a") as fh:
            fh.write(name + "\\n")
"""

PROJECT = {
    ".gitignore": "runs.log\n",
    "pyproject.toml": """
        [tool.pytest.ini_options]
        testpaths = ["tests"]

        [tool.ruff]
        line-length = 100
    """,
    "calc.py": """
        import os


        def add(a, b):
            return a + b


        def div(a, b):
            return a / b
    """,
    "other.py": "VALUE = 1\n",
    "tests/mark.py": MARK,
    "tests/test_calc.py": """
        from calc import add, div
        from tests.mark import mark


        def test_add():
            mark("test_add")
            assert add(1, 2) == 3


        def test_add_wrong():
            mark("test_add_wrong")
            assert add(1, 2) == 4


        class TestDiv:
            def test_div_zero(self):
                mark("test_div_zero")
                assert div(1, 0) == 0
    """,
    "tests/test_other.py": """
        from other import VALUE
        from tests.mark import mark


        def test_value():
            mark("test_value")
            assert VALUE == 1
    """,
    "tests/__init__.py": "",
}

FIXED = {
    "calc.py": """
        def add(a, b):
            return a + b


        def div(a, b):
            return a / b if b else 0
    """,
    "tests/test_calc.py": """
        from calc import add, div
        from tests.mark import mark


        def test_add():
            mark("test_add")
            assert add(1, 2) == 3


        def test_div_zero():
            mark("test_div_zero")
            assert div(1, 0) == 0
    """,
}


@pytest.fixture(scope="module")
def launcher():
    return make_launcher()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    write(root, PROJECT)
    commit(root)
    return root


@pytest.fixture
def artifacts(tmp_path: Path) -> Artifacts:
    return Artifacts(tmp_path / "artifacts")


def runs(root: Path) -> list[str]:
    log = root / "runs.log"
    return log.read_text().split() if log.exists() else []


def check(project, launcher, artifacts, specs=None, **kw) -> list[Evidence]:
    specs = detect_checks(project) if specs is None else specs
    return run_checks(
        specs, workspace=project, launcher=launcher, artifacts=artifacts, run_id="r1", **kw
    )


# -- detection ----------------------------------------------------------------------------


def test_detects_pytest_and_ruff_with_this_interpreter(project: Path) -> None:
    specs = detect_checks(project)
    assert [(s.name, s.kind) for s in specs] == [("pytest", "pytest"), ("ruff", "ruff")]
    assert specs[0].argv == [PY, "-m", "pytest", "-q"]
    assert specs[1].argv == [PY, "-m", "ruff", "check", "--no-cache", "."]


def test_detection_prefers_the_workspace_venv_and_finds_mypy_and_npm(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pyproject.toml": '[tool.mypy]\nfiles = ["src"]\n',
            "package.json": '{"scripts": {"test": "node test.js"}}',
            "tests/test_x.py": "",
            ".venv/bin/python": "",
            ".venv/lib/python3.11/site-packages/pytest/__init__.py": "",
        },
    )
    specs = {s.name: s for s in detect_checks(tmp_path)}
    assert specs["pytest"].argv == [".venv/bin/python", "-m", "pytest", "-q"]
    assert specs["mypy"].argv == [PY, "-m", "mypy"] and specs["mypy"].kind == "mypy"
    assert specs["npm-test"].argv == ["npm", "test", "--silent"]
    assert "ruff" not in specs


def test_detection_skips_placeholder_npm_script_and_empty_repo(tmp_path: Path) -> None:
    placeholder = '{"scripts": {"test": "echo \\"Error: no test specified\\" && exit 1"}}'
    write(tmp_path, {"package.json": placeholder, "mypy.ini": "[mypy]\nstrict = True\n"})
    assert [(s.name, s.argv[-1]) for s in detect_checks(tmp_path)] == [("mypy", ".")]
    (tmp_path / "mypy.ini").unlink()
    assert detect_checks(tmp_path) == []


def test_configured_checks_replace_detection(project: Path) -> None:
    configured = [{"name": "unit", "argv": "python3 -m pytest -x 'tests/a b.py'", "kind": "pytest"}]
    assert detect_checks(project, configured) == [
        CheckSpec(
            name="unit", argv=["python3", "-m", "pytest", "-x", "tests/a b.py"], kind="pytest"
        )
    ]
    assert detect_checks(project, []) == []


def test_checks_from_a_policy_file_are_accepted(project: Path) -> None:
    text = '[[checks.run]]\nname = "lint"\ncommand = "ruff check ."\nkind = "ruff"\n'
    (project / ".shipyard.toml").write_text(text)
    policy = load_policy(project)
    assert detect_checks(project, policy.checks.run) == [
        CheckSpec(name="lint", argv=["ruff", "check", "."], kind="ruff")
    ]


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"name": "x", "argv": [], "kind": "pytest"}, "checks[0].argv"),
        ({"name": "x", "argv": ["a"], "kind": "jest"}, "checks[0].kind"),
        ({"name": "x", "argv": ["a"], "timeout": -1}, "checks[0].timeout"),
        ({"name": "x", "argv": ["a"], "shell": True}, "checks[0].shell"),
        ({"name": "x", "argv": "a 'unclosed"}, "checks[0].argv"),
        ({"name": "bad name", "argv": ["a"]}, "checks[0].name"),
    ],
)
def test_invalid_configured_check_names_the_field(project: Path, item, field) -> None:
    with pytest.raises(PolicyError) as err:
        detect_checks(project, [item])
    assert err.value.field == field and str(err.value).startswith(field)


# -- running and parsing ------------------------------------------------------------------


def test_failing_pytest_and_ruff_become_evidence(project, launcher, artifacts) -> None:
    tree_before = git.snapshot_tree(project)
    pytest_ev, ruff_ev = check(project, launcher, artifacts)

    assert (pytest_ev.check, pytest_ev.exit_code, pytest_ev.passed) == ("pytest", 1, False)
    assert pytest_ev.summary == "pytest: 2 passed, 2 failed, 0 errors, 0 skipped (exit 1)"
    by_id = {f.id: f for f in pytest_ev.failures}
    assert sorted(by_id) == [
        "tests/test_calc.py::TestDiv::test_div_zero",
        "tests/test_calc.py::test_add_wrong",
    ]
    wrong = by_id["tests/test_calc.py::test_add_wrong"]
    assert wrong.message.startswith("assert 3 == 4")
    assert (wrong.path, wrong.line) == ("tests/test_calc.py", 12)
    assert (
        ">       assert add(1, 2) == 4" in wrong.detail and "E       assert 3 == 4" in wrong.detail
    )
    zero = by_id["tests/test_calc.py::TestDiv::test_div_zero"]
    assert "ZeroDivisionError" in zero.message
    assert (zero.path, zero.line) == ("calc.py", 9)  # where it failed: the deepest frame
    log = artifacts.text(pytest_ev.log_ref)
    assert "2 failed, 2 passed" in log and "exit code: 1" in log
    assert pytest_ev.isolation is not None and pytest_ev.isolation.level != "none"

    assert (ruff_ev.check, ruff_ev.exit_code, ruff_ev.passed) == ("ruff", 1, False)
    assert ruff_ev.summary == "ruff: 1 violation"
    [unused] = ruff_ev.failures
    assert (unused.id, unused.path, unused.line) == ("F401", "calc.py", 1)
    assert "`os` imported but unused" in unused.message
    assert unused.detail.endswith("1 | import os")
    assert artifacts.text(ruff_ev.log_ref).startswith("$ ")

    assert verdict_from([pytest_ev, ruff_ev]).passed is False
    # The report files are gone and the files (hence the cache key) are unchanged.
    assert not list(project.glob(".shipyard-report-*"))
    assert git.snapshot_tree(project) == tree_before


def test_green_tree_passes(project, launcher, artifacts) -> None:
    write(project, FIXED)
    evidence = check(project, launcher, artifacts)
    assert [(e.check, e.passed, e.failures) for e in evidence] == [
        ("pytest", True, []),
        ("ruff", True, []),
    ]
    assert evidence[0].summary == "pytest: 3 passed, 0 failed, 0 errors, 0 skipped (exit 0)"
    verdict = verdict_from(evidence)
    assert verdict.passed and verdict.evidence == evidence
    warn = Finding(source="reviewer", severity="warning", message="naming")
    assert verdict_from(evidence, [warn]).passed
    error = Finding(source="reviewer", severity="error", message="wrong approach")
    assert verdict_from(evidence, [error]).passed is False


def test_failure_detail_is_a_compact_slice(project, launcher, artifacts) -> None:
    write(project, {"tests/test_big.py": "def test_big():\n    assert 'x' * 20000 == 'y'\n"})
    [ev] = check(project, launcher, artifacts, [CheckSpec(name="t", argv=[PY, "-m", "pytest",
        "tests/test_big.py"], kind="pytest")])  # fmt: skip
    [failure] = ev.failures
    assert failure.id == "tests/test_big.py::test_big"
    assert 0 < len(failure.detail) <= 1500 and "assert" in failure.detail
    assert len(artifacts.text(ev.log_ref)) > 20000


def test_collection_and_fixture_errors_are_failures(project, launcher, artifacts) -> None:
    write(
        project,
        {
            "tests/test_broken.py": "def test_x(:\n    pass\n",
            "tests/test_fixture.py": """
                import pytest


                @pytest.fixture
                def db():
                    raise RuntimeError("fixture broke")


                def test_uses_db(db):
                    pass
            """,
        },
    )
    spec = CheckSpec(name="pytest", argv=[PY, "-m", "pytest", "tests/test_broken.py",
        "tests/test_fixture.py"], kind="pytest")  # fmt: skip
    [ev] = check(project, launcher, artifacts, [spec])
    assert (ev.passed, ev.exit_code) == (False, 2)
    assert [(f.id, f.message, f.path, f.line) for f in ev.failures] == [
        ("tests/test_broken.py", "collection failure", "tests/test_broken.py", 1),
    ]
    assert "SyntaxError" in ev.failures[0].detail
    spec = CheckSpec(name="pytest", argv=[PY, "-m", "pytest", "tests/test_fixture.py"],
        kind="pytest")  # fmt: skip
    [ev] = check(project, launcher, artifacts, [spec])
    assert [(f.id, f.message, f.path, f.line) for f in ev.failures] == [
        (
            "tests/test_fixture.py::test_uses_db",
            'failed on setup with "RuntimeError: fixture broke"',
            "tests/test_fixture.py",
            6,
        ),
    ]
    assert ev.summary == "pytest: 0 passed, 0 failed, 1 errors, 0 skipped (exit 1)"


def test_exit_code_check_and_mypy(project, launcher, artifacts) -> None:
    write(project, {"typed.py": "def f(x: int) -> str:\n    return x\n"})
    specs = [
        CheckSpec(name="script", argv=[PY, "-c", "print('boom'); raise SystemExit(3)"]),
        CheckSpec(name="ok", argv=[PY, "-c", "pass"]),
        CheckSpec(name="mypy", argv=[PY, "-m", "mypy", "--no-incremental", "typed.py"],
                  kind="mypy"),
    ]  # fmt: skip
    script, ok, mypy = check(project, launcher, artifacts, specs)
    assert (script.passed, script.exit_code, script.summary) == (False, 3, "script: exit code 3")
    assert script.failures[0].id == "script" and "boom" in script.failures[0].detail
    assert (ok.passed, ok.failures) == (True, [])
    assert (mypy.passed, mypy.exit_code, mypy.summary) == (False, 1, "mypy: 1 error")
    [err] = mypy.failures
    assert (err.id, err.path, err.line) == ("return-value", "typed.py", 2)
    assert "Incompatible return value type" in err.message


def test_limit_hit_is_a_failed_check_saying_which_and_not_cached(
    project, launcher, artifacts
) -> None:
    spec = CheckSpec(name="slow", argv=[PY, "-c", "import time; time.sleep(30)"], timeout=1)
    cache = MemoryCheckCache()
    [ev] = check(project, launcher, artifacts, [spec], cache=cache)
    assert (ev.passed, ev.exit_code is None or ev.exit_code != 0) == (False, True)
    assert ev.summary == "slow: timed out after 1 s"
    assert ev.failures[0].message == "timed out after 1 s"
    assert ev.duration_s < 10
    [again] = check(project, launcher, artifacts, [spec], cache=cache)
    assert again.cached is False and again.summary == "slow: timed out after 1 s"


def test_hostile_junit_report_is_not_parsed(project, launcher, artifacts) -> None:
    fake = """
        import sys
        path = [a for a in sys.argv if a.startswith("--junitxml=")][0].split("=", 1)[1]
        open(path, "w").write('<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaa">]>'
            '<testsuite tests="1" failures="1"><testcase name="x"><failure message="&a;"/>'
            '</testcase></testsuite>')
        print("fake runner output")
        sys.exit(1)
    """
    write(project, {"fake_runner.py": fake})
    spec = CheckSpec(name="fake", argv=[PY, "fake_runner.py"], kind="pytest")
    [ev] = check(project, launcher, artifacts, [spec])
    assert ev.passed is False
    assert ev.summary == (
        "fake: report missing or invalid: not well-formed JUnit XML, or it declares a DTD (exit 1)"
    )
    assert [f.id for f in ev.failures] == ["fake"]
    assert "fake runner output" in ev.failures[0].detail


# -- cache ----------------------------------------------------------------------------------


def test_unchanged_tree_is_never_checked_twice(project, launcher, artifacts) -> None:
    cache = MemoryCheckCache()
    first = check(project, launcher, artifacts, cache=cache)
    ran = runs(project)
    assert sorted(ran) == ["test_add", "test_add_wrong", "test_div_zero", "test_value"]
    second = check(project, launcher, artifacts, cache=cache)
    assert runs(project) == ran  # nothing ran again (runs.log is ignored by git)
    assert [e.cached for e in first] == [False, False]
    assert [e.cached for e in second] == [True, True]
    assert [e.cached_from for e in second] == ["r1", "r1"]
    assert [e.summary for e in second] == [f"{e.summary} (cached from run r1)" for e in first]
    same = {"cached", "cached_from", "summary", "log_ref"}
    assert [e.model_dump(exclude=same) for e in second] == [
        e.model_dump(exclude=same) for e in first
    ]
    for hit, original in zip(second, first, strict=True):
        assert hit.log_ref != original.log_ref and hit.log_ref.startswith("artifact://r1/")
        assert artifacts.text(original.log_ref) in artifacts.text(hit.log_ref)
    write(project, {"other.py": "VALUE = 1  # touched\n"})
    third = check(project, launcher, artifacts, cache=cache)
    assert [e.cached for e in third] == [False, False] and len(runs(project)) == 8


def test_command_key_depends_on_the_command() -> None:
    a = CheckSpec(name="pytest", argv=["pytest"], kind="pytest")
    b = CheckSpec(name="pytest", argv=["pytest", "-x"], kind="pytest")
    assert command_key(a) == command_key(a) != command_key(b)
    assert command_key(a) != command_key(a, ["tests/test_calc.py"])


# -- targeted first ------------------------------------------------------------------------


def test_targeted_tests_selection(project: Path) -> None:
    write(project, {"tests/unit/test_other.py": ""})
    assert targeted_tests(project, ["calc.py", "README.md", "gone.py"]) == ["tests/test_calc.py"]
    assert targeted_tests(project, ["other.py", "tests/test_calc.py"]) == [
        "tests/test_calc.py",
        "tests/test_other.py",
        "tests/unit/test_other.py",
    ]
    assert targeted_tests(project, ["../../etc/test_passwd.py", "tests/__init__.py"]) == []


def test_failing_targeted_tests_stop_before_full_suite(project, launcher, artifacts) -> None:
    specs = detect_checks(project)
    evidence = check(project, launcher, artifacts, specs, changed_files=["calc.py"])
    assert [(e.check, e.passed) for e in evidence] == [
        ("pytest[targeted]", False),
        ("ruff", False),
    ]
    assert evidence[0].command == [*specs[0].argv, "tests/test_calc.py"]
    assert len(evidence[0].failures) == 2
    assert "test_value" not in runs(project)  # the full suite never ran


def test_passing_targeted_tests_then_full_suite(project, launcher, artifacts) -> None:
    write(project, FIXED)
    evidence = check(project, launcher, artifacts, changed_files=["calc.py"])
    assert [(e.check, e.passed) for e in evidence] == [
        ("pytest[targeted]", True),
        ("pytest", True),
        ("ruff", True),
    ]
    targeted_then_full = ["test_add", "test_div_zero", "test_add", "test_div_zero", "test_value"]
    assert runs(project) == targeted_then_full


def test_secrets_in_output_are_redacted_everywhere_stored(project, launcher, artifacts) -> None:
    key = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0"
    write(project, {"tests/test_leak.py": f"""
        def test_leak():
            print("API_KEY={key}")
            assert "{key}" == "other"
    """})  # fmt: skip
    spec = CheckSpec(name="leak", argv=[PY, "-m", "pytest", "tests/test_leak.py"], kind="pytest")
    [ev] = check(project, launcher, artifacts, [spec])
    assert ev.passed is False and ev.failures
    stored = ev.model_dump_json() + artifacts.text(ev.log_ref)
    assert key not in stored and "[REDACTED" in stored
    assert "[REDACTED" in ev.failures[0].detail


def test_toolchain_change_misses_the_cache(project, launcher, artifacts) -> None:
    """A program outside the tree (an ignored venv's tool) changes: the cached result of the
    old one is not used, though the tree hash is the same."""
    tool = project / ".venv" / "bin" / "tool"
    tool.parent.mkdir(parents=True)
    write(project, {".gitignore": "runs.log\n.venv/\n"})
    tool.write_text("#!/bin/sh\nexit 0\n")
    tool.chmod(0o755)
    spec = CheckSpec(name="tool", argv=[".venv/bin/tool"])
    cache = MemoryCheckCache()
    [first] = check(project, launcher, artifacts, [spec], cache=cache)
    [second] = check(project, launcher, artifacts, [spec], cache=cache)
    tree = git.snapshot_tree(project)
    tool.write_text("#!/bin/sh\necho broken toolchain\nexit 3\n")
    assert git.snapshot_tree(project) == tree
    [third] = check(project, launcher, artifacts, [spec], cache=cache)
    assert [e.cached for e in (first, second, third)] == [False, True, False]
    assert (first.passed, third.passed, third.exit_code) == (True, False, 3)


def test_owner_policy_and_limits_separate_cache_entries(project, launcher, artifacts) -> None:
    spec = CheckSpec(name="true", argv=["true"])
    cache = MemoryCheckCache()

    def cached(**kw: object) -> bool:
        [ev] = check(project, launcher, artifacts, [spec], cache=cache, **kw)
        return ev.cached

    assert cached(owner="a", policy_hash="p") is False
    assert cached(owner="a", policy_hash="p") is True
    assert cached(owner="b", policy_hash="p") is False
    assert cached(owner="a", policy_hash="q") is False
    assert cached(owner="a", policy_hash="p", limits=Limits(processes=64)) is False


def test_cache_hit_whose_log_is_gone_runs_again(project, launcher, artifacts) -> None:
    spec = CheckSpec(name="true", argv=["true"])
    cache = MemoryCheckCache()
    [first] = check(project, launcher, artifacts, [spec], cache=cache)
    assert first.log_ref is not None
    artifacts.path(first.log_ref).unlink()
    [again] = check(project, launcher, artifacts, [spec], cache=cache)
    assert again.cached is False and again.passed and again.log_ref != first.log_ref


@pytest.mark.parametrize(
    ("report", "why"),
    [
        (
            '<testsuite tests="x" failures="1"><testcase name="t" line="y"><failure message="m"/>'
            "</testcase></testsuite>",
            None,
        ),
        ("<testsuite", "not well-formed JUnit XML"),
    ],
)
def test_malformed_report_never_raises(project, launcher, artifacts, report, why) -> None:
    fake = f"""
        import sys
        path = [a for a in sys.argv if a.startswith("--junitxml=")][0].split("=", 1)[1]
        open(path, "w").write({report!r})
    """
    write(project, {"fake_runner.py": fake})
    spec = CheckSpec(name="fake", argv=[PY, "fake_runner.py"], kind="pytest")
    [ev] = check(project, launcher, artifacts, [spec])
    assert ev.passed is False and ev.exit_code == 0  # the report lists a failure: not a pass
    if why:
        assert ev.failures[0].message.startswith(f"fake: report missing or invalid: {why}")
    else:
        assert [f.message for f in ev.failures] == ["m"] and ev.failures[0].line is None


def test_a_check_whose_program_is_missing_is_failing_evidence(project, launcher, artifacts):
    spec = CheckSpec(name="lint", argv=["no-such-linter", "."], kind="exit-code")
    [ev] = check(project, launcher, artifacts, [spec])
    assert not ev.passed and ev.exit_code is None
    assert ev.summary == "lint: could not start: cannot start 'no-such-linter': program not found"
    assert artifacts.text(ev.log_ref) == ev.summary
