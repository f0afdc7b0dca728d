"""Whole runs that deliver: a scripted model, real git pushing over smart HTTP to a bare
repository (``git http-backend``) or to a path, and a fake forge per shape over real HTTP.

Each test asserts the whole outcome: the run's status and delivery, the branch on the
remote, the pull requests on the forge, the records (state, report, manifest, runs row)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg
import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from shipyard.contracts import RunInput
from shipyard.errors import NotWaitingError
from shipyard.lifecycle.runner import Runner, Stop
from shipyard.settings import Settings
from shipyard.store import psycopg_conninfo
from tests.integration.conftest import MakeRepo, WriteScript
from tests.integration.forges import (
    FakeForge,
    GitHttpServer,
    bare_repo,
    fake_forge,
    git_http_server,
    protect,
)
from tests.support import call, finish, git, plan_reply

TOKEN = "tok-3f9a1c77e2b04d5a9e61"
VARIABLE = {"github": "GITHUB_TOKEN", "gitea": "GITEA_TOKEN", "gitlab": "GITLAB_TOKEN"}
USERNAME = {"github": "x-access-token", "gitea": "shipyard", "gitlab": "oauth2"}
NO_TOKEN_TEST = (
    "import os\n\n"
    "def test_the_sandbox_gets_no_forge_token():\n"
    "    names = ('GITHUB_TOKEN', 'GH_TOKEN', 'GITEA_TOKEN', 'GITLAB_TOKEN',\n"
    "             'SHIPYARD_FORGE_TOKEN', 'SHIPYARD_GIT_PASSWORD')\n"
    "    assert not [n for n in names if n in os.environ]\n"
)

pytestmark = pytest.mark.slow  # whole runs through the graph
"""The repository's one test: it passes only if no token variable reaches the checks."""


@dataclass
class World:
    repo: Path
    bare: Path
    git: GitHttpServer
    forge: FakeForge
    settings: Settings


def _policy(forge: FakeForge, **extra: str) -> str:
    lines = [
        "[approvals]", 'plan = "never"', *extra.get("approvals", "").splitlines(), "",
        "[deliver]", "push = true", 'remote = "origin"', 'pull_request = "draft"',
        f'forge = "{forge.shape}"', f'api_url = "{forge.api_url}"',
        f'repository = "{forge.repository}"', 'labels = ["shipyard"]',
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


@pytest.fixture(params=["github", "gitea", "gitlab"])
def world(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    settings: Settings,
    make_repo: MakeRepo,
    write_script: WriteScript,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[World]:
    shape = request.param
    monkeypatch.setenv(VARIABLE[shape], TOKEN)
    (tmp_path / "served").mkdir()
    with (
        fake_forge(shape, TOKEN) as forge,
        git_http_server(tmp_path / "served", USERNAME[shape], TOKEN) as served,
    ):
        files = {"tests/test_ok.py": NO_TOKEN_TEST, ".shipyard.toml": _policy(forge)}
        repo = make_repo(files)
        bare = bare_repo(tmp_path / "served", "widgets", repo)
        git(repo, "remote", "add", "origin", served.repo_url("widgets"))
        script = write_script(
            {
                "planner": [plan_reply(("s1", "add a note"))],
                "developer": {
                    "s1/1": [call("write_file", path="note.txt", content="hi\n"), finish()]
                },
            }
        )
        yield World(repo, bare, served, forge, replace(settings, model_script=script))


async def _run_to_changes(runner: Runner, world: World) -> Stop:
    stop = await runner.start(RunInput(goal="add a note", repo=str(world.repo)))
    assert stop.status == "awaiting_approval", stop
    assert stop.request is not None and stop.request.kind == "changes"
    return stop


async def test_a_run_delivers_a_draft_pull_request_after_a_person_approved(world: World) -> None:
    async with Runner.open(world.settings) as runner:
        stop = await _run_to_changes(runner, world)
        assert world.git.pushes == 0 and world.forge.pulls == []  # nothing left before approval
        delivery = stop.request.payload["delivery"] if stop.request else None
        assert delivery == {
            "remote": "origin", "branch": f"shipyard/{stop.run_id}", "pull_request": "draft",
            "base": "the remote's default branch", "forge": world.forge.shape,
        }  # fmt: skip
        assert f"pushes shipyard/{stop.run_id} to origin" in (
            stop.request.summary if stop.request else ""
        )
        stop = await runner.decide(stop.run_id, "approve", by="alice")
        run = runner.context.runs.get_run(stop.run_id)
    assert stop.status == "completed" and run.status == "completed"
    report = stop.report
    assert report is not None and report.delivery is not None
    d = report.delivery
    assert (d.status, d.pushed, d.opened, d.approved_by, d.base) == (
        "delivered",
        True,
        True,
        "alice",
        "main",
    )
    assert world.git.pushes == 1
    head = git(world.repo, "rev-parse", f"shipyard/{stop.run_id}")
    assert git(world.bare, "rev-parse", f"refs/heads/shipyard/{stop.run_id}") == head == d.commit
    assert git(world.bare, "rev-parse", "main") == git(world.repo, "rev-parse", "main")
    [pull] = world.forge.pulls
    assert d.pull_request_url == pull.get("html_url", pull.get("web_url"))
    assert run.pull_request_url == d.pull_request_url and run.delivery_status == "delivered"
    title = {"github": "test plan", "gitea": "WIP: test plan", "gitlab": "Draft: test plan"}
    assert pull["title"] == title[world.forge.shape]
    assert pull["draft"] is (world.forge.shape == "github")
    body = pull["body"]
    parts = [
        "## Goal", "add a note", "## Checks", "| pytest", "note.txt", "isolation: ", "usage: ",
        "changes: approve by alice at ", f"provenance manifest: `{d.manifest_hash}`",
    ]  # fmt: skip
    for part in parts:
        assert part in body, part
    labels = {"github": ["shipyard"], "gitea": [7], "gitlab": "shipyard"}
    assert pull["labels"] == labels[world.forge.shape]
    manifest = json.loads(Path(report.report_path or "").with_name("provenance.json").read_text())
    assert manifest["delivery"]["pull_request_url"] == d.pull_request_url
    assert (
        "pull request: " + (d.pull_request_url or "")
        in Path(report.report_path or "").with_name("report.md").read_text()
    )
    _assert_token_nowhere(world, stop.run_id)


def _assert_token_nowhere(world: World, run_id: str) -> None:
    """The token is in no stored row, artifact, log, the repository's config or a PR body;
    the forge got it only in its auth header, git only through basic auth."""
    url = world.settings.database_url or ""
    with psycopg.connect(psycopg_conninfo(url)) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        )]  # fmt: skip
        for table in tables:
            found = conn.execute(
                f'SELECT count(*) FROM "{table}" t WHERE t::text LIKE %s', (f"%{TOKEN}%",)
            ).fetchone()
            assert found == (0,), table
    for path in world.settings.home.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    assert TOKEN not in (world.repo / ".git" / "config").read_text()
    for pull in world.forge.pulls:
        assert TOKEN not in json.dumps(pull)
    for request in world.forge.requests:
        assert TOKEN not in request.path and TOKEN.encode() not in request.body


