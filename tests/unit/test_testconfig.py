"""The test-configuration classifier: which changed files alter how a change is tested."""

from __future__ import annotations

import json

import pytest

from shipyard.tools.plugins import Plugin, plugins_named
from shipyard.tools.testconfig import FileChange, classify, executed_files

PYPROJECT = '[project]\nname = "x"\ndependencies = ["requests>=2"]\n'


def _one(path: str, before: str | None, after: str | None, **kw: object) -> list[str]:
    change = FileChange(
        path,
        before.encode() if before is not None else None,
        after.encode() if after is not None else None,
    )
    return [t.reason for t in classify([change], **kw)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "before", "after", "reason"),
    [
        ("conftest.py", None, "x = 1\n", "new pytest hooks and fixtures"),
        ("deep/tests/conftest.py", "", "x = 1\n", "changed pytest hooks and fixtures"),
        ("tests/conftest.py", "x = 1\n", None, "removed pytest hooks and fixtures"),
        ("pytest.ini", None, "[pytest]\n", "new pytest configuration"),
        (".pytest.ini", "[pytest]\n", "[pytest]\naddopts=-q\n", "changed pytest configuration"),
        ("tox.ini", "", "[tox]\n", "changed tox and pytest configuration"),
        ("noxfile.py", None, "", "new nox sessions"),
        (".shipyard.toml", "", "[x]\n", "changed Shipyard policy, which configures the checks"),
        (".shipyard-report-1.xml", None, "", "a file named like the check runner's own report"),
    ],
)  # fmt: skip
def test_files_that_configure_testing_by_name(path, before, after, reason):
    assert _one(path, before, after) == [reason]


def test_pyproject_counts_only_a_change_to_its_pytest_tables():
    bump = PYPROJECT.replace(">=2", ">=3")
    assert _one("pyproject.toml", PYPROJECT, bump) == []
    assert _one("pyproject.toml", None, PYPROJECT) == []
    pytest_table = PYPROJECT + '[tool.pytest.ini_options]\naddopts = "-p forge"\n'
    assert _one("pyproject.toml", PYPROJECT, pytest_table) == [
        "changes [tool.pytest…] in pyproject.toml"
    ]
    entry = PYPROJECT + '[project.entry-points.pytest11]\nforge = "forge"\n'
    assert _one("pyproject.toml", PYPROJECT, entry) == [
        "changes pytest11 entry points in pyproject.toml"
    ]
    assert "does not parse" in _one("pyproject.toml", PYPROJECT, "[tool.pytest\n")[0]


def test_setup_cfg_counts_only_its_pytest_section_and_entry_points():
    base = "[metadata]\nname = x\nversion = 1\n"
    assert _one("setup.cfg", base, base.replace("1", "2")) == []
    assert _one("setup.cfg", base, base + "[tool:pytest]\naddopts = -p forge\n") == [
        "changes [tool:pytest] in setup.cfg"
    ]
    eps = base + "[options.entry_points]\npytest11 =\n    forge = forge\n"
    assert _one("setup.cfg", base, eps) == ["changes pytest11 entry points in setup.cfg"]


def test_package_json_counts_only_its_scripts_and_test_runner_settings():
    base = {"name": "x", "version": "1.0.0", "scripts": {"test": "node test.js"}}
    bumped = json.dumps({**base, "version": "1.0.1", "dependencies": {"a": "1"}})
    assert _one("package.json", json.dumps(base), bumped) == []
    forged = json.dumps({**base, "scripts": {"test": "true"}})
    assert _one("package.json", json.dumps(base), forged) == ['changes "scripts" in package.json']
    assert "does not parse" in _one("package.json", json.dumps(base), "{")[0]


def test_plugins_named_by_the_configuration_before_or_after():
    configs = {
        "pytest.ini": b"[pytest]\naddopts = -q -p forge -pno:cacheprovider -ptools.extra\n",
        "pyproject.toml": b'[tool.pytest.ini_options]\npythonpath = ["plugins"]\n',
        "conftest.py": b'pytest_plugins = ("helpers.fixtures",)\n',
    }
    plugins, roots = plugins_named(configs)
    assert {p.module for p in plugins} == {"forge", "tools.extra", "helpers.fixtures"}
    assert roots == ["plugins"]
    kw = {"plugins": plugins, "roots": ["", "src", *roots]}
    assert _one("forge.py", "", "x = 1\n", **kw) == [
        "changed pytest plugin (-p forge in pytest.ini)"
    ]
    assert _one("plugins/forge.py", None, "", **kw) == [
        "new pytest plugin (-p forge in pytest.ini)"
    ]
    assert _one("helpers/fixtures/more.py", "", "y = 2\n", **kw) == [
        "changed pytest plugin (pytest_plugins in conftest.py)"
    ]
    assert _one("forge_utils.py", "", "x = 1\n", **kw) == []
    assert _one("tools/extra.py", "", "", plugins=[Plugin("tools.extra", "o")]) == [
        "changed pytest plugin (o)"
    ]


def test_files_a_check_command_executes():
    commands = [["bash", "scripts/test.sh"], ["make", "test"], ["python", "-m", "tools.check"]]
    found = executed_files(commands)
    assert found["scripts/test.sh"] == "bash scripts/test.sh"
    assert found["Makefile"] == "make test"
    assert "tools/check.py" in found
    assert _one("scripts/test.sh", "x", "exit 0\n", commands=commands) == [
        "changed file the check `bash scripts/test.sh` runs"
    ]
    assert _one("scripts/other.sh", "x", "exit 0\n", commands=commands) == []


def test_removing_tests_the_base_has_counts_but_editing_or_adding_tests_does_not():
    base = "def test_a():\n    assert f() == 1\n\n\ndef test_b():\n    assert True\n"
    assert _one("tests/test_x.py", base, None) == ["removed test file the base commit has"]
    gutted = "def test_b():\n    assert True\n"
    assert _one("tests/test_x.py", base, gutted) == ["removes tests the base commit has (test_a)"]
    assert _one("tests/test_x.py", base, base.replace("1", "2")) == []
    assert _one("tests/test_new.py", None, base) == []


def test_python_files_that_reach_into_pytest_are_flagged():
    hook = "def pytest_runtest_makereport(item, call):\n    pass\n"
    assert _one("tests/test_x.py", None, "import _pytest.reports\n") == [
        "defines pytest hooks or reaches into pytest's internals"
    ]
    assert _one("src/app.py", "x = 1\n", hook) == [
        "defines pytest hooks or reaches into pytest's internals"
    ]
    assert _one("src/app.py", "x = 1\n", "x = 2\n") == []
