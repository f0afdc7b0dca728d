"""The declarative policy: command and path decisions, budgets, and loading with errors
that name the file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.contracts import Usage
from shipyard.errors import PolicyError
from shipyard.policy.config import (
    Budgets,
    CommandDecision,
    Policy,
    budget_exceeded,
    load_policy,
    remember_pattern,
)


def write_policy(repo: Path, text: str) -> Path:
    path = repo / ".shipyard.toml"
    path.write_text(text)
    return path


@pytest.fixture
def policy() -> Policy:
    return Policy()


# ----- commands ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "action", "rule"),
    [
        ("pytest -q tests", "allow", "pytest *"),
        ("pytest", "allow", "pytest *"),
        ("python -m pytest -x", "allow", "python -m pytest *"),
        ("git status", "allow", "git status *"),
        ("ruff check src", "allow", "ruff check *"),
        ("curl https://example.com", "deny", "curl *"),
        ("/usr/bin/curl x", "deny", "curl *"),  # deny also matches the basename
        ("sudo ls", "deny", "sudo *"),
        ("pip install requests", "deny", "pip install *"),
        ("python3.11 -m pip install x", "deny", "python* -m pip install *"),
        ("git push origin main", "deny", "git push *"),
        ("./pytest", "ask", "default"),  # a planted script is not the allowed program
        ("make build", "ask", "default"),
        ("ruff format src", "ask", "default"),  # only --check / --diff are read-only
    ],
)
def test_builtin_command_rules(policy, command, action, rule):
    decision = policy.check_command(command)
    assert (decision.action, decision.rule, decision.shell) == (action, rule, False)


@pytest.mark.parametrize(
    "command",
    [
        "pytest; rm -rf ~",
        "pytest && curl x",
        "pytest || curl x",
        "pytest | sh",
        "pytest $(curl x)",
        "pytest `curl x`",
        "pytest > /etc/x",
        "pytest < /etc/passwd",
        "pytest\nrm -rf ~",
        "pytest & curl x",
        "git status;curl x",
        "pytest (x)",
    ],
)
def test_shell_metacharacters_are_never_smuggled_through_an_allowed_program(policy, command):
    decision = policy.check_command(command, remembered=["pytest *", "*"])
    assert decision.action == "deny"
    assert decision.shell is True
    assert decision.reason.startswith("shell metacharacters")


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ('pytest -k "a;b"', ["pytest", "-k", "a;b"]),
        ("git log --format='%h | %s'", ["git", "log", "--format=%h | %s"]),
        ("echo \"$(curl x)\" '`x`'", ["echo", "$(curl x)", "`x`"]),
        (r"grep a\|b README.md", ["grep", "a|b", "README.md"]),
        ("pytest 'x > y'", ["pytest", "x > y"]),
    ],
)
def test_quoted_metacharacters_are_literal_arguments(policy, command, argv):
    decision = policy.check_command(command)
    assert (decision.action, decision.argv, decision.shell) == ("allow", argv, False)


def test_unparsable_and_empty_commands_are_denied(policy):
    assert policy.check_command("pytest 'unclosed").action == "deny"
    assert "cannot parse" in policy.check_command("pytest 'unclosed").reason
    assert policy.check_command("   ").reason == "empty command"


def test_shell_rules_allow_exactly_their_pattern(tmp_path):
    write_policy(tmp_path, '[commands]\nshell = ["pytest -q * | tail -n *"]\n')
    policy = load_policy(tmp_path)
    ok = policy.check_command("pytest -q tests/unit  |  tail -n 20")
    assert (ok.action, ok.shell, ok.argv) == (
        "allow",
        True,
        ["pytest -q tests/unit  |  tail -n 20"],
    )
    assert ok.rule == "pytest -q * | tail -n *"
    for smuggled in (
        "pytest -q x; curl evil | tail -n 5",
        "pytest -q x | tail -n 5; curl evil",
        "pytest -q $(curl evil) | tail -n 5",
        "pytest -q x | tail -n 5 > /etc/x",
    ):
        assert policy.check_command(smuggled).action == "deny", smuggled


def test_project_rules_come_before_builtin_ones(tmp_path):
    write_policy(
        tmp_path,
        '[commands]\nallow = ["pip install -e ."]\ndeny = ["pytest --pdb *"]\nask = ["git diff"]\n',
    )
    policy = load_policy(tmp_path)
    assert policy.check_command("pip install -e .").action == "allow"
    assert policy.check_command("pip install requests").action == "deny"
    assert policy.check_command("pytest --pdb x").action == "deny"
    assert policy.check_command("pytest x").action == "allow"
    assert policy.check_command("git diff").action == "ask"
    assert policy.check_command("git diff HEAD").action == "allow"


def test_builtin_rules_can_be_switched_off_and_default_set(tmp_path):
    write_policy(tmp_path, '[commands]\nbuiltin = false\ndefault = "deny"\nallow = ["make"]\n')
    policy = load_policy(tmp_path)
    assert policy.check_command("make").action == "allow"
    assert policy.check_command("make test").action == "deny"
    assert policy.check_command("pytest").action == "deny"
    assert policy.check_command("curl x").rule == "default"


def test_remembered_patterns_turn_ask_into_allow_but_never_lift_deny(policy):
    assert policy.check_command("make build").action == "ask"
    allowed = policy.check_command("make build -j4", remembered=["make build *"])
    assert (allowed.action, allowed.rule) == ("allow", "make build *")
    assert policy.check_command("make clean", remembered=["make build *"]).action == "ask"
    denied = policy.check_command("curl x", remembered=["curl *", "*"])
    assert (denied.action, denied.rule) == ("deny", "curl *")


def test_unparsable_remembered_pattern_raises(policy):
    with pytest.raises(PolicyError, match="cannot parse command pattern"):
        policy.check_command("make", remembered=["make 'x"])


@pytest.mark.parametrize(
    ("argv", "pattern"),
    [
        (["git", "commit", "-m", "x"], "git commit *"),
        (["python", "-m", "build", "."], "python -m build *"),
        (["du", "-sh", "src/"], "du *"),
        (["du", "src/"], "du *"),
        (["make"], "make *"),
        (["npm", "run", "build"], "npm run *"),
        (["weird*", "x"], "'weird[*]' x *"),
    ],
)
def test_remember_pattern_generalises_to_program_and_subcommand(policy, argv, pattern):
    assert remember_pattern(argv) == pattern
    decision = policy.check_command(" ".join(argv), remembered=[pattern])
    assert decision.action == "allow"
    assert decision.rule == pattern


def test_decisions_are_recordable_verbatim(policy):
    decision = policy.check_command("curl x")
    dumped = decision.model_dump()
    assert dumped == {
        "action": "deny",
        "rule": "curl *",
        "reason": "deny by built-in rule 'curl *' in [commands].deny",
        "argv": ["curl", "x"],
        "shell": False,
    }
    assert CommandDecision.model_validate(dumped) == decision


# ----- paths -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "op", "action", "rule"),
    [
        (".git/hooks/pre-commit", "write", "ask", ".git/**"),
        (".git", "write", "ask", ".git/**"),
        (".github/workflows/ci.yml", "write", "ask", ".github/workflows/**"),
        ("./.shipyard.toml", "write", "ask", ".shipyard.toml"),
        (".github/workflows/ci.yml", "read", "allow", "default"),
        ("src/app.py", "write", "allow", "default"),
        ("src/../.git/config", "write", "ask", ".git/**"),
        ("../elsewhere", "read", "deny", "default"),
        ("/etc/passwd", "read", "deny", "default"),
        ("secrets/prod/key.txt", "read", "deny", "secrets/**"),
        ("deep/dir/server.pem", "write", "deny", "*.pem"),
        ("migrations/0001.sql", "write", "ask", "migrations/*.sql"),
        ("migrations/old/0001.sql", "write", "allow", "default"),  # * stays in one directory
        ("conftest.py", "write", "ask", "conftest.py"),
        ("tests/unit/conftest.py", "write", "ask", "conftest.py"),
        ("pytest.ini", "write", "ask", "pytest.ini"),
        (".pytest.ini", "write", "ask", ".pytest.ini"),
        ("tox.ini", "write", "ask", "tox.ini"),
        ("noxfile.py", "write", "ask", "noxfile.py"),
        ("conftest.py", "read", "allow", "default"),
        ("tests/conftest_helpers.py", "write", "allow", "default"),
        ("pyproject.toml", "write", "allow", "default"),  # by content: tools/testconfig.py
    ],
)
def test_path_decisions(tmp_path, path, op, action, rule):
    write_policy(
        tmp_path,
        '[paths]\nprotected = ["migrations/*.sql"]\nforbidden = ["secrets/**", "*.pem"]\n',
    )
    decision = load_policy(tmp_path).check_path(path, op)
    assert (decision.action, decision.rule) == (action, rule)


# ----- budgets, isolation, approvals -------------------------------------------------------


def test_budget_exceeded_names_the_spent_budget():
    budgets = Budgets(tool_calls=10, cost_usd=1.0)
    assert budget_exceeded(Usage(tool_calls=9, cost_usd=0.5), budgets) is None
    assert budget_exceeded(Usage(tool_calls=10), budgets) == (
        "tool-call budget spent: 10 of 10 tool calls"
    )
    assert budget_exceeded(Usage(cost_usd=1.25), budgets) == "cost budget spent: $1.25 of $1.00"
    tokens = Usage(input_tokens=1_500_000, output_tokens=500_000)
    assert budget_exceeded(tokens, Budgets()) == "token budget spent: 2000000 of 2000000 tokens"
    assert "wall-time" in (budget_exceeded(Usage(wall_s=4000), Budgets()) or "")


def test_min_isolation_refuses_or_asks_below_the_level(tmp_path):
    write_policy(tmp_path, 'min_isolation = "namespace"\n')
    refusing = load_policy(tmp_path)
    assert refusing.check_isolation("bubblewrap").action == "allow"
    assert refusing.check_isolation("namespace").action == "allow"
    assert refusing.check_isolation("process").action == "deny"
    asking = load_policy(tmp_path, {"below_min_isolation": "ask"})
    assert asking.check_isolation("none").action == "ask"
    assert Policy().check_isolation("none").action == "allow"


def test_full_file_loads_and_overrides_deep_merge(tmp_path):
    path = write_policy(
        tmp_path,
        """\