@pytest.mark.parametrize("world", ["gitlab"], indirect=True)
async def test_the_token_can_be_the_generic_variable(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(VARIABLE[world.forge.shape])
    monkeypatch.setenv("SHIPYARD_FORGE_TOKEN", TOKEN)
    async with Runner.open(world.settings) as runner:
        stop = await _run_to_changes(runner, world)
        stop = await runner.decide(stop.run_id, "approve", by="alice")
    assert stop.report is not None and stop.report.delivery is not None
    assert stop.report.delivery.status == "delivered", stop.report.delivery.reason


async def _approved(runner: Runner, world: World) -> Stop:
    stop = await _run_to_changes(runner, world)
    return await runner.decide(stop.run_id, "approve", by="alice")


def _delivery_of(stop: Stop) -> tuple[str, str]:
    assert stop.status == "completed", stop
    assert stop.report is not None and stop.report.delivery is not None
    return stop.report.delivery.status, stop.report.delivery.reason


@pytest.mark.parametrize("world", ["github"], indirect=True)
async def test_a_stale_token_fails_the_delivery_naming_the_variable_and_deliver_retries(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    variable = VARIABLE[world.forge.shape]
    monkeypatch.setenv(variable, "stale-0d9e8f7a6b5c4d3e")
    async with Runner.open(world.settings) as runner:
        stop = await _approved(runner, world)
        status, reason = _delivery_of(stop)
        run = runner.context.runs.get_run(stop.run_id)
        assert (status, run.status, run.delivery_status) == ("failed", "completed", "failed")
        assert f"check the token in {variable}" in reason and run.delivery_error == reason
        assert "stale-0d9e8f7a6b5c4d3e" not in reason
        assert world.git.pushes == 0 and world.forge.pulls == []
        monkeypatch.setenv(variable, TOKEN)
        stop = await runner.deliver(stop.run_id, by="bob")
        run = runner.context.runs.get_run(stop.run_id)
    assert _delivery_of(stop) == ("delivered", "")
    assert run.delivery_status == "delivered" and run.delivery_error is None
    assert world.git.pushes == 1 and len(world.forge.pulls) == 1


@pytest.mark.parametrize("world", ["gitea"], indirect=True)
async def test_a_token_the_forge_refuses_fails_at_the_api_naming_the_variable(
    world: World,
) -> None:
    world.forge.token = "another-token-the-forge-wants"
    async with Runner.open(world.settings) as runner:
        status, reason = _delivery_of(await _approved(runner, world))
    variable = VARIABLE[world.forge.shape]
    assert status == "failed" and "answered 401" in reason
    assert f"the forge refused the token in {variable}" in reason
    assert world.git.pushes == 1 and world.forge.pulls == []


@pytest.mark.parametrize("world", ["gitlab"], indirect=True)
async def test_branch_protection_refuses_the_push(world: World) -> None:
    protect(world.bare)
    async with Runner.open(world.settings) as runner:
        status, reason = _delivery_of(await _approved(runner, world))
    assert status == "failed" and "the branch is protected" in reason and "GH006" in reason
    assert world.forge.pulls == []
    assert "shipyard/" not in git(world.bare, "branch", "--list")


@pytest.mark.parametrize("world", ["github"], indirect=True)
async def test_an_open_pull_request_for_the_branch_is_found_not_opened_again(
    world: World,
) -> None:
    async with Runner.open(world.settings) as runner:
        stop = await _run_to_changes(runner, world)
        existing = world.forge.add_open(f"shipyard/{stop.run_id}")
        stop = await runner.decide(stop.run_id, "approve", by="alice")
    assert _delivery_of(stop) == ("delivered", "")
    assert stop.report is not None and stop.report.delivery is not None
    assert stop.report.delivery.opened is False
    assert stop.report.delivery.pull_request_url == existing.get(
        "html_url", existing.get("web_url")
    )
    assert world.forge.creates == 0 and len(world.forge.pulls) == 1


@pytest.mark.parametrize("world", ["gitea"], indirect=True)
async def test_network_down_keeps_the_run_completed_and_deliver_retries(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_NOTIFY_URL", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("SHIPYARD_NOTIFY_SECRET", "notify-secret-0a1b2c3d")
    down = "http://127.0.0.1:9/widgets.git"  # the discard port: nothing listens
    git(world.repo, "remote", "set-url", "origin", down)
    async with Runner.open(world.settings) as runner:
        stop = await _approved(runner, world)
        status, reason = _delivery_of(stop)
        assert status == "failed" and "cannot be reached" in reason
        assert runner.context.runs.get_run(stop.run_id).status == "completed"
        git(world.repo, "remote", "set-url", "origin", world.git.repo_url("widgets"))
        stop = await runner.deliver(stop.run_id, by="bob")
        again = await runner.deliver(stop.run_id, by="bob")  # delivered already: replayed
    assert _delivery_of(stop) == ("delivered", "") == _delivery_of(again)
    assert world.git.pushes == 1 and world.forge.creates == 1
    # One delivery.opened notification, however often the delivery ran.
    with psycopg.connect(psycopg_conninfo(world.settings.database_url or "")) as conn:
        rows = conn.execute("SELECT payload FROM outbox WHERE event = 'delivery.opened'").fetchall()
    assert len(rows) == 1
    assert stop.report is not None and stop.report.delivery is not None
    assert str(stop.report.delivery.pull_request_url) in json.dumps(rows[0][0])


@pytest.mark.parametrize("world", ["github"], indirect=True)
async def test_a_run_that_did_not_complete_is_never_delivered(world: World) -> None:
    async with Runner.open(world.settings) as runner:
        stop = await _run_to_changes(runner, world)
        stop = await runner.decide(stop.run_id, "reject", by="alice")
        assert stop.status == "rejected"
        with pytest.raises(NotWaitingError, match="is rejected; only a completed run"):
            await runner.deliver(stop.run_id, by="bob")
        # What an API client can send anyway: the node refuses it and the run stays rejected.
        command = Command(update={"delivery_request": {"by": "bob"}}, goto="deliver")
        config: RunnableConfig = {"configurable": {"thread_id": stop.run_id}}
        values = await runner.graph.ainvoke(command, config, context=runner.context)
        run = runner.context.runs.get_run(stop.run_id)
    assert values["status"] == "rejected" and values["delivery"].status == "refused"
    assert "only a completed run is delivered; this one is rejected" in values["delivery"].reason
    assert (run.status, run.delivery_status) == ("rejected", "refused")
    assert world.git.pushes == 0 and world.forge.requests == []
