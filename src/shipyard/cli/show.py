"""``shipyard show``: a run's timeline, evidence, approvals and diff."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shipyard.cli.console import interrupted_note, print_evidence, print_report, shown_status
from shipyard.lifecycle.runner import Runner
from shipyard.tools import git


async def show_run(runner: Runner, run_ref: str, console: Console) -> None:
    """Print everything a person needs to judge a run."""
    run = runner.context.runs.get_run(run_ref)
    console.rule(f"[bold]run {run.id}[/bold] — {shown_status(run)}")
    if run.interrupted:
        console.print(f"[yellow]{interrupted_note(run)}[/yellow]", soft_wrap=True)
    console.print(f"goal: {escape(run.goal)}\nrepo: {run.repo}\nbranch: {run.branch or '-'}")
    if run.error:
        console.print(f"[yellow]reason:[/yellow] {escape(run.error)}")
    timeline = Table("checkpoint", "step", "next", "status", "created")
    for snap in reversed(await runner.history(run.id)):
        timeline.add_row(
            str(snap.config["configurable"].get("checkpoint_id")),
            str(snap.metadata.get("step") if snap.metadata else ""),
            ", ".join(snap.next) or "-",
            str(snap.values.get("status", "")),
            str(snap.created_at or "")[:19],
        )
    console.print(timeline)
    state = (await runner.graph.aget_state({"configurable": {"thread_id": run.id}})).values
    verdict = state.get("verdict")
    if verdict is not None:
        console.print("[bold]evidence[/bold]")
        for ev in verdict.evidence:
            print_evidence(console, ev)
    console.print("[bold]approvals[/bold]")
    for approval in runner.context.runs.approvals(run.id):
        decided = approval.decision.decision if approval.decision else "-"
        console.print(
            f"  {approval.kind}: {approval.status} {decided} by {approval.decided_by or '-'} "
            f"({approval.content_hash[:19]})"
        )
    if state.get("workspace") and state.get("base_commit"):
        console.print("[bold]diff[/bold]")
        console.print(escape(git.diff_stat(Path(state["workspace"]), state["base_commit"])))
    if state.get("report") is not None:
        print_report(console, state["report"])
