"""``shipyard demo``: the whole loop, offline, on a bundled repository with a real bug.

The scripted model (labelled as such in the report) makes a first attempt that fixes only
half the bug, so validation fails; refine feeds the failing test back; the second attempt
passes, and the reviewer (on in the example's ``.shipyard.toml``) reads its diff and
approves with a remark. Both approval gates are shown. The result is a branch whose tests pass.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from importlib.resources import files
from pathlib import Path

from rich.console import Console

from shipyard.cli.console import Display, print_request, print_stop
from shipyard.cli.dispatch import own_resources
from shipyard.contracts import Decision, RunInput
from shipyard.lifecycle.runner import Runner, Stop
from shipyard.settings import Settings

GOAL = "Make parse_amount accept thousands separators and give a clear error for empty input"


def example_dir() -> Path:
    """The bundled example repository and its script."""
    return Path(str(files("shipyard") / "examples"))


def copy_example(dest: Path) -> Path:
    """Copy the example into ``dest`` and make it a git repository with one commit."""
    shutil.copytree(example_dir() / "invoices", dest)
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["-c", "user.name=Demo", "-c", "user.email=demo@localhost", "commit", "-qm", "invoices"],
    ):
        subprocess.run(["git", *args], cwd=dest, check=True, capture_output=True)
    return dest


@own_resources
async def demo_command(args: argparse.Namespace, _runner: object, console: Console) -> int:
    """Run the demo; returns the exit code."""
    root = args.dir or Path(tempfile.mkdtemp(prefix="shipyard-demo-"))
    repo = copy_example(root.expanduser().resolve() / "invoices")
    settings = replace(Settings.from_env(), model_script=example_dir() / "invoices.script.json")
    console.rule("[bold]Shipyard demo[/bold]")
    console.print(f"repository: {repo} (a copy of the bundled example, with a failing test)")
    console.print(f"goal: {GOAL}\nmodel: scripted replies — offline, no key needed\n")
    async with Runner.open(settings) as runner:
        stop = await runner.start(RunInput(goal=GOAL, repo=str(repo)), on_event=Display(console))
        stop = await _gates(runner, stop, console)
    print_stop(console, stop)
    if stop.report is not None and stop.report.branch:
        log = subprocess.run(
            ["git", "log", "--oneline", f"main..{stop.report.branch}"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=False,
        )
        console.print(f"commits on {stop.report.branch}:\n{log.stdout.rstrip()}")
    return 0 if stop.status == "completed" else 1


async def _gates(runner: Runner, stop: Stop, console: Console) -> Stop:
    """Show each approval gate; a person at a terminal decides, otherwise the demo approves."""
    interactive = sys.stdin.isatty()
    while stop.request is not None:
        print_request(console, stop.request)
        decision: Decision = "approve"
        if interactive:
            try:
                answer = console.input("approve? [Y/n] ").strip().lower()
            except EOFError:
                answer = ""
            decision = "reject" if answer.startswith("n") else "approve"
        else:
            console.print("[dim](no terminal: the demo approves on your behalf)[/dim]")
        stop = await runner.decide(stop.run_id, decision, by="demo", on_event=Display(console))
    return stop
