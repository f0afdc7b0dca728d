"""Delivery's pure parts: the ``[deliver]`` table and its bad input, where a remote URL
points, who consented, the pull request's text, and the rate-limit wait."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.contracts import ApprovalRecord, Evidence, Plan, PlanStep, RunReport, Usage
from shipyard.delivery.body import body_of, title_of
from shipyard.delivery.consent import consent_of, stamped_command
from shipyard.delivery.errors import DeliveryTargetError
from shipyard.delivery.forge import rate_wait
from shipyard.delivery.target import forge_target, locate
from shipyard.delivery.tokens import find_token
from shipyard.errors import NotWaitingError, PolicyError
from shipyard.policy.config import Policy, load_policy
from shipyard.policy.deliver import DeliverPolicy
from shipyard.secret_values import redact_values

DELIVER = """[deliver]
push = true                  # push the run branch to the remote
remote = "origin"
pull_request = "draft"       # "draft" | "ready" | "none"
forge = "github"             # "github" | "gitea" | "gitlab"; default: from the remote's URL
api_url = "https://api.github.com"   # override for GitHub Enterprise, self-hosted Gitea/GitLab
repository = "owner/name"    # default: from the remote's URL
base = "main"                # default: the remote's default branch

[approvals]
deliver = "auto"
"""


def test_the_table_of_the_issue_loads(tmp_path: Path) -> None:
    (tmp_path / ".shipyard.toml").write_text(DELIVER)
    policy = load_policy(tmp_path)
    assert policy.deliver == DeliverPolicy(
        push=True, remote="origin", pull_request="draft", forge="github",
        api_url="https://api.github.com", repository="owner/name", base="main",
    )  # fmt: skip
    assert policy.approvals.deliver == "auto"
    assert Policy().deliver.push is False and Policy().approvals.deliver == "ask"


@pytest.mark.parametrize(
    ("line", "field", "words"),
    [('pull_request = "yes"', "deliver.pull_request", "'draft', 'ready' or 'none'"),
     ('forge = "bitbucket"', "deliver.forge", "'github', 'gitea' or 'gitlab'"),
     ('api_url = "ftp://host"', "deliver.api_url", "not an http(s) URL"),
     ('api_url = "https://u:secret@host/api"', "deliver.api_url", "must not hold credentials"),
     ('repository = "no-slash"', "deliver.repository", "not a repository path"),
     ('repository = "a/../b"', "deliver.repository", "not a repository path"),
     ('remote = "-upload-pack=x"', "deliver.remote", "not a git remote name"),
     ('base = "main..x"', "deliver.base", "not a branch name"),
     ('labels = ["a,b"]', "deliver.labels", "not a label"),
     ('token = "abc"', "deliver.token", "Extra inputs are not permitted"),
     ("push = 3", "deliver.push", "valid boolean")],
)  # fmt: skip
def test_bad_deliver_values_name_the_file_line_and_field(
    tmp_path: Path, line: str, field: str, words: str
) -> None:
    (tmp_path / ".shipyard.toml").write_text(f"# delivery\n[deliver]\n{line}\n")
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path)
    assert (info.value.field, info.value.line) == (field, 3)
    assert words in str(info.value)


def test_a_bad_approvals_deliver_mode_is_refused(tmp_path: Path) -> None:
    (tmp_path / ".shipyard.toml").write_text('[approvals]\ndeliver = "always"\n')
    with pytest.raises(PolicyError, match=r"approvals\.deliver"):
        load_policy(tmp_path)


@pytest.mark.parametrize(
    ("url", "host", "path"),
    [("https://github.com/acme/widgets.git", "github.com", "acme/widgets"),
     ("git@github.com:acme/widgets.git", "github.com", "acme/widgets"),
     ("ssh://git@gitlab.example.com/group/sub/proj.git", "gitlab.example.com", "group/sub/proj"),
     ("http://127.0.0.1:3000/acme/widgets", "127.0.0.1:3000", "acme/widgets"),
     ("/srv/git/widgets.git", None, None),
     ("file:///srv/git/widgets.git", None, None)],
)  # fmt: skip
def test_remote_urls_are_located(url: str, host: str | None, path: str | None) -> None:
    where = locate(url)
    assert (where.host, where.path) == (host, path)


@pytest.mark.parametrize(
    ("url", "forge", "api"),
    [("https://github.com/acme/widgets.git", "github", "https://api.github.com"),
     ("https://github.example.com/acme/widgets", "github", "https://github.example.com/api/v3"),
     ("git@gitlab.com:acme/widgets.git", "gitlab", "https://gitlab.com/api/v4"),
     ("https://codeberg.org/acme/widgets.git", "gitea", "https://codeberg.org/api/v1"),
     ("http://gitea.local:3000/acme/widgets.git", "gitea", "http://gitea.local:3000/api/v1")],
)  # fmt: skip
def test_the_forge_and_its_api_come_from_the_remote(url: str, forge: str, api: str) -> None:
    target = forge_target(DeliverPolicy(push=True), url)
    assert (target.forge, target.api_url, target.repository) == (forge, api, "acme/widgets")


def test_an_unknown_host_asks_for_the_forge_and_hides_credentials() -> None:
    with pytest.raises(DeliveryTargetError, match=r"set \[deliver\] forge") as info:
        forge_target(DeliverPolicy(push=True), "https://bob:hunter2pass@git.example/a/b.git")
    assert "hunter2pass" not in str(info.value)


def test_a_path_remote_needs_the_api_url() -> None:
    with pytest.raises(DeliveryTargetError, match=r"set \[deliver\] api_url"):
        forge_target(DeliverPolicy(push=True, forge="gitea"), "/srv/git/widgets.git")


def test_tokens_are_read_in_order_and_masked_by_value() -> None:
    env = {"GH_TOKEN": "gh-token-value-123", "SHIPYARD_FORGE_TOKEN": "generic-value-456"}
    token = find_token("github", env)
    assert token is not None and token.variable == "GH_TOKEN"
    assert "gh-token-value-123" not in repr(token)
    assert redact_values("x gh-token-value-123 y") == "x [REDACTED:GH_TOKEN] y"
    assert find_token("gitea", env) is not None
    assert find_token("gitlab", {}) is None


def _approval(
    by: str, content_hash: str, *, automatic: bool = False, decision: str = "approve"
) -> ApprovalRecord:
    fields: dict[str, Any] = {"kind": "changes", "decision": decision, "by": by, "comment": "",
                              "content_hash": content_hash, "automatic": automatic}  # fmt: skip
    return ApprovalRecord.model_validate(fields)


def test_consent_needs_a_person_who_approved_this_very_diff() -> None:
    ask = Policy()
    auto = Policy.model_validate({"approvals": {"deliver": "auto"}})
    person = _approval("alice", "sha256:d")
    assert consent_of({"approvals": [person]}, ask, "sha256:d") == "alice"
    assert consent_of({"approvals": [person]}, ask, "sha256:other") is None
    policy_approved = _approval("policy (approvals: protected-only)", "sha256:d", automatic=True)
    assert consent_of({"approvals": [policy_approved]}, ask, "sha256:d") is None
    assert consent_of({"approvals": [policy_approved]}, auto, "sha256:d") is not None
    rejected = _approval("alice", "sha256:d", decision="reject")
    assert consent_of({"approvals": [person, rejected]}, ask, "sha256:d") is None
    asked = {"approvals": [policy_approved], "delivery_request": {"by": "cli (bob)"}}
    assert consent_of(asked, ask, "sha256:d") == "cli (bob)"  # type: ignore[arg-type]


def test_only_a_completed_run_can_be_delivered() -> None:
    from shipyard.delivery.consent import delivery_command  # noqa: PLC0415

    with pytest.raises(NotWaitingError, match=r"is needs_human_review; only a completed run"):
        delivery_command("r1", {"status": "needs_human_review", "report": {}}, (), "bob")
    with pytest.raises(NotWaitingError, match="still running"):
        delivery_command("r1", {"status": "completed", "report": {"x": 1}}, ("plan",), "bob")
    assert (
        delivery_command("r1", {"status": "completed", "report": {"x": 1}}, ("deliver",), "b")
        is None
    )
    command = delivery_command("r1", {"status": "completed", "report": {"x": 1}}, (), "bob")
    assert command is not None and command.goto == "deliver"
    assert command.update["delivery_request"]["by"] == "bob"  # type: ignore[index]


def _report() -> RunReport:
    evidence = Evidence(check="pytest", command=["pytest", "-q"], exit_code=0, passed=True,
                        duration_s=1.25, summary="3 passed")  # fmt: skip
    at = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
    return RunReport(
        run_id="r1", goal="add | a note", repo="/r", status="completed", summary="done",
        branch="shipyard/r1", base_commit="a" * 40, head_commit="b" * 40,
        plan=Plan(summary="Add a note", risk="low",
                  steps=[PlanStep(id="s1", title="note", instructions="write it")]),
        evidence=[evidence], diff_stat=" note.txt | 1 +",
        approvals=[_approval("alice", "sha256:d").model_copy(update={"at": at})],
        usage=Usage(model_calls=2, tool_calls=3, input_tokens=10, output_tokens=5, cost_usd=0.01),
    )  # fmt: skip


def test_the_body_says_why_to_trust_the_change() -> None:
    report = _report()
    body = body_of(report, manifest_hash="sha256:m", console_url="https://s.example/ui/runs/r1")
    parts = [
        "## Goal\n\nadd | a note", "1. **s1** note", " note.txt | 1 +",
        "| pytest | `pytest -q` | 3 passed | 1.2 s |",
        "changes: approve by alice at 2026-12-07T15:00:00+00:00", "isolation: unknown",
        "2 model calls, 3 tool calls, 15 tokens, $0.0100", "provenance manifest: `sha256:m`",
        "console: https://s.example/ui/runs/r1",
    ]  # fmt: skip
    for part in parts:
        assert part in body, part
    assert "console:" not in body_of(report, manifest_hash="sha256:m", console_url=None)
    assert title_of(report) == "Add a note"
    long = report.model_copy(update={"plan": None, "goal": "x " * 200})
    assert len(title_of(long)) == 120


def test_rate_wait_reads_the_forges_reset_headers() -> None:
    def answer(status: int, **headers: str) -> httpx.Response:
        return httpx.Response(status, headers=headers)

    assert rate_wait(answer(429, **{"retry-after": "7"})) == 7
    assert (
        rate_wait(
            answer(403, **{"x-ratelimit-remaining": "0", "x-ratelimit-reset": "110"}), now=100
        )
        == 10
    )
    assert rate_wait(answer(429, **{"ratelimit-reset": "90"}), now=100) == 0
    assert rate_wait(answer(403)) is None and rate_wait(answer(500)) is None


@pytest.mark.parametrize(
    "update",
    [{"delivery_request": {"by": "bob", "at": "2000-01-01T00:00:00"}, "goal": "g"},
     [["goal", "g"], ["delivery_request", {"by": "bob"}]]],
)  # fmt: skip
def test_a_request_to_deliver_is_stamped_with_the_authenticated_person(update: Any) -> None:
    command = stamped_command({"update": update, "goto": "deliver"}, "alice")
    stamped = command["update"]
    pairs = dict(stamped) if isinstance(stamped, list) else stamped
    request = pairs["delivery_request"]
    assert (request["by"], request["as_given"]) == ("alice", "bob")
    assert request["at"] != "2000-01-01T00:00:00" and pairs["goal"] == "g"
    assert command["goto"] == "deliver"


def test_a_command_without_a_request_to_deliver_is_left_as_it_is() -> None:
    command = {"resume": {"decision": "approve"}, "update": {"goal": "g"}}
    assert stamped_command(command, "alice") == command
    unnamed = stamped_command({"update": {"delivery_request": {}}}, "alice")
    assert "as_given" not in unnamed["update"]["delivery_request"]
