"""``shipyard show`` reads a run without the graph: its checkpoints as LangGraph reads them
(``store/checkpoint_reader.py`` against ``aget_state_history`` / ``aget_state`` on a real
run, at each stop), what it prints of them, that it imports none of the run machinery, and
its answers for a run with no checkpoint, a wrong id and a database that is down. The real
command runs in a subprocess against the test's own database."""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import psycopg
import pytest

from shipyard.cli.demo import GOAL, copy_example, example_dir
from shipyard.contracts import RunInput
from shipyard.lifecycle.runner import Runner
from shipyard.settings import Settings
from shipyard.store import (
    RunStore,
    ensure_embedded,
    make_engine,
    make_serializer,
    psycopg_conninfo,
    stop_embedded,
)
from shipyard.store.checkpoint_reader import NULL_TASK_ID, STATE_KEYS, history, latest
from tests.integration.conftest import MakeRepo, WriteScript
from tests.support import PASSING_TEST, call, finish, plan_reply

SHIPYARD = str(Path(sys.executable).with_name("shipyard"))
NO_PLAN_APPROVAL = {"approvals": {"plan": "never"}}

NOT_FOR_SHOW = (
    "sqlalchemy",
    "alembic",
    "openai",
    "langchain_openai",
    "langgraph.graph",
    "langgraph.pregel",
    "langgraph.checkpoint.postgres",
    "shipyard.graph",
    "shipyard.nodes",
    "shipyard.lifecycle",
    "shipyard.sandbox",
    "shipyard.llm",
)
"""What ``shipyard show`` must not import: the ORM, the models, LangGraph's runtime and
saver, and Shipyard's graph, nodes, runner and sandbox — seconds of imports it never used."""


def _environ(settings: Settings, url: str | None = None, columns: int = 100) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "COLUMNS"))}
    environ.update(
        SHIPYARD_HOME=str(settings.home),
        DATABASE_URL=url or settings.database_url or "",
        COLUMNS=str(columns),
    )
    return environ


def _show(
    settings: Settings, ref: str, url: str | None = None, columns: int = 100
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SHIPYARD, "show", ref],
        env=_environ(settings, url, columns),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


async def _assert_read_as_langgraph_reads(runner: Runner, settings: Settings, run_id: str) -> None:
    """Every checkpoint (id, metadata, time, next nodes, all values) and the latest state,
    read without the graph, equal LangGraph's."""
    config: Any = {"configurable": {"thread_id": run_id}}
    theirs = [s async for s in runner.graph.aget_state_history(config)][::-1]
    state = await runner.graph.aget_state(config)
    serde = make_serializer()
    with psycopg.connect(psycopg_conninfo(settings.database_url or ""), autocommit=True) as conn:
        ours = history(conn, run_id, serde, STATE_KEYS)
        newest = latest(conn, run_id, serde)
    assert len(theirs) > 3
    assert [(s.checkpoint_id, s.metadata, s.created_at, s.next, s.values) for s in ours] == [
        (t.config["configurable"]["checkpoint_id"], t.metadata, t.created_at, t.next, t.values)
        for t in theirs
    ]
    assert newest is not None and newest.values == state.values
    assert newest.checkpoint_id == state.config["configurable"]["checkpoint_id"]


