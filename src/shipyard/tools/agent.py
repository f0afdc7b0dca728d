"""The developer model's tools (docs/architecture.md §3): schemas for the model, dispatch
for the node.

The model sees exactly the names and arguments of docs/architecture.md §3. Calls are
dispatched here to the plain, separately tested functions of ``tools/files.py``, the policy
and the launcher. Errors the model can fix come back as the tool result; everything else
raises.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field, ValidationError

from shipyard.errors import CommandRefusedError
from shipyard.policy.config import Policy
from shipyard.redact import redact
from shipyard.sandbox.launcher import CommandResult, Launcher, Limits
from shipyard.tools.errors import ToolError
from shipyard.tools.files import Workspace
from shipyard.tools.quota import Quota

MUTATING = frozenset({"write_file", "edit_file", "run_command"})
_LINE_NO = re.compile(r":\d+: ")


class ListFiles(BaseModel):
    """List files and directories under a path of the workspace."""

    path: str = Field(default=".", description="Directory relative to the workspace root.")


class ReadFile(BaseModel):
    """Read a text file with line numbers; optionally only lines start_line..end_line."""

    path: str = Field(description="File path relative to the workspace root.")
    start_line: int | None = Field(default=None, description="First line (1-based).")
    end_line: int | None = Field(default=None, description="Last line (inclusive).")


class Search(BaseModel):
    """Search files for a regular expression; returns `path:line: text` lines."""

    pattern: str = Field(description="Python regular expression.")
    path: str = Field(default=".", description="Directory or file to search in.")


class WriteFile(BaseModel):
    """Create or overwrite a text file with the given content."""

    path: str = Field(description="File path relative to the workspace root.")
    content: str = Field(description="The complete new content of the file.")


class EditFile(BaseModel):
    """Replace exactly one occurrence of `old` with `new` in a file."""

    path: str = Field(description="File path relative to the workspace root.")
    old: str = Field(description="Exact text to replace; must occur exactly once.")
    new: str = Field(description="Replacement text.")


class RunCommand(BaseModel):
    """Run a command in the workspace (sandboxed, no network, subject to policy)."""

    command: str = Field(description="The command line, e.g. `python -m pytest -q`.")


class Finish(BaseModel):
    """Declare the current step done. Validation then runs the repository's checks."""

    summary: str = Field(description="What you changed and why.")


SCHEMAS: dict[str, type[BaseModel]] = {
    "list_files": ListFiles,
    "read_file": ReadFile,
    "search": Search,
    "write_file": WriteFile,
    "edit_file": EditFile,
    "run_command": RunCommand,
    "finish": Finish,
}


def _not_direct(**_: Any) -> str:
    raise RuntimeError("developer tools are dispatched by Toolbox.call, not invoked directly")


def tool_schemas() -> list[BaseTool]:
    """The tools as the model sees them (names and arguments of docs/architecture.md §3)."""
    return [
        StructuredTool.from_function(
            func=_not_direct, name=name, description=schema.__doc__ or name, args_schema=schema
        )
        for name, schema in SCHEMAS.items()
    ]


@dataclass(frozen=True)
class ToolResult:
    """What one tool call produced, as recorded in the journal."""

    content: str
    finished: bool = False
    deferred: str | None = None


