"""The evaluation: every selected task through source, run and hidden tests, N at a time.

Each task has a directory ``DIR/tasks/<instance_id>/`` with its clone (``repo/``), its
hidden-test log, its trajectory and, once finished, its ``result.json`` (``evals.result``):
a re-run of the same command skips every task that has one and starts the others afresh.
Tasks run concurrently up to ``concurrency`` (an ``asyncio`` semaphore; each task has its
own clone, Shipyard run and workspace, and its blocking parts run in worker threads). A
task that cannot be evaluated becomes an ``error`` result and the eval goes on; only broken
infrastructure (the database, the model endpoint) stops the eval, which then resumes.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from shipyard.errors import InfrastructureError
from shipyard.evals.errors import HarnessError, TaskFileError
from shipyard.evals.hidden import HiddenResult, run_hidden
from shipyard.evals.oracle import oracle_models, oracle_policy, reference
from shipyard.evals.progress import Printer, Progress
from shipyard.evals.report import write_reports
from shipyard.evals.result import TaskResult, load_result, save_result, validator_of
from shipyard.evals.run import (
    final_commit,
    model_patch,
    run_input,
    run_task,
    task_runner,
    trajectory,
)
from shipyard.evals.source import materialise
from shipyard.evals.task import BadLine, Task, TaskLine, read_tasks
from shipyard.lifecycle.runner import Runner

T = TypeVar("T")


@dataclass(frozen=True)
class EvalOptions:
    """What ``shipyard eval`` was asked."""

    tasks_file: Path
    out: Path
    cache: Path
    concurrency: int = 1
    oracle: bool = False
    limit: int | None = None
    ids: tuple[str, ...] = ()
    test_timeout_s: float = 600.0


def select(
    lines: list[TaskLine | BadLine], options: EvalOptions
) -> tuple[list[TaskLine], list[BadLine]]:
    """The tasks to evaluate (``--ids``, then ``--limit``) and the malformed lines; an id
    given that no valid line has is a ``TaskFileError``."""
    tasks = [item for item in lines if isinstance(item, TaskLine)]
    bad = [item for item in lines if isinstance(item, BadLine)]
    if options.ids:
        known = {t.task.instance_id for t in tasks}
        unknown = [i for i in options.ids if i not in known]
        if unknown:
            raise TaskFileError(
                f"--ids: no valid task with id {', '.join(unknown)} in {options.tasks_file}"
            )
        tasks = [t for t in tasks if t.task.instance_id in options.ids]
        bad = [b for b in bad if b.instance_id in options.ids]
    if options.limit is not None:
        tasks = tasks[: options.limit]
    return tasks, bad


@dataclass(frozen=True)
class Selection:
    """The tasks of one eval and the malformed lines of its tasks file."""

    tasks: list[TaskLine]
    bad: list[BadLine]


def prepare(options: EvalOptions) -> Selection:
    """Read and select the tasks and claim ``DIR`` for them, before anything is opened:
    a tasks file that cannot be read or a ``DIR`` of another eval is a ``TaskFileError``."""
    tasks, bad = select(read_tasks(options.tasks_file), options)
    _check_manifest(options)
    return Selection(tasks, bad)


async def evaluate(
    options: EvalOptions, selection: Selection, runner: Runner, progress_out: Printer
) -> dict[str, Any]:
    """Run the eval (see the module docstring); returns the report's data."""
    tasks = selection.tasks
    finished: dict[str, TaskResult] = {}
    for item in tasks:
        if (earlier := load_result(_dir(options, item.task))) is not None:
            finished[item.task.instance_id] = earlier
    progress = Progress(total=len(tasks), out=progress_out)
    progress.resumed(list(finished.values()))
    gate = asyncio.Semaphore(options.concurrency)

    async def one(item: TaskLine) -> TaskResult:
        async with gate:
            progress.started(item.task.instance_id)
            result = await _evaluate_task(item, options, runner)
            save_result(_dir(options, item.task), result)
            progress.finished(result)
            return result

    pending = [t for t in tasks if t.task.instance_id not in finished]
    done = await asyncio.gather(*(one(t) for t in pending))
    by_id = {**finished, **{r.instance_id: r for r in done}}
    results = [by_id[t.task.instance_id] for t in tasks]
    return write_reports(
        options.out, results, selection.bad, tasks_file=options.tasks_file, oracle=options.oracle
    )


def _dir(options: EvalOptions, task: Task) -> Path:
    return options.out / "tasks" / task.instance_id


def _check_manifest(options: EvalOptions) -> None:
    """``DIR/eval.json`` names the tasks file and the mode; continuing an eval in ``DIR``
    with another of either is refused rather than mixing two evaluations."""
    manifest = {"tasks_file": str(options.tasks_file.resolve()), "oracle": options.oracle}
    path = options.out / "eval.json"
    if path.is_file():
        earlier = json.loads(path.read_text(encoding="utf-8"))
        if earlier != manifest:
            raise TaskFileError(
                f"{options.out} holds an eval of {earlier['tasks_file']} "
                f"(oracle={earlier['oracle']}); continue it with the same tasks file and mode, "
                "or choose another --out"
            )
        return
    options.out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")