def _table_rows(out: str) -> list[list[str]]:
    return [
        [c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines() if line[:1] == "│"
    ]


@pytest.mark.slow
async def test_show_reads_a_run_as_langgraph_does_at_every_stop(
    settings: Settings, tmp_path: Path
) -> None:
    repo = copy_example(tmp_path / "invoices")  # the demo: a failed attempt, refine, review
    scripted = dataclasses.replace(settings, model_script=example_dir() / "invoices.script.json")
    async with Runner.open(scripted) as runner:
        stop = await runner.start(RunInput(goal=GOAL, repo=str(repo)))
        assert stop.status == "awaiting_approval"  # the plan
        await _assert_read_as_langgraph_reads(runner, settings, stop.run_id)
        stop = await runner.decide(stop.run_id, "approve", by="t")
        assert stop.status == "awaiting_approval"  # the changes
        await _assert_read_as_langgraph_reads(runner, settings, stop.run_id)
        stop = await runner.decide(stop.run_id, "approve", by="t")
        assert stop.status == "completed"
        await _assert_read_as_langgraph_reads(runner, settings, stop.run_id)
        snapshots = [
            s
            async for s in runner.graph.aget_state_history(
                {"configurable": {"thread_id": stop.run_id}}
            )
        ][::-1]
        approvals = runner.context.runs.approvals(stop.run_id)
    assert stop.report is not None and stop.report.evidence
    done = _show(settings, stop.run_id[:8], columns=400)  # no line folded
    assert done.returncode == 0 and done.stderr == "", done.stdout + done.stderr
    out = done.stdout
    assert out.splitlines()[0].strip("─ ") == f"run {stop.run_id} — completed"
    assert _table_rows(out) == [
        [
            str(s.config["configurable"]["checkpoint_id"]),
            str(s.metadata.get("step") if s.metadata else ""),
            ", ".join(s.next) or "-",
            str(s.values.get("status", "")),
            str(s.created_at)[:19],
        ]
        for s in snapshots
    ]
    assert [r[2] for r in _table_rows(out)].count("refine") == 1  # the failed first attempt
    for ev in snapshots[-1].values["verdict"].evidence:
        assert f"    PASS {ev.check}: {ev.summary}" in out
    for a in approvals:
        decided = a.decision.decision if a.decision else "-"
        line = f"  {a.kind}: {a.status} {decided} by {a.decided_by or '-'} ({a.content_hash[:19]})"
        assert line in out.splitlines()
    assert "invoice.py | " in out and f"report: {stop.report.report_path}" in out
    assert stop.report.summary in out


@pytest.mark.slow
async def test_show_reads_a_forked_then_delivered_run_as_langgraph_does(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    script = write_script(
        {
            "planner": [plan_reply(("s1", "a"), ("s2", "b"))],
            "developer": {
                "s1/1": [call("write_file", path="a.txt", content="a\n"), finish()],
                "s2/1": [call("write_file", path="b.txt", content="b\n"), finish()],
            },
        }
    )
    async with Runner.open(dataclasses.replace(settings, model_script=script)) as runner:
        stop = await runner.start(RunInput(goal="g", repo=str(repo), policy=NO_PLAN_APPROVAL))
        assert stop.status == "completed"
        after_s1 = next(
            s
            for s in await runner.history(stop.run_id)
            if s.next == ("execute",) and s.values.get("step_index") == 1
        )
        forked = await runner.fork(stop.run_id, after_s1.config["configurable"]["checkpoint_id"])
        assert forked.status == "completed"
        await _assert_read_as_langgraph_reads(runner, settings, stop.run_id)  # an update, a fork
        delivered = await runner.deliver(stop.run_id, by="t")  # no remote: refused
        assert delivered.status == "completed"
        await _assert_read_as_langgraph_reads(runner, settings, stop.run_id)  # a Command's update
    with psycopg.connect(psycopg_conninfo(settings.database_url or "")) as conn:
        found = conn.execute(
            "SELECT channel FROM checkpoint_writes WHERE thread_id = %s AND task_id = %s",
            (stop.run_id, NULL_TASK_ID),
        ).fetchall()
    assert ("delivery_request",) in found  # the null task's writes were part of what was read


@pytest.mark.slow
async def test_show_imports_none_of_the_run_machinery(settings: Settings, tmp_path: Path) -> None:
    repo = copy_example(tmp_path / "invoices")
    scripted = dataclasses.replace(settings, model_script=example_dir() / "invoices.script.json")
    async with Runner.open(scripted) as runner:
        stop = await runner.start(
            RunInput(goal=GOAL, repo=str(repo), policy={"approvals": {"plan": "never"}})
        )
    assert stop.status == "awaiting_approval"  # the changes: evidence decoded from a blob
    probe = (
        "import sys; from shipyard.cli import main; code = main(['show', sys.argv[1]]); "
        f"print(sorted(m for m in sys.modules if m.startswith({NOT_FOR_SHOW!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, stop.run_id],
        env=_environ(settings),
        capture_output=True,
        text=True,
        check=True,
    )
    assert "    PASS pytest" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"


def _orphan(settings: Settings) -> str:
    """A run stored as ``running`` that never reached a checkpoint, on a database where no
    checkpointer ever made its tables."""
    engine = make_engine(settings.database_url or "")
    try:
        RunStore(engine).create_run("fix the parser", "/nowhere", run_id="0rphan000000")
        RunStore(engine).create_run("other", "/nowhere", run_id="0rphan000001")
    finally:
        engine.dispose()
    with psycopg.connect(psycopg_conninfo(settings.database_url or ""), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS checkpoints, checkpoint_blobs, checkpoint_writes")
    return "0rphan000000"


def test_show_of_a_run_without_checkpoints_byte_for_byte(settings: Settings) -> None:
    run_id = _orphan(settings)
    done = _show(settings, run_id)
    assert done.returncode == 0 and done.stderr == "", done.stdout + done.stderr
    title = f" run {run_id} — interrupted "
    assert done.stdout == (
        f"{title:─^100}\n"
        f"{run_id}: interrupted — resume with shipyard resume {run_id}\n"
        "goal: fix the parser\n"
        "repo: /nowhere\n"
        "branch: -\n"
        "┏━━━━━━━━━━━━┳━━━━━━┳━━━━━━┳━━━━━━━━┳━━━━━━━━━┓\n"
        "┃ checkpoint ┃ step ┃ next ┃ status ┃ created ┃\n"
        "┡━━━━━━━━━━━━╇━━━━━━╇━━━━━━╇━━━━━━━━╇━━━━━━━━━┩\n"
        "└────────────┴──────┴──────┴────────┴─────────┘\n"
        "approvals\n"
    )


AMBIGUOUS = (
    "run id prefix '0rphan' is ambiguous: it matches 0rphan000000, 0rphan000001; give more "
    "characters"
)


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("0rphan", AMBIGUOUS),
        ("0rph", "no run with id '0rph' (a prefix must have at least 6 characters)"),
        ("0rphan_", "no run with id or id prefix '0rphan_'"),  # "_" is taken literally
        ("zzzzzzzz", "no run with id or id prefix 'zzzzzzzz'"),
    ],
)
def test_show_names_a_wrong_run_id_in_one_line(settings: Settings, ref: str, message: str) -> None:
    _orphan(settings)
    done = _show(settings, ref)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"error: {message}\n")