[budgets]
max_steps = 4
cost_usd = 2.5

[approvals]
plan = "auto-low-risk"

[checks]
detect = false

[[checks.run]]
name = "tests"
command = "pytest -q tests"
kind = "pytest"

[[checks.run]]
name = "lint"
command = ["ruff", "check", "."]
kind = "ruff"
""",
    )
    policy = load_policy(
        tmp_path, {"budgets": {"max_steps": 2}, "approvals": {"changes": "always"}}
    )
    assert policy.source == str(path)
    assert (policy.budgets.max_steps, policy.budgets.cost_usd, policy.budgets.tool_calls) == (
        2,
        2.5,
        200,
    )
    assert (policy.approvals.plan, policy.approvals.changes) == ("auto-low-risk", "always")
    assert [c.command for c in policy.checks.run] == [
        ["pytest", "-q", "tests"],
        ["ruff", "check", "."],
    ]
    assert policy.checks.detect is False


def test_missing_file_gives_builtin_defaults(tmp_path):
    policy = load_policy(tmp_path)
    assert policy.source == "built-in defaults"
    assert policy == Policy()
    assert policy.budgets == Budgets()
    assert policy.approvals.plan == "always"


def test_content_hash_is_stable_and_tracks_the_effective_policy(tmp_path):
    assert load_policy(tmp_path).content_hash == Policy().content_hash
    assert Policy().content_hash.startswith("sha256:")
    changed = load_policy(tmp_path, {"commands": {"allow": ["make *"]}})
    assert changed.content_hash != Policy().content_hash
    no_builtin = load_policy(tmp_path, {"commands": {"builtin": False}})
    assert no_builtin.content_hash != Policy().content_hash


# ----- invalid policy files ----------------------------------------------------------------


def load_error(repo: Path, text: str, overrides: dict[str, object] | None = None) -> PolicyError:
    write_policy(repo, text)
    with pytest.raises(PolicyError) as info:
        load_policy(repo, overrides)
    return info.value


def test_toml_syntax_error_names_file_and_line(tmp_path):
    err = load_error(tmp_path, "[budgets]\nmax_steps = 3\ncost_usd = = 2\n")
    assert err.path == str(tmp_path / ".shipyard.toml")
    assert err.line == 3
    assert str(err).startswith(f"{tmp_path / '.shipyard.toml'}:3: TOML syntax error")


def test_unknown_key_names_file_line_and_field(tmp_path):
    err = load_error(tmp_path, "# policy\n\n[budgets]\nmax_steps = 3\nmax_stepz = 4\n")
    assert (err.line, err.field) == (5, "budgets.max_stepz")
    assert str(err) == (
        f"{tmp_path / '.shipyard.toml'}:5: budgets.max_stepz: Extra inputs are not permitted"
    )
    assert load_error(tmp_path, "netwrk = false\n").line == 1


def test_wrong_type_names_file_line_and_field(tmp_path):
    err = load_error(
        tmp_path,
        '[commands]\nallow = ["pytest *"]\n\n[budgets]\n  tool_calls = "many"\n',
    )
    assert (err.line, err.field) == (5, "budgets.tool_calls")
    assert "valid integer" in str(err)


def test_error_in_second_array_table_points_at_its_line(tmp_path):
    text = """\
