"""The ``shipyard`` command.

Exit codes: 0 done (or stopped at an approval, with how to continue printed), 1 the run
ended short of ``completed``, 2 bad input, 3 infrastructure unavailable (a paused run is
kept and continues with ``shipyard resume``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from pydantic import ValidationError
from rich.console import Console

from shipyard.console import Display, print_request, print_stop, runs_table
from shipyard.contracts import Decision, Plan, RunInput
from shipyard.demo import demo_command
from shipyard.errors import PlanFileError, ShipyardError, UserInputError
from shipyard.inspect import show_run
from shipyard.runner import Runner, Stop
from shipyard.server.commands import add_server_commands
from shipyard.settings import Settings
from shipyard.store import mask_password, resolve_database_url, stop_embedded

Command = Callable[[argparse.Namespace, Runner, Console], Awaitable[int]]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``shipyard`` console script."""
    args = parser().parse_args(argv)
    console = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    try:
        code = asyncio.run(_with_runner(args.command_fn, args, console))
    except ShipyardError as exc:
        err.print(f"[bold red]error:[/bold red] {exc}", markup=True, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted; the run is checkpointed — continue with `shipyard resume RUN`")
        return 130
    return code


async def _with_runner(fn: Command, args: argparse.Namespace, console: Console) -> int:
    # demo (its own runner, on the scripted model), db, serve, worker, keys: no Runner here
    if fn in (demo_command, cmd_db) or getattr(fn, "opens_own_resources", False):
        standalone: Callable[..., Awaitable[int]] = fn
        return await standalone(args, None, console)
    async with Runner.open(Settings.from_env()) as runner:
        return await fn(args, runner, console)


def parser() -> argparse.ArgumentParser:
    """The argument parser (one sub-command per task)."""
    top = argparse.ArgumentParser(prog="shipyard", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start a run on a repository")
    run.add_argument("goal")
    run.add_argument("--repo", required=True, type=Path)
    run.add_argument("--plan", type=Path, help="a plan file (JSON) instead of the planner")
    run.add_argument("--base", dest="base_ref", help="commit, branch or tag to start from")
    run.add_argument("--approve", choices=["auto", "prompt"], default="prompt")
    run.add_argument("--allow-dirty", action="store_true")
    run.set_defaults(command_fn=cmd_run)
    sub.add_parser("runs", help="list runs").set_defaults(command_fn=cmd_runs)
    show = sub.add_parser("show", help="timeline, evidence, approvals and diff of a run")
    show.add_argument("run")
    show.set_defaults(command_fn=cmd_show)
    approve = sub.add_parser("approve", help="decide on a run's pending approval")
    approve.add_argument("run")
    group = approve.add_mutually_exclusive_group()
    group.add_argument("--reject", action="store_true")
    group.add_argument("--revise", action="store_true")
    approve.add_argument("--comment", default="")
    approve.add_argument("--remember", action="append", default=[], metavar="PATTERN")
    approve.add_argument(
        "--hash", dest="expected_hash", help="the content hash you reviewed (refused if stale)"
    )
    approve.set_defaults(command_fn=cmd_approve)
    resume = sub.add_parser("resume", help="continue a run stopped by a crash or a pause")
    resume.add_argument("run")
    resume.add_argument(
        "--guidance", help="continue a run that needs human review, with this guidance"
    )
    resume.set_defaults(command_fn=cmd_resume)
    fork = sub.add_parser("fork", help="continue a run from an older checkpoint")
    fork.add_argument("run")
    fork.add_argument("--checkpoint", required=True)
    fork.set_defaults(command_fn=cmd_fork)
    db = sub.add_parser("db", help="the embedded Postgres under SHIPYARD_HOME")
    db.add_argument("action", choices=["url", "stop"], help="url: start if needed and print")
    db.set_defaults(command_fn=cmd_db)
    demo = sub.add_parser("demo", help="the offline demo on a bundled example repository")
    demo.add_argument("--dir", type=Path, help="where to copy the example (default: a temp dir)")
    demo.set_defaults(command_fn=demo_command)
    add_server_commands(sub)
    return top


async def cmd_run(args: argparse.Namespace, runner: Runner, console: Console) -> int:
    run_input = RunInput(
        goal=args.goal,
        repo=str(args.repo.expanduser().resolve()),
        base_ref=args.base_ref,
        plan=load_plan_file(args.plan) if args.plan else None,
        policy={"approvals": {"plan": "never"}} if args.approve == "auto" else None,
        allow_dirty=args.allow_dirty,
    )
    stop = await runner.start(run_input, on_event=Display(console))
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


async def cmd_runs(args: argparse.Namespace, runner: Runner, console: Console) -> int:
    console.print(runs_table(runner.context.runs.list_runs(50)))
    return 0


async def cmd_show(args: argparse.Namespace, runner: Runner, console: Console) -> int:
    await show_run(runner, args.run, console)
    return 0


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
    return await follow(runner, stop, console)


async def cmd_resume(args: argparse.Namespace, runner: Runner, console: Console) -> int:
    if args.guidance:
        stop = await runner.guide(args.run, args.guidance, on_event=Display(console))
    else:
        stop = await runner.resume(args.run, on_event=Display(console))
    return await follow(runner, stop, console)


async def cmd_fork(args: argparse.Namespace, runner: Runner, console: Console) -> int:
    stop = await runner.fork(args.run, args.checkpoint, on_event=Display(console))
    return await follow(runner, stop, console)


async def cmd_db(args: argparse.Namespace, _runner: object, console: Console) -> int:
    """``db url`` prints the database URL (starting the embedded server if it is the one in
    use); ``db stop`` stops the embedded server (later commands start it again)."""
    settings = Settings.from_env()
    if args.action == "url":
        console.print(mask_password(resolve_database_url(settings)), soft_wrap=True)
        return 0
    if settings.database_url:
        raise UserInputError("DATABASE_URL is set: that server is not Shipyard's to stop")
    stopped = stop_embedded(settings.pgdata)
    console.print(
        f"embedded Postgres in {settings.pgdata}: {'stopped' if stopped else 'not running'}"
    )
    return 0


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


if __name__ == "__main__":
    raise SystemExit(main())