@dataclass
class Toolbox:
    """Dispatches the developer's tool calls inside one workspace under one policy."""

    root: Path
    policy: Policy
    launcher: Launcher
    remembered: list[str]
    record: Callable[[str, dict[str, Any]], None]
    """Records a policy decision with the run (kind, payload)."""
    _quota: Quota = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._quota = Quota(self.root, self.policy.budgets.workspace_mb)

    def call(self, name: str, args: dict[str, Any]) -> ToolResult:
        """Run one tool call; errors the model can fix come back as the result."""
        schema = SCHEMAS.get(name)
        if schema is None:
            return ToolResult(f"error: unknown tool {name!r}; available: {', '.join(SCHEMAS)}")
        try:
            parsed = schema.model_validate(args)
        except ValidationError as err:
            return ToolResult(f"error: invalid arguments for {name}: {_first_error(err)}")
        try:
            return self._dispatch(parsed)
        except ToolError as err:
            return ToolResult(f"error: {err}")

    def _dispatch(self, args: BaseModel) -> ToolResult:
        ws = Workspace(self.root, quota=self._quota)
        match args:
            case ListFiles(path=path):
                return ToolResult(ws.list_files(path))
            case ReadFile(path=path, start_line=start, end_line=end):
                self._check_read(path)
                return ToolResult(redact(ws.read_file(path, start, end)))
            case Search(pattern=pattern, path=path):
                self._check_read(path)
                return ToolResult(redact(self._readable(ws.search(pattern, path))))
            case WriteFile(path=path, content=content):
                self._check_write(path)
                return ToolResult(ws.write_file(path, content))
            case EditFile(path=path, old=old, new=new):
                self._check_write(path)
                return ToolResult(ws.edit_file(path, old, new))
            case RunCommand(command=command):
                return self._run(command)
            case Finish(summary=summary):
                return ToolResult(f"step finished: {summary}", finished=True)
        raise AssertionError(f"unhandled tool arguments {args!r}")

    def _check_read(self, path: str) -> None:
        decision = self.policy.check_path(path, "read")
        if decision.action == "deny":
            self.record("policy.path", decision.model_dump(mode="json"))
            raise ToolError(f"reading {path} is forbidden by policy ({decision.reason})")

    def _readable(self, hits: str) -> str:
        """``search`` hits (``path:line: text``) without those in forbidden files: a line
        goes if any prefix that could be its path is forbidden."""
        kept = [
            line
            for line in hits.splitlines()
            if not any(
                self.policy.check_path(line[: m.start()], "read").action == "deny"
                for m in _LINE_NO.finditer(line)
            )
        ]
        return "\n".join(kept) if kept else "no matches outside forbidden paths"

    def _check_write(self, path: str) -> None:
        decision = self.policy.check_path(path, "write")
        self.record("policy.path", decision.model_dump(mode="json"))
        if decision.action == "deny":
            raise ToolError(f"writing {path} is forbidden by policy ({decision.reason})")

    def _run(self, command: str) -> ToolResult:
        decision = self.policy.check_command(command, self.remembered)
        self.record("policy.command", decision.model_dump(mode="json"))
        if decision.action == "deny":
            return ToolResult(f"denied by policy rule {decision.rule!r}: {decision.reason}")
        if decision.action == "ask":
            return ToolResult(
                f"not run: `{command}` needs a human's approval ({decision.reason}); it is "
                "listed for the reviewer of this change. Continue without it.",
                deferred=command,
            )
        if refusal := self._quota.over():
            return ToolResult(f"not run: {refusal}")
        started, limits = self._quota.started(), self._limits()
        try:
            result = self.launcher.run(
                decision.argv,
                workspace=self.root,
                shell=decision.shell,
                env=command_env(self.root),
                limits=limits,
                hidden=self.policy.paths.forbidden,
            )
        except CommandRefusedError as err:
            return ToolResult(f"not run: {redact(str(err))}")
        over = self._quota.after_command(started)
        if over is None and limits is not None and result.limit == "file_size":
            over = (
                f"a file may only grow by what is left of the workspace's "
                f"{self._quota.budget_mb} MB budget ({limits.file_size_bytes} bytes)"
            )
        return ToolResult(format_command_result(result) + (f"\nerror: {over}" if over else ""))

    def _limits(self) -> Limits | None:
        """The launcher's own limits, unless what is left of the disk budget is less than
        their per-file size limit: then that is the limit."""
        left = self._quota.remaining()
        if left >= Limits().file_size_bytes:
            return None
        return dataclasses.replace(Limits(), file_size_bytes=max(left, 1))


def command_env(root: Path) -> dict[str, str]:
    """PATH for the developer's commands: the workspace's own virtualenv first (it has the
    project's dependencies), then the Python running Shipyard, then the usual PATH."""
    dirs = [str(root / name / "bin") for name in (".venv", "venv") if (root / name).is_dir()]
    dirs.append(str(Path(sys.executable).parent))
    dirs.append(os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"))
    return {"PATH": os.pathsep.join(dirs)}


def format_command_result(result: CommandResult) -> str:
    """A compact, redacted rendering of a command's outcome for the model."""
    head = f"exit code {result.exit_code}"
    if result.limit:
        head += f" (stopped: {result.limit} limit)"
    parts = [head, f"isolation: {result.isolation.level}"]
    if result.stdout.strip():
        parts.append("--- stdout (tail) ---\n" + result.stdout.rstrip())
    if result.stderr.strip():
        parts.append("--- stderr (tail) ---\n" + result.stderr.rstrip())
    return redact("\n".join(parts))


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "arguments"
    return f"{where}: {first['msg']}"