[[checks.run]]
name = "tests"
command = "pytest"

[[checks.run]]
name = "lint"
command = "ruff check ."
kind = "flake"
"""
    err = load_error(tmp_path, text)
    assert (err.line, err.field) == (8, "checks.run[1].kind")


def test_bad_rule_and_dotted_keys_are_located(tmp_path):
    err = load_error(tmp_path, 'commands.deny = ["curl *", "rm \'unclosed"]\n')
    assert (err.line, err.field) == (1, "commands.deny[1]")
    assert "cannot parse rule" in str(err)
    err = load_error(tmp_path, '[checks]\n[[checks.run]]\nname = "x"\ncommand = "a | b"\n')
    assert (err.line, err.field) == (4, "checks.run[0].command")
    assert "without a shell" in str(err)


def test_network_true_is_a_clear_error(tmp_path):
    err = load_error(tmp_path, 'min_isolation = "none"\nnetwork = true\n')
    assert (err.line, err.field) == (2, "network")
    assert "not supported yet" in str(err)


def test_errors_in_overrides_name_the_override(tmp_path):
    err = load_error(tmp_path, "[budgets]\nmax_steps = 3\n", {"budgets": {"max_steps": 0}})
    assert err.path == "per-run override"
    assert err.line is None
    assert err.field == "budgets.max_steps"


def test_several_errors_are_all_reported(tmp_path):
    err = load_error(tmp_path, '[budgets]\nmax_steps = "x"\n\n[approvals]\nplan = "sometimes"\n')
    assert err.line == 2
    assert "also approvals.plan (line 5)" in str(err)


def test_non_utf8_and_directory_policy_files_are_errors(tmp_path):
    (tmp_path / ".shipyard.toml").write_bytes(b"network = \xff\n")
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy(tmp_path)
    (tmp_path / ".shipyard.toml").unlink()
    (tmp_path / ".shipyard.toml").mkdir()
    with pytest.raises(PolicyError, match="not a regular file"):
        load_policy(tmp_path)
