"""The ``shipyard`` command.

Exit codes: 0 done (or stopped at an approval, with how to continue printed), 1 the run
ended short of ``completed``, 2 bad input, 3 infrastructure unavailable (a paused run is
kept and continues with ``shipyard resume``).

This module only builds the argument parser: ``--help`` and a mistyped command cost no more
than Python's own start. Each sub-command names the function that carries it out
(``module:function``), imported when it runs (``cli/dispatch.py``).
"""

from __future__ import annotations

import argparse

from shipyard.server.processes.command_line import add_server_commands, path

TYPE_CHECKING = False  # not typing's: importing typing would cost --help
if TYPE_CHECKING:
    from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``shipyard`` console script."""
    args = parser().parse_args(argv)
    from shipyard.cli.dispatch import dispatch  # noqa: PLC0415  (heavy: only to run one)

    return dispatch(args)


def _command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    target: str,
    help_text: str,
) -> argparse.ArgumentParser:
    """A sub-command carried out by ``target`` (``module:function``)."""
    command = sub.add_parser(name, help=help_text)
    command.set_defaults(command=target)
    return command


def parser() -> argparse.ArgumentParser:
    """The argument parser (one sub-command per task)."""
    top = argparse.ArgumentParser(prog="shipyard", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command_name", required=True)
    _run_commands(sub)
    _decision_commands(sub)
    db = _command(sub, "db", "shipyard.cli.db:cmd_db", "the embedded Postgres under SHIPYARD_HOME")
    db.add_argument(
        "action",
        choices=["url", "stop"],
        help="url: start if needed and print a URL you can use (psql, DATABASE_URL); the "
        "embedded server's password stays in the 0600 file the URL names (passfile=)",
    )
    demo = _command(
        sub,
        "demo",
        "shipyard.cli.demo:demo_command",
        "the offline demo on a bundled example repository",
    )
    demo.add_argument("--dir", type=path, help="where to copy the example (default: a temp dir)")
    _eval_command(sub)
    _notify_command(sub)
    add_server_commands(sub)
    return top


def _run_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = _command(sub, "run", "shipyard.cli.runs:cmd_run", "start a run on a repository")
    run.add_argument("goal")
    run.add_argument("--repo", required=True, type=path)
    run.add_argument("--plan", type=path, help="a plan file (JSON) instead of the planner")
    run.add_argument("--base", dest="base_ref", help="commit, branch or tag to start from")
    run.add_argument(
        "--approve",
        choices=["auto", "prompt"],
        default="prompt",
        help="auto: plans are approved by policy; changes that touch protected paths or "
        "alter how the change is tested still stop for a person",
    )
    run.add_argument("--allow-dirty", action="store_true")
    _command(sub, "runs", "shipyard.cli.listing:cmd_runs", "list runs")
    stats = _command(
        sub,
        "stats",
        "shipyard.cli.stats:cmd_stats",
        "runs by status, success rate, waits, retries, cost",
    )
    stats.add_argument("--since", help="an age (30m, 12h, 7d, 2w) or an ISO date; default: all")
    show = _command(
        sub, "show", "shipyard.cli.show:cmd_show", "timeline, evidence, approvals and diff of a run"
    )
    show.add_argument("run")


def _eval_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ev = _command(
        sub, "eval", "shipyard.evals.command:cmd_eval", "evaluate on tasks in SWE-bench's format"
    )
    ev.add_argument("tasks", type=path, metavar="TASKS.jsonl")
    ev.add_argument("--out", required=True, type=path, help="results; rerun to continue")
    ev.add_argument("--concurrency", type=int, default=1, metavar="N")
    ev.add_argument("--oracle", action="store_true", help="scripted models apply each patch")
    ev.add_argument("--limit", type=int, metavar="K", help="only the first K tasks")
    ev.add_argument("--ids", help="only these instance ids (comma-separated)")
    ev.add_argument("--cache", type=path, help="sources cache (default SHIPYARD_HOME/eval-cache)")
    ev.add_argument(
        "--test-timeout", type=float, default=600.0, metavar="S", help="hidden tests' wall limit"
    )


def _notify_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    notify = _command(
        sub,
        "notify",
        "shipyard.cli.notify:cmd_notify",
        "the notifications queued for your endpoints: see them, send them now",
    )
    action = notify.add_subparsers(dest="action", required=True)
    status = action.add_parser(
        "status", help="pending / failed / sent and the oldest pending, per endpoint"
    )
    drain = action.add_parser(
        "drain", help="send what is pending now (exit 0: nothing left; 3: an endpoint is down)"
    )
    for each in (status, drain):
        each.set_defaults(command="shipyard.cli.notify:cmd_notify")
    drain.add_argument(
        "--wait",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds to keep retrying an endpoint that fails (default 10)",
    )


def _decision_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    approve = _command(
        sub, "approve", "shipyard.cli.runs:cmd_approve", "decide on a run's pending approval"
    )
    approve.add_argument("run")
    group = approve.add_mutually_exclusive_group()
    group.add_argument("--reject", action="store_true")
    group.add_argument("--revise", action="store_true")
    approve.add_argument("--comment", default="")
    approve.add_argument("--remember", action="append", default=[], metavar="PATTERN")
    approve.add_argument(
        "--hash", dest="expected_hash", help="the content hash you reviewed (refused if stale)"
    )
    resume = _command(
        sub,
        "resume",
        "shipyard.cli.runs:cmd_resume",
        "continue a run stopped by a crash or a pause",
    )
    resume.add_argument("run")
    resume.add_argument(
        "--guidance", help="continue a run that needs human review, with this guidance"
    )
    cancel = _command(
        sub,
        "cancel",
        "shipyard.cli.runs:cmd_cancel",
        "stop a running or waiting run (its workspace and branch are kept)",
    )
    cancel.add_argument("run")
    cancel.add_argument(
        "--wait",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long the process driving the run gets to stop it (default 60)",
    )
    deliver = _command(
        sub,
        "deliver",
        "shipyard.cli.deliver:cmd_deliver",
        "push a completed run's branch and open its pull request (or retry that)",
    )
    deliver.add_argument("run")
    fork = _command(
        sub, "fork", "shipyard.cli.runs:cmd_fork", "continue a run from an older checkpoint"
    )
    fork.add_argument("run")
    fork.add_argument("--checkpoint", required=True)


__all__ = ["main", "parser"]