async def _evaluate_task(item: TaskLine, options: EvalOptions, runner: Runner) -> TaskResult:
    """One task from a fresh start to its result; every failure of the task is its result."""
    job = _Job(item, options, runner)
    try:
        await job.stages()
    except HarnessError as err:
        job.result.status, job.result.error = "error", str(err)
    except InfrastructureError:
        raise  # the eval stops here and resumes with this task
    except Exception as err:  # a bug or a broken task: this task only
        job.result.status, job.result.error = "error", f"{type(err).__name__}: {err}"
    result = job.result
    result.phase = result.phase if result.status == "error" else ""
    result.seconds, result.phases = round(job.clock.total(), 3), job.clock.phases
    return result


class _Job:
    """The stages of one task: source, oracle, run, hidden tests."""

    def __init__(self, item: TaskLine, options: EvalOptions, runner: Runner) -> None:
        self.task, self.options, self.runner = item.task, options, runner
        self.where = _dir(options, item.task)
        _fresh(self.where)
        self.run_id = uuid.uuid4().hex[:12]
        with (self.where / "starts.log").open("a", encoding="utf-8") as log:
            log.write(f"{time.time():.3f} pid={os.getpid()} run={self.run_id}\n")
        self.clock = _Clock()
        self.result = TaskResult(instance_id=self.task.instance_id, line=item.line,
                                 status="error", phase="source")  # fmt: skip

    async def stages(self) -> None:
        task, clone, result = self.task, self.where / "repo", self.result
        base = await self.clock.phase("source", asyncio.to_thread(
            materialise, task.repo, task.base_commit, clone, cache=self.options.cache,
            relative_to=self.options.tasks_file.parent.resolve()))  # fmt: skip
        models, policy = None, _environment(task)
        if self.options.oracle:
            result.phase = "oracle"
            ref = await asyncio.to_thread(reference, clone, base, task.patch)
            models, policy = oracle_models(task.instance_id, ref), {**policy, **oracle_policy(ref)}
        result.phase = "run"
        final = await self.clock.phase("run", self.run(models, base, policy))
        result.phase = "hidden"
        hidden = await self.clock.phase("hidden", asyncio.to_thread(
            run_hidden, task, clone, final, self.where / "hidden",
            self.runner.context.launcher, self.options.test_timeout_s, base=base))  # fmt: skip
        _score(result, hidden, self.where)

    async def run(self, models: Any, base: str, policy: dict[str, Any]) -> str:
        """Run Shipyard on the task with the ``policy`` override and record the run in the
        result; the commit of the run's final tree, which the hidden tests judge
        (``evals.run.final_commit``)."""
        task, clone, result = self.task, self.where / "repo", self.result
        own = task_runner(self.runner, models)
        result.run_id = self.run_id
        given = run_input(task.problem_statement, clone, base, policy)
        try:
            outcome = await run_task(own, self.run_id, given)
        finally:
            exported = json.dumps(trajectory(own, self.run_id), indent=1, default=str)
            (self.where / "trajectory.json").write_text(exported, encoding="utf-8")
        result.run_status, result.run_reason = outcome.status, outcome.reason
        result.usage, result.attempts = outcome.usage, outcome.attempts
        result.auto_approvals, result.models = outcome.auto_approvals, outcome.models
        final = await asyncio.to_thread(final_commit, clone, base, outcome.final_tree, self.run_id)
        result.model_patch = await asyncio.to_thread(model_patch, clone, base, final)
        return final


def _environment(task: Task) -> dict[str, Any]:
    """The task's environment as a policy override; empty when it names none."""
    table = task.environment.model_dump(exclude_defaults=True)
    return {"environment": table} if table else {}


def _score(result: TaskResult, hidden: HiddenResult, where: Path) -> None:
    (where / "hidden.log").write_text(hidden.log, encoding="utf-8")
    result.fail_to_pass, result.pass_to_pass = hidden.fail_to_pass, hidden.pass_to_pass
    result.hidden_timed_out, result.hidden_exit_code = hidden.timed_out, hidden.exit_code
    result.status = "resolved" if hidden.resolved else "unresolved"
    if hidden.timed_out:
        result.run_reason = f"hidden tests stopped by the wall limit after {hidden.seconds:.0f} s"
    if result.run_status is not None:
        result.validator = validator_of(result.run_status, hidden.resolved)


def _fresh(where: Path) -> None:
    """An unfinished task's leftovers (the eval was killed) go; its start log stays."""
    for name in ("repo", "hidden", "trajectory.json", "hidden.log", "test.patch"):
        path = where / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    where.mkdir(parents=True, exist_ok=True)


class _Clock:
    """Seconds per phase of one task."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.phases: dict[str, float] = {}

    async def phase(self, name: str, work: Awaitable[T]) -> T:
        began = time.monotonic()
        try:
            return await work
        finally:
            self.phases[name] = round(time.monotonic() - began, 3)

    def total(self) -> float:
        return time.monotonic() - self.start


__all__ = ["EvalOptions", "Selection", "evaluate", "prepare", "select"]
