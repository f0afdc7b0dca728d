"""``shipyard show``: a run's timeline, evidence, approvals and diff.

Read-only, so it opens no ``Runner``: the run's row and approvals come from the records
(``cli/records.py``, plain psycopg), its checkpoints from ``store/checkpoint_reader.py`` —
the timeline LangGraph's ``aget_state_history`` gives and the state ``aget_state`` gives,
decoded by the checkpointer's serializer, without compiling the graph (its nodes bring the
sandbox, the models and LangGraph's runtime: seconds of imports before the first line).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shipyard.cli.console import interrupted_note, print_evidence, print_report, shown_status
from shipyard.cli.dispatch import own_resources
from shipyard.cli.records import Connection, approval_lines, find_run, records
from shipyard.settings import Settings
from shipyard.store.checkpoint_reader import Decoder, OnFirstUse, history, latest
from shipyard.tools import git


@own_resources
async def cmd_show(args: argparse.Namespace, _runner: object, console: Console) -> int:
    with records(Settings.from_env()) as conn:
        show_run(conn, args.run, console)
    return 0


def show_run(conn: Connection, run_ref: str, console: Console) -> None:
    """Print everything a person needs to judge a run."""
    run = find_run(conn, run_ref)
    serde = OnFirstUse(_serializer)
    console.rule(f"[bold]run {run.id}[/bold] — {shown_status(run)}")
    if run.interrupted:
        console.print(f"[yellow]{interrupted_note(run)}[/yellow]", soft_wrap=True)
    console.print(f"goal: {escape(run.goal)}\nrepo: {run.repo}\nbranch: {run.branch or '-'}")
    if run.error:
        console.print(f"[yellow]reason:[/yellow] {escape(run.error)}")
    timeline = Table("checkpoint", "step", "next", "status", "created")
    for saved in history(conn, run.id, serde, channels=("status",)):
        timeline.add_row(
            saved.checkpoint_id,
            str(saved.metadata.get("step") if saved.metadata else ""),
            ", ".join(saved.next) or "-",
            str(saved.values.get("status", "")),
            saved.created_at[:19],
        )
    console.print(timeline)
    newest = latest(conn, run.id, serde, channels=("verdict", "workspace", "base_commit", "report"))
    state: dict[str, Any] = newest.values if newest is not None else {}
    verdict = state.get("verdict")
    if verdict is not None:
        console.print("[bold]evidence[/bold]")
        for ev in verdict.evidence:
            print_evidence(console, ev)
    console.print("[bold]approvals[/bold]")
    for approval in approval_lines(conn, run.id):
        console.print(
            f"  {approval.kind}: {approval.status} {approval.decision or '-'} by "
            f"{approval.decided_by or '-'} ({approval.content_hash[:19]})"
        )
    if state.get("workspace") and state.get("base_commit"):
        console.print("[bold]diff[/bold]")
        console.print(escape(git.diff_stat(Path(state["workspace"]), state["base_commit"])))
    if state.get("report") is not None:
        print_report(console, state["report"])


def _serializer() -> Decoder:
    from shipyard.store.checkpoint_serde import make_serializer  # noqa: PLC0415  (langchain_core)

    return make_serializer()
