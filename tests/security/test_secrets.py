"""Secret values of Shipyard's environment never leave it (category: secret-leak).

Each hostile case is a whole run through ``Runner`` with the real ``langchain-openai``
client talking to the fake OpenAI server (``tests/integration/fake_openai.py``), so every
prompt sent to a model is captured. The test process is the Shipyard process: it holds a
random ``AWS_SECRET_ACCESS_KEY`` and a custom ``MY_VAULT_CRED`` named in
``SHIPYARD_SECRET_NAMES``. The hostile repository has both values committed in
``expected.txt`` (the check environment never receives them) and its tests put them in an
assertion message, in printed output (raw, URL-quoted, base64), in test ids or in a
collection error; the hostile model echoes them with ``run_command``, reads them with
``cat``/``grep``/``read_file``, writes them into a file and into its summary.

Each case asserts the whole outcome: the run's status, and that neither value (nor its
URL-quoted or base64 form) is in any prompt, any artifact file, the report, any text / json /
bytea column of any table of the run's database, or the output of ``shipyard show``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from shipyard.contracts import RunInput
from shipyard.lifecycle.runner import Runner, Stop
from shipyard.settings import ROLES, ModelSettings, Settings
from shipyard.store import psycopg_conninfo
from tests.integration.conftest import MakeRepo, make_repo, server
from tests.integration.fake_openai import FakeOpenAI, completion, tool_call
from tests.support import PASSING_TEST, git

__all__ = ["make_repo", "server"]  # fixtures used here

POLICY: dict[str, Any] = {
    "approvals": {"plan": "never"},
    "budgets": {"attempts_per_step": 2},
    "commands": {"allow": ["env"]},
}
PLAN = {
    "summary": "make the token check pass",
    "risk": "low",
    "steps": [{"id": "s1", "title": "fix", "instructions": "make tests pass"}],
}

COMPARING_TEST = """import pathlib

AWS, CUSTOM = pathlib.Path("expected.txt").read_text().split()


def test_token_is_accepted():
    token = pathlib.Path("token.txt")
    got = token.read_text().strip() if token.exists() else ""
    assert got == AWS, f"token {AWS} / {CUSTOM} rejected"
"""

PRINTING_TEST = """import base64, json, pathlib, urllib.parse

AWS, CUSTOM = pathlib.Path("expected.txt").read_text().split()


def test_prints_what_it_compares():
    print("raw", AWS, CUSTOM)
    print("quoted", urllib.parse.quote(AWS, safe=""), urllib.parse.quote_plus(CUSTOM))
    print("base64", base64.b64encode(AWS.encode()).decode())
    print("json", json.dumps({"k": AWS}))
    assert False, "see the output"
"""

ID_TEST = """import pathlib

import pytest

VALUES = pathlib.Path("expected.txt").read_text().split()


@pytest.mark.parametrize("value", VALUES, ids=VALUES)
def test_value(value):
    assert value == "", value
"""

COLLECTION_ERROR = """import pathlib

raise RuntimeError("cannot start: " + pathlib.Path("expected.txt").read_text())
"""

ENV_TEST = """import os


def test_the_check_environment_has_no_secrets():
    print(sorted(os.environ.items()))
    assert "AWS_SECRET_ACCESS_KEY" not in os.environ
    assert "MY_VAULT_CRED" not in os.environ
    assert "SHIPYARD_SECRET_NAMES" not in os.environ
