"""``shipyard eval TASKS.jsonl --out DIR``: the evaluation harness's command.

Exit code 0 when the eval ran to the end (whatever was resolved), 2 for bad arguments or
an unreadable tasks file, 3 when the infrastructure went away (the same command continues).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from shipyard.cli.console import RedactingConsole
from shipyard.cli.dispatch import own_resources
from shipyard.errors import UserInputError
from shipyard.evals.harness import EvalOptions, evaluate, prepare
from shipyard.evals.report import APPROVALS_NOTE
from shipyard.lifecycle.runner import Runner
from shipyard.settings import Settings


def options_of(args: argparse.Namespace, settings: Settings) -> EvalOptions:
    """The eval's options; a value out of range is a ``UserInputError``."""
    if args.concurrency < 1:
        raise UserInputError(f"--concurrency must be at least 1, got {args.concurrency}")
    if args.limit is not None and args.limit < 0:
        raise UserInputError(f"--limit must not be negative, got {args.limit}")
    if args.test_timeout <= 0:
        raise UserInputError(f"--test-timeout must be positive, got {args.test_timeout}")
    ids = tuple(i.strip() for i in (args.ids or "").split(",") if i.strip())
    cache: Path = args.cache or settings.home / "eval-cache"
    return EvalOptions(
        tasks_file=args.tasks.expanduser().resolve(),
        out=args.out.expanduser().resolve(),
        cache=cache.expanduser().resolve(),
        concurrency=args.concurrency,
        oracle=args.oracle,
        limit=args.limit,
        ids=ids,
        test_timeout_s=args.test_timeout,
    )


@own_resources
async def cmd_eval(args: argparse.Namespace, _runner: object, console: Console) -> int:
    """Run the eval and print where its report is."""
    settings = Settings.from_env()
    options = options_of(args, settings)
    selection = prepare(options)
    err = RedactingConsole(stderr=True, highlight=False, soft_wrap=True, markup=False)
    err.print(
        f"eval: {APPROVALS_NOTE}" + ("; models: the oracle (scripted)" if args.oracle else "")
    )
    async with Runner.open(settings) as runner:
        data = await evaluate(options, selection, runner, err)
    t = data["totals"]
    console.print(
        f"{t['resolved']} resolved, {t['unresolved']} unresolved, {t['error']} errors, "
        f"{t['malformed_lines']} malformed lines; ${t['cost_usd']:.4f}; "
        f"report: {options.out / 'report.md'}",
        soft_wrap=True,
    )
    return 0


__all__ = ["cmd_eval", "options_of"]
