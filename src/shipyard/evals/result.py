"""One task's result, the file that makes an eval resumable.

``DIR/tasks/<instance_id>/result.json`` is written once, atomically (a temporary file
renamed over), when the task is finished — resolved, unresolved or error. A task with that
file is never run again by the same eval; a task without it (the eval was killed while it
ran) is started afresh. ``starts.log`` beside it gets a line each time the harness starts
the task, so how often a task ran can be checked afterwards.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shipyard.contracts import RunStatus, Usage

Status = Literal["resolved", "unresolved", "error"]
Validator = Literal["agree", "false_pass", "false_failure"]


class TaskResult(BaseModel):
    """What the harness found for one task."""

    model_config = ConfigDict(extra="forbid")

    instance_id: str
    line: int
    status: Status
    error: str | None = None
    """Why the task could not be evaluated (``status == "error"``)."""
    phase: str = ""
    """Where the error happened: ``source``, ``oracle``, ``run`` or ``hidden``."""
    run_id: str | None = None
    run_status: RunStatus | None = None
    """Shipyard's own verdict: ``completed`` means its validator said the change passes."""
    run_reason: str | None = None
    validator: Validator | None = None
    """Shipyard's verdict beside the hidden tests': a false pass is ``completed`` with the
    hidden tests failing, a false failure any other ending with them passing."""
    seconds: float = 0.0
    phases: dict[str, float] = Field(default_factory=dict)
    usage: Usage = Field(default_factory=Usage)
    attempts: int = 0
    auto_approvals: int = 0
    models: dict[str, str] = Field(default_factory=dict)
    fail_to_pass: dict[str, str] = Field(default_factory=dict)
    pass_to_pass: dict[str, str] = Field(default_factory=dict)
    hidden_timed_out: bool = False
    hidden_exit_code: int | None = None
    model_patch: str = ""


def validator_of(run_status: RunStatus, resolved: bool) -> Validator:
    """Compare Shipyard's verdict with the hidden tests' (see ``TaskResult.validator``)."""
    said_pass = run_status == "completed"
    if said_pass == resolved:
        return "agree"
    return "false_pass" if said_pass else "false_failure"


def result_path(task_dir: Path) -> Path:
    return task_dir / "result.json"


def load_result(task_dir: Path) -> TaskResult | None:
    """The task's finished result, if it has one."""
    path = result_path(task_dir)
    if not path.is_file():
        return None
    return TaskResult.model_validate_json(path.read_text(encoding="utf-8"))


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so a reader sees the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_result(task_dir: Path, result: TaskResult) -> None:
    """Record the task as finished."""
    write_atomically(result_path(task_dir), result.model_dump_json(indent=2))


__all__ = ["Status", "TaskResult", "Validator", "load_result", "save_result", "validator_of",
           "write_atomically"]  # fmt: skip