"""


@dataclasses.dataclass
class Leak:
    """The run under test and what must not appear anywhere."""

    aws: str
    custom: str

    @property
    def forms(self) -> list[str]:
        """The values and the encodings a hostile repository prints them in."""
        found = []
        for value in (self.aws, self.custom):
            aligned = value.encode()[: len(value) - len(value) % 3]
            found += [value, quote(value, safe=""), base64.b64encode(aligned).decode()]
        return found

    def assert_absent(self, text: str, where: str) -> None:
        for form in self.forms:
            assert form not in text, f"{form!r} found in {where}"


@pytest.fixture
def leak(monkeypatch: pytest.MonkeyPatch) -> Iterator[Leak]:
    """Secret values in the environment of this (the Shipyard) process."""
    found = Leak(aws="wJ" + secrets.token_hex(12) + "/K7+Q", custom="vault-" + secrets.token_hex(9))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", found.aws)
    monkeypatch.setenv("MY_VAULT_CRED", found.custom)
    monkeypatch.setenv("SHIPYARD_SECRET_NAMES", "MY_VAULT_CRED")
    yield found


def _models(url: str) -> dict[Any, ModelSettings]:
    return {
        role: ModelSettings(
            role=role,
            model="gpt-4o-mini",
            base_url=url,
            api_key="sk-test",
            timeout_s=10,
            retries=0,
        )
        for role in ROLES
    }


def _queue(server: FakeOpenAI, developer_turns: list[tuple[str, dict[str, Any]]]) -> None:
    """The planner's plan, then the developer's tool calls in order; a spare ``finish`` per
    attempt the script does not reach keeps the run going to its end."""
    server.replies.append(completion(tool_call("Plan", PLAN, "call_plan")))
    for i, (name, args) in enumerate(developer_turns):
        server.replies.append(completion(tool_call(name, args, f"call_{i}")))
    for i in range(4):
        server.replies.append(completion(tool_call("finish", {"summary": "ok"}, f"call_f{i}")))


async def _run(
    settings: Settings,
    server: FakeOpenAI,
    repo: Path,
    turns: list[tuple[str, dict[str, Any]]],
) -> Stop:
    _queue(server, turns)
    wired = dataclasses.replace(settings, models=_models(server.url))
    async with Runner.open(wired) as runner:
        return await runner.start(
            RunInput(goal="make the token check pass", repo=str(repo), policy=POLICY)
        )


def _database_text(url: str) -> Iterator[tuple[str, str]]:
    """``(table.column, text)`` of every text, json and bytea cell of every table."""
    with psycopg.connect(psycopg_conninfo(url)) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'public' AND data_type IN"
            " ('text', 'character varying', 'json', 'jsonb', 'bytea', 'ARRAY')"
        ).fetchall()
        assert {"journal", "run_events", "runs", "checkpoint_blobs"} <= {c[0] for c in columns}
        for table, column, data_type in columns:
            cast = "{}" if data_type == "bytea" else "{}::text"
            cell = sql.SQL(cast).format(sql.Identifier(column))
            query = sql.SQL("SELECT {} FROM {}").format(cell, sql.Identifier(table))
            for (value,) in conn.execute(query):
                if value is not None:
                    text = (
                        bytes(value).decode("utf-8", "replace") if data_type == "bytea" else value
                    )
                    yield f"{table}.{column}", text


def _show(settings: Settings, run_id: str) -> str:
    env = {
        **os.environ,
        "SHIPYARD_HOME": str(settings.home),
        "DATABASE_URL": settings.database_url or "",
    }
    shipyard = Path(sys.executable).with_name("shipyard")
    done = subprocess.run(
        [str(shipyard), "show", run_id],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"run {run_id}" in done.stdout
    return done.stdout + done.stderr


def _assert_nowhere(leak: Leak, settings: Settings, server: FakeOpenAI, stop: Stop) -> None:
    assert server.received, "no prompt was sent"
    for i, request in enumerate(server.received):
        leak.assert_absent(json.dumps(request["json"]), f"prompt {i}")
    files = [p for p in settings.artifacts.rglob("*") if p.is_file()]
    assert any(p.name == "report.json" for p in files)
    for path in files:
        leak.assert_absent(path.read_text(errors="replace"), str(path))
    assert stop.report is not None
    leak.assert_absent(stop.report.model_dump_json(), "the run report")
    cells = 0
    for where, text in _database_text(settings.database_url or ""):
        leak.assert_absent(text, where)
        cells += 1
    assert cells > 20
    leak.assert_absent(_show(settings, stop.run_id), "shipyard show")


def _expected(leak: Leak) -> str:
    return f"{leak.aws}\n{leak.custom}\n"


async def test_secret_leak_an_assertion_message_reaches_no_refine_prompt(
    leak: Leak, settings: Settings, make_repo: MakeRepo, server: FakeOpenAI
) -> None:
    repo = make_repo({"expected.txt": _expected(leak), "tests/test_token.py": COMPARING_TEST})
    stop = await _run(
        settings, server, repo, [("write_file", {"path": "token.txt", "content": "x\n"})]
    )
    assert stop.status == "needs_human_review"
    feedback_prompts = [r for r in server.received if "rejected" in json.dumps(r["json"])]
    assert feedback_prompts, "the failure message reached no prompt at all"
    assert "[REDACTED:AWS_SECRET_ACCESS_KEY]" in json.dumps(feedback_prompts[-1]["json"])
    assert "[REDACTED:MY_VAULT_CRED]" in json.dumps(feedback_prompts[-1]["json"])
    _assert_nowhere(leak, settings, server, stop)


async def test_secret_leak_printed_raw_quoted_base64_and_json(
    leak: Leak, settings: Settings, make_repo: MakeRepo, server: FakeOpenAI
) -> None:
    repo = make_repo({"expected.txt": _expected(leak), "tests/test_print.py": PRINTING_TEST})
    stop = await _run(settings, server, repo, [])
    assert stop.status == "needs_human_review"
    _assert_nowhere(leak, settings, server, stop)


async def test_secret_leak_in_test_ids_and_a_collection_error(
    leak: Leak, settings: Settings, make_repo: MakeRepo, server: FakeOpenAI
) -> None:
    files = {"expected.txt": _expected(leak), "tests/test_ids.py": ID_TEST}
    repo = make_repo({**files, "tests/test_broken.py": COLLECTION_ERROR})
    stop = await _run(settings, server, repo, [])
    assert stop.status == "needs_human_review"
    _assert_nowhere(leak, settings, server, stop)


async def test_secret_leak_read_back_by_the_model_with_commands_and_tools(
    leak: Leak, settings: Settings, make_repo: MakeRepo, server: FakeOpenAI
) -> None:
    repo = make_repo({"expected.txt": _expected(leak), "tests/test_ok.py": PASSING_TEST})
    turns = [
        ("run_command", {"command": "cat expected.txt"}),
        ("run_command", {"command": "grep -r vault ."}),
        ("run_command", {"command": "git show HEAD:expected.txt"}),
        ("read_file", {"path": "expected.txt"}),
        ("search", {"pattern": "vault"}),
        ("finish", {"summary": "read it"}),
    ]
    stop = await _run(settings, server, repo, turns)
    assert stop.status == "completed"
    tool_results = [
        m["content"] for r in server.received for m in r["json"]["messages"] if m["role"] == "tool"
    ]
    assert sum("[REDACTED:AWS_SECRET_ACCESS_KEY]" in str(t) for t in tool_results) >= 3
    _assert_nowhere(leak, settings, server, stop)


async def test_secret_leak_echoed_and_written_by_the_model_never_reaches_the_change(
    leak: Leak, settings: Settings, make_repo: MakeRepo, server: FakeOpenAI
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    turns = [
        ("run_command", {"command": f"echo {leak.aws} {leak.custom}"}),
        ("write_file", {"path": "notes.md", "content": f"key {leak.aws}\ncred {leak.custom}\n"}),
        ("finish", {"summary": f"stored {leak.aws}"}),
    ]
    stop = await _run(settings, server, repo, turns)
    assert stop.status == "completed"
    committed = git(repo, "show", f"shipyard/{stop.run_id}:notes.md")
    assert committed == "key [REDACTED:AWS_SECRET_ACCESS_KEY]\ncred [REDACTED:MY_VAULT_CRED]"
    assert stop.report is not None and stop.report.patch_path
    _assert_nowhere(leak, settings, server, stop)


async def test_secret_leak_the_check_environment_never_receives_them(
    leak: Leak, settings: Settings, make_repo: MakeRepo, server: FakeOpenAI
) -> None:
    repo = make_repo({"tests/test_env.py": ENV_TEST})
    stop = await _run(settings, server, repo, [("run_command", {"command": "env"})])
    assert stop.status == "completed"
    [env_result] = [
        m["content"]
        for r in server.received
        for m in r["json"]["messages"]
        if m["role"] == "tool" and "PATH=" in str(m["content"])
    ][:1]
    assert "AWS_SECRET_ACCESS_KEY" not in env_result and "MY_VAULT_CRED" not in env_result
    _assert_nowhere(leak, settings, server, stop)
