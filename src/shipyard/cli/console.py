"""What the CLI shows a person: node progress, evidence, approval requests, reports.

Everything goes through a ``RedactingConsole``: secrets are masked (``shipyard.redact``) in
each string before it is laid out, so wrapping cannot split a value, and again in the text
written to the terminal.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any, Protocol, cast

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.markup import escape
from rich.text import Text

from shipyard.redact import redact

if TYPE_CHECKING:  # LangGraph, pydantic: ``shipyard runs`` must not pay for them
    from collections.abc import Sequence

    from shipyard.contracts import ApprovalRequest, Delivery, Evidence, RunReport
    from shipyard.lifecycle.runner import Stop


class RedactingConsole(Console):
    """A rich ``Console`` on stdout (or stderr) that never shows a secret."""

    def __init__(self, *, stderr: bool = False, **options: Any) -> None:
        super().__init__(file=cast(IO[str], _RedactedStream(stderr)), **options)

    def print(self, *objects: Any, **options: Any) -> None:
        """``Console.print`` with each string object redacted first."""
        super().print(*(redact(o) if isinstance(o, str) else o for o in objects), **options)

    def rule(self, title: Any = "", **options: Any) -> None:
        """``Console.rule`` with a string title redacted first."""
        super().rule(redact(title) if isinstance(title, str) else title, **options)


class _RedactedStream:
    """Writes to the current ``sys.stdout`` / ``sys.stderr`` with secrets masked."""

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr

    @property
    def _target(self) -> IO[str]:
        return sys.stderr if self._stderr else sys.stdout

    def write(self, text: str) -> int:
        return self._target.write(redact(text))

    def flush(self) -> None:
        self._target.flush()

    def isatty(self) -> bool:
        return self._target.isatty()

    def fileno(self) -> int:
        return self._target.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._target, "encoding", None) or "utf-8"


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
        if node == "notice":  # the runner says what it is waiting for
            self.console.print(f"[yellow]… {escape(str(update))}[/yellow]")
            return
        self.console.print(f"[bold cyan]▸ {node}[/bold cyan] {escape(_describe(node, update))}")
        from shipyard.contracts import Verdict  # noqa: PLC0415  (pydantic: not for listings)

        verdict = update.get("verdict") if isinstance(update, dict) else None
        if node == "validate" and isinstance(verdict, Verdict):
            for ev in verdict.evidence:
                print_evidence(self.console, ev)
            for f in verdict.findings:  # the reviewer's verdict, among others
                self.console.print(f"    {escape(f.source)} ({f.severity}): {escape(f.message)}")

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
    from shipyard.contracts import Plan  # noqa: PLC0415  (pydantic: not for listings)

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
        from shipyard.contracts import Plan  # noqa: PLC0415  (pydantic: not for listings)

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


def print_delivery(console: Console, delivery: Delivery) -> None:
    """Where the change went: the pushed branch and the pull request, or why not."""
    where = f"{escape(delivery.remote)}/{escape(delivery.branch)}"
    if delivery.status == "delivered":
        pr = delivery.pull_request_url
        line = f"delivered: {where}" + (f", pull request {escape(pr)}" if pr else "")
        console.print(f"[green]{line}[/green]")
    else:
        console.print(
            f"[yellow]delivery {delivery.status}: {where}: {escape(delivery.reason)}[/yellow]"
        )


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
    if report.delivery is not None:
        print_delivery(console, report.delivery)
    usage = report.usage
    console.print(
        f"[dim]{usage.model_calls} model calls, {usage.tool_calls} tool calls, "
        f"{usage.input_tokens + usage.output_tokens} tokens, ${usage.cost_usd:.4f}; "
        f"models: {escape(', '.join(sorted(set(report.models.values()))))}[/dim]"
    )


class ShownRun(Protocol):
    """What a listing shows of a run: a ``store.Run``, or the CLI's lighter ``RunRecord``."""

    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def goal(self) -> str: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def interrupted(self) -> bool: ...


def runs_table(runs: Sequence[ShownRun]) -> RunList:
    """``shipyard runs`` (the branch of a run is always ``shipyard/<run>``)."""
    return RunList(runs)


class RunList:
    """One line per run at any width, on a terminal or not: the id, status and time are
    always whole (a column as wide as its widest value); the goal gets the columns left,
    cut with "…". With fewer than ``MIN_GOAL`` left, the goal goes on a line of its own
    under its run: nothing a person acts on is ever cut off."""

    HEADER = ("run", "status", "updated", "goal")
    MIN_GOAL = 8
    GAP = "  "

    def __init__(self, runs: Sequence[ShownRun]) -> None:
        self.rows = [
            (r.id, shown_status(r), f"{r.updated_at:%Y-%m-%d %H:%M:%S}", _goal_line(r.goal))
            for r in runs
        ]
        self.notes = [interrupted_note(r) for r in runs if r.interrupted]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """The header and the rows, fitted to ``options.max_width``."""
        if not self.rows:
            yield Text("no runs yet")
            return
        rows = [self.HEADER, *self.rows]
        widths = [max(cell_len(row[i]) for row in rows) for i in range(3)]
        room = options.max_width - sum(widths) - 3 * len(self.GAP)
        below = room < self.MIN_GOAL
        for n, row in enumerate(rows):
            style = "bold" if n == 0 else ""
            goal = Text(row[3], style=style)
            if below:  # unpadded: each line as short as its own values
                yield Text(self.GAP.join(row[:3]), style=style, overflow="fold")
                goal.truncate(options.max_width - 2, overflow="ellipsis")
                yield Text("  ", style=style) + goal
                continue
            cells = [c + " " * (w - cell_len(c)) for c, w in zip(row[:3], widths, strict=True)]
            goal.truncate(room, overflow="ellipsis")
            yield Text(self.GAP.join([*cells, ""]), style=style) + goal
        for note in self.notes:
            yield Text(note, style="yellow", overflow="fold")


def _goal_line(goal: str) -> str:
    """The goal on one line, masked before it is cut (a cut secret no longer matches)."""
    return redact(" ".join(goal.split()))


def shown_status(run: ShownRun) -> str:
    """The run's status as a person should read it: a ``running`` run whose process is gone
    is ``interrupted``."""
    return "interrupted" if run.interrupted else run.status


def interrupted_note(run: ShownRun) -> str:
    """What to do about an interrupted run."""
    return f"{run.id}: interrupted — resume with shipyard resume {run.id}"
