"""The sub-commands that drive one run: ``run``, ``approve``, ``resume``, ``cancel``,
``fork``. Each gets a ``Runner`` (``cli/dispatch.py``); ``show``, which only reads, is in
``cli/show.py``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from shipyard.cli.console import Display, print_request, print_stop
from shipyard.cli.dispatch import sends_notifications
from shipyard.contracts import Decision, Plan, RunInput
from shipyard.errors import PlanFileError, UserInputError
from shipyard.lifecycle.runner import Runner, Stop


@sends_notifications
async def cmd_run(args: argparse.Namespace, runner: Runner, console: Console) -> int:
    stop = await runner.start(run_input_of(args), on_event=Display(console))
    console.print(f"run [bold]{stop.run_id}[/bold]")
    return await follow(runner, stop, console)


async def follow(runner: Runner, stop: Stop, console: Console) -> int:
    """Prompt at approvals while a person is at the terminal; otherwise say how to go on."""
    while stop.request is not None and sys.stdin.isatty():
        print_request(console, stop.request)
        answer = _prompt(console)
        if answer is None:  # input closed: leave the run waiting
            break
        decision, comment = answer
        stop = await runner.decide(
            stop.run_id, decision, by="cli", comment=comment, on_event=Display(console)
        )
    if stop.request is not None and not sys.stdin.isatty():
        print_request(console, stop.request)
    print_stop(console, stop)
    if stop.status == "paused":
        return 3
    return 0 if stop.status in ("completed", "awaiting_approval") else 1


def _prompt(console: Console) -> tuple[Decision, str] | None:
    """Ask for a decision; ``None`` when the input is closed."""
    choices: dict[str, Decision] = {"a": "approve", "r": "revise", "j": "reject"}
    try:
        while True:
            answer = console.input("[a]pprove, [r]evise, re[j]ect? ").strip().lower()[:1]
            if answer in choices:
                decision = choices[answer]
                comment = console.input("comment: ") if decision != "approve" else ""
                return decision, comment
    except EOFError:
        return None


@sends_notifications
async def cmd_approve(args: argparse.Namespace, runner: Runner, console: Console) -> int:
    decision: Decision = "reject" if args.reject else "revise" if args.revise else "approve"
    stop = await runner.decide(
        args.run,
        decision,
        by="cli",
        comment=args.comment,
        remember=args.remember,
        expected_hash=args.expected_hash,
        on_event=Display(console),
    )
    if stop.notice:  # the decision was not applied: the content changed since it was shown
        console.print(f"[yellow]Not applied:[/yellow] {escape(stop.notice)}", soft_wrap=True)
    return await follow(runner, stop, console)


@sends_notifications
async def cmd_resume(args: argparse.Namespace, runner: Runner, console: Console) -> int:
    if args.guidance:
        stop = await runner.guide(args.run, args.guidance, on_event=Display(console))
    else:
        stop = await runner.resume(args.run, on_event=Display(console))
    return await follow(runner, stop, console)


@sends_notifications
async def cmd_cancel(args: argparse.Namespace, runner: Runner, console: Console) -> int:
    stop = await runner.cancel(args.run, by="cli", wait_s=args.wait)
    console.print(f"run [bold]{stop.run_id}[/bold]: {stop.status}")
    print_stop(console, stop)
    return 0 if stop.status == "cancelled" else 1


@sends_notifications
async def cmd_fork(args: argparse.Namespace, runner: Runner, console: Console) -> int:
    stop = await runner.fork(args.run, args.checkpoint, on_event=Display(console))
    if stop.notice:  # where the commits the fork dropped from the branch are kept
        console.print(f"[yellow]Forked:[/yellow] {escape(stop.notice)}", soft_wrap=True)
    return await follow(runner, stop, console)


def run_input_of(args: argparse.Namespace) -> RunInput:
    """The ``run`` command's input; an empty goal or a field that does not validate is a
    ``UserInputError`` (one line, exit 2)."""
    goal = args.goal.strip()
    if not goal:
        raise UserInputError(
            "the goal is empty: say what the run should achieve, e.g. shipyard run --repo . "
            '"add a test for parse_date"'
        )
    try:
        return RunInput(
            goal=goal,
            repo=str(args.repo.expanduser().resolve()),
            base_ref=args.base_ref,
            plan=load_plan_file(args.plan) if args.plan else None,
            policy={"approvals": {"plan": "never"}} if args.approve == "auto" else None,
            allow_dirty=args.allow_dirty,
        )
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "input"
        raise UserInputError(f"{where}: {first['msg']}") from None


def load_plan_file(path: Path) -> Plan:
    """Read and validate a plan file; an invalid one names the file and the field."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise PlanFileError(f"plan file {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PlanFileError(f"plan file {path} is not valid JSON: {err}") from None
    try:
        return Plan.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise PlanFileError(f"plan file {path}: field {where}: {first['msg']}") from None
