"""A task of the evaluation, one line of a tasks file in SWE-bench's format.

Fields (others, such as SWE-bench's ``version`` or ``created_at`` or a suite's attribution,
are accepted and ignored): ``instance_id``, ``repo`` (a local path, a git URL or
``pypi:NAME==VERSION``: ``evals.source``), ``base_commit``, ``problem_statement``, ``patch``
(the reference fix, used only by ``--oracle``), ``test_patch`` (the hidden tests),
``FAIL_TO_PASS`` and ``PASS_TO_PASS`` (lists of pytest node ids, or JSON strings holding such
lists, as SWE-bench writes them) and an optional ``environment`` (``evals.environment``).

``read_tasks`` never stops at a bad line: each one becomes a ``BadLine`` naming its line
number and the first problem, and the other lines are still read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shipyard.evals.errors import TaskFileError
from shipyard.policy.environment import Environment

INSTANCE_ID = r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$"
"""An instance id names a directory of the output: no slashes, no leading dot."""


class Task(BaseModel):
    """One task, validated."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    instance_id: str = Field(pattern=INSTANCE_ID, max_length=200)
    repo: str = Field(min_length=1)
    base_commit: str = Field(min_length=1)
    problem_statement: str = Field(min_length=1)
    patch: str = ""
    test_patch: str = ""
    FAIL_TO_PASS: list[str]
    PASS_TO_PASS: list[str]
    environment: Environment = Field(default_factory=Environment)

    @field_validator("environment")
    @classmethod
    def _offline(cls, value: Environment) -> Environment:
        if value.network:
            raise ValueError(
                "environment.network: an evaluation has no person to approve a setup's "
                "network, so its setups never have the network; prepare the environment "
                'beforehand and name it with "python"'
            )
        return value

    @field_validator("FAIL_TO_PASS", "PASS_TO_PASS", mode="before")
    @classmethod
    def _decoded(cls, value: Any) -> Any:
        """SWE-bench stores the lists as JSON text; both spellings are accepted."""
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(f"a JSON-encoded list was expected: {err.msg}") from None

    @field_validator("problem_statement")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the problem statement is blank")
        return value


@dataclass(frozen=True)
class BadLine:
    """A line of the tasks file that is not a valid task."""

    line: int
    error: str
    instance_id: str | None = None
    """The line's ``instance_id`` when it had a readable one."""


@dataclass(frozen=True)
class TaskLine:
    """A valid task and the line it came from."""

    line: int
    task: Task


def read_tasks(path: Path) -> list[TaskLine | BadLine]:
    """Every non-blank, non-comment line of ``path``, parsed; ``TaskFileError`` only when
    the file itself cannot be read. A second line with an ``instance_id`` already seen is a
    ``BadLine``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise TaskFileError(f"cannot read tasks file {path}: {err}") from None
    parsed: list[TaskLine | BadLine] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        item = parse_line(number, raw)
        if isinstance(item, TaskLine):
            first = seen.setdefault(item.task.instance_id, number)
            if first != number:
                item = BadLine(number, f"duplicate instance_id (first on line {first})",
                               item.task.instance_id)  # fmt: skip
        parsed.append(item)
    return parsed


def parse_line(number: int, raw: str) -> TaskLine | BadLine:
    """One line as a task, or why it is not one."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as err:
        return BadLine(number, f"not JSON: {err.msg} at column {err.colno}")
    if not isinstance(data, dict):
        return BadLine(number, f"a JSON object was expected, got {type(data).__name__}")
    raw_id = data.get("instance_id")
    named = raw_id if isinstance(raw_id, str) else None
    try:
        return TaskLine(number, Task.model_validate(data))
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "line"
        return BadLine(number, f"field {where}: {first['msg']}", named)


__all__ = ["BadLine", "Task", "TaskLine", "parse_line", "read_tasks"]
