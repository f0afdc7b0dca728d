"""What the CLI shows a person: node progress, evidence, approval requests, reports."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shipyard.contracts import ApprovalRequest, Evidence, Plan, RunReport, Verdict
from shipyard.runner import Stop
from shipyard.store import Run


class Display:
    """Prints a run's progress as it happens (the runner's ``on_event``)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._spinner = console.status("", spinner="dots")

    def __call__(self, node: str, update: Any) -> None:
        if node == "tasks":
            self._task(update)
            return
        if node == "custom":
            if isinstance(update, dict) and "tool" in update:
                self.console.print(f"    [dim]· {escape(str(update['tool']))}[/dim]")
            return
        if node == "__interrupt__":
            return
        self.console.print(f"[bold cyan]▸ {node}[/bold cyan] {escape(_describe(node, update))}")
        verdict = update.get("verdict") if isinstance(update, dict) else None
        if node == "validate" and isinstance(verdict, Verdict):
            for ev in verdict.evidence:
                print_evidence(self.console, ev)

    def _task(self, event: Any) -> None:
        """A spinner naming the node at work, for long checks and model calls."""
        if not isinstance(event, dict) or not self.console.is_terminal:
            return
        if "result" in event or "error" in event:
            self._spinner.stop()
        else:
            self._spinner.update(f"{event.get('name')} …")
            self._spinner.start()


def _describe(node: str, update: Any) -> str:
    if not isinstance(update, dict):
        return ""
    if node == "intake" and "branch" in update:
        return f"workspace on {update['branch']} from {str(update.get('base_commit'))[:10]}"
    if node == "plan" and isinstance(update.get("plan"), Plan):
        plan: Plan = update["plan"]
        return f"{len(plan.steps)} step(s), risk {plan.risk}: {plan.summary}"
    if node == "execute" and "work_tree" in update:
        return f"tree {str(update['work_tree'])[:10]}"
    if node == "validate" and "head_commit" in update:
        return f"passed; committed {str(update['head_commit'])[:10]}"
    if node == "validate":
        return "checks failed"
    if node == "refine":
        return f"attempt {update.get('attempt')} with failure feedback"
    if "status" in update:
        return f"status {update['status']}"
    return ""


def print_evidence(console: Console, ev: Evidence) -> None:
    """One check's outcome and its first failures."""
    mark = "[green]PASS[/green]" if ev.passed else "[red]FAIL[/red]"
    cached = " [dim](cached)[/dim]" if ev.cached else ""
    console.print(f"    {mark} {escape(ev.check)}: {escape(ev.summary)}{cached}")
    for failure in ev.failures[:5]:
        console.print(f"         [red]✗[/red] {escape(failure.id)}: {escape(failure.message)}")
    if ev.log_ref:
        console.print(f"         [dim]log: {escape(ev.log_ref)}[/dim]")


def print_request(console: Console, request: ApprovalRequest) -> None:
    """An approval request, with what the person is approving."""
    console.rule(f"[bold yellow]Approval needed: {request.kind}[/bold yellow]")
    console.print(f"{escape(request.summary)}  (risk: {request.risk})")
    if request.kind == "plan":
        plan = Plan.model_validate(request.payload["plan"])
        for i, step in enumerate(plan.steps, 1):
            console.print(f"  {i}. [bold]{escape(step.title)}[/bold] — {escape(step.instructions)}")
    else:
        console.print(escape(str(request.payload.get("diff_stat", ""))))
        for key in ("protected", "deferred_commands"):
            if request.payload.get(key):
                console.print(f"  {key}: {escape(', '.join(request.payload[key]))}")
    console.print(f"[dim]content hash {request.content_hash}[/dim]")


def print_stop(console: Console, stop: Stop) -> None:
    """Where the run stands and how to continue."""
    if stop.status == "awaiting_approval":
        console.print(
            f"Run [bold]{stop.run_id}[/bold] is waiting for approval. Continue with:\n"
            f"  shipyard approve {stop.run_id}            (or --reject, or --revise --comment TEXT)"
        )
    elif stop.status == "paused":
        console.print(
            f"[yellow]Run {stop.run_id} is paused:[/yellow] {escape(stop.error or '')}\n"
            f"Fix the cause, then: shipyard resume {stop.run_id}"
        )
    if stop.report is not None:
        print_report(console, stop.report)


def print_report(console: Console, report: RunReport) -> None:
    """The end of a run: status, branch, diff stat and where the report is."""
    colour = "green" if report.status == "completed" else "yellow"
    console.rule(f"[bold {colour}]{report.status}[/bold {colour}]")
    console.print(escape(report.summary))
    if report.branch:
        console.print(f"branch: [bold]{escape(report.branch)}[/bold] at {report.head_commit}")
    if report.diff_stat:
        console.print(escape(report.diff_stat))
    console.print(f"report: {report.report_path}")
    if report.patch_path:
        console.print(f"patch:  {report.patch_path}")
    usage = report.usage
    console.print(
        f"[dim]{usage.model_calls} model calls, {usage.tool_calls} tool calls, "
        f"{usage.input_tokens + usage.output_tokens} tokens, ${usage.cost_usd:.4f}; "
        f"models: {escape(', '.join(sorted(set(report.models.values()))))}[/dim]"
    )


def runs_table(runs: list[Run]) -> Table:
    """``shipyard runs`` (the branch of a run is always ``shipyard/<run>``)."""
    table = Table()
    table.add_column("run", no_wrap=True, min_width=12)
    table.add_column("status", no_wrap=True)
    table.add_column("updated", no_wrap=True)
    table.add_column("goal", overflow="ellipsis", no_wrap=True)
    for run in runs:
        table.add_row(
            run.id,
            run.status,
            run.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
            escape(run.goal),
        )
    return table