def test_show_with_the_database_down_says_so_as_every_command_does(settings: Settings) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://shipyard:hunter22@127.0.0.1:{port}/db"
    done = _show(settings, "0rphan000000", url=url)
    assert done.returncode == 3 and done.stdout == "", done.stdout + done.stderr
    first, fix = done.stderr.splitlines()
    assert first.startswith("error: cannot reach Postgres at postgresql://shipyard:")
    assert f"127.0.0.1:{port}" in first and "hunter22" not in done.stderr
    assert fix.startswith("Fix: start that Postgres server (or correct DATABASE_URL)")
    listed = subprocess.run(
        [SHIPYARD, "runs"], env=_environ(settings, url), capture_output=True, text=True, check=False
    )
    assert (listed.returncode, listed.stderr) == (3, done.stderr)


@pytest.mark.slow
def test_runs_and_show_start_and_use_the_embedded_postgres_without_database_url() -> None:
    base = Path(tempfile.mkdtemp(prefix="shipyard-show-pg-"))  # its server's user reaches it
    home = base / "home"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "COLUMNS"))}
    environ.pop("DATABASE_URL", None)
    environ.update(SHIPYARD_HOME=str(home), COLUMNS="100")

    def shipyard(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SHIPYARD, *args], env=environ, capture_output=True, text=True, timeout=180, check=False
        )

    try:
        listed = shipyard("runs")  # starts the embedded server, migrates
        assert (listed.returncode, listed.stdout, listed.stderr) == (0, "no runs yet\n", "")
        engine = make_engine(ensure_embedded(Settings(home=home, database_url=None).pgdata))
        try:
            RunStore(engine).create_run("fix the parser", "/nowhere", run_id="0rphan000000")
        finally:
            engine.dispose()
        shown = shipyard("show", "0rphan")
        assert shown.returncode == 0 and shown.stderr == "", shown.stdout + shown.stderr
        assert "run 0rphan000000 — interrupted" in shown.stdout
        assert "goal: fix the parser\nrepo: /nowhere\n" in shown.stdout
    finally:
        stop_embedded(Settings(home=home, database_url=None).pgdata)
        shutil.rmtree(base, ignore_errors=True)
