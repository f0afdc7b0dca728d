"""``--oracle``: scripted models that apply a task's reference ``patch``, so the harness
itself is checked — a correct patch must resolve, a wrong one must not.

The planner proposes one low-risk step; the developer writes, with ``write_file``, the
content every file the patch adds or changes has after the patch (worked out in a scratch
index of the task's clone, never in a work tree) and finishes; the reviewer, when a policy
turns it on, approves. A later attempt (the repository's own checks failed) only finishes
again, so a wrong patch ends the run as the graph ends any failing step. A patch that
deletes a file, or changes a binary one, is outside what the developer's tools can do: a
``HarnessError``, as is a patch that does not apply to the base commit.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from shipyard.evals.errors import HarnessError
from shipyard.llm import Script, ScriptedChatModel
from shipyard.settings import ROLES, Role

MAX_ATTEMPTS = 20
"""Attempts the script answers (a policy's ``attempts_per_step`` is at most this)."""


def patched_files(clone: Path, base: str, patch: str) -> dict[str, str]:
    """Path -> content after ``patch`` for every file it adds or modifies."""
    if not patch.strip():
        raise HarnessError("--oracle needs the task's patch, and it is empty")
    with tempfile.TemporaryDirectory(prefix="shipyard-oracle-") as tmp:
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        patch_file = Path(tmp) / "fix.patch"
        patch_file.write_text(patch, encoding="utf-8")
        _git(clone, env, "read-tree", base)
        applied = _git(clone, env, "apply", "--cached", "--whitespace=nowarn", str(patch_file),
                       check=False)  # fmt: skip
        if applied.returncode != 0:
            raise HarnessError(f"the reference patch does not apply: {applied.stderr.strip()}")
        status = _git(clone, env, "diff", "--cached", "--name-status", "--no-renames", base)
        files: dict[str, str] = {}
        for line in status.stdout.splitlines():
            kind, _, path = line.partition("\t")
            if kind == "D":
                raise HarnessError(f"the oracle cannot delete files; the patch deletes {path}")
            blob = _git(clone, env, "cat-file", "blob", f":{path}", text=False)
            try:
                files[path] = blob.stdout.decode("utf-8")
            except UnicodeDecodeError:
                raise HarnessError(f"the oracle writes text files only; {path} is not") from None
        return files


def oracle_script(instance_id: str, files: dict[str, str]) -> Script:
    """The planner, developer and reviewer replies of one task (``llm/scripted.py``)."""
    writes = [_call("write_file", path=p, content=c) for p, c in sorted(files.items())]
    done = _call("finish", summary=f"applied the reference patch of {instance_id}")
    developer: dict[str, Any] = {"s1/1": [*writes, done]}
    reviewer: dict[str, Any] = {}
    approve = {"json": {"summary": "oracle: reference patch", "request_changes": False,
                        "findings": []}}  # fmt: skip
    for attempt in range(1, MAX_ATTEMPTS + 1):
        reviewer[f"s1/{attempt}"] = approve
        if attempt > 1:
            developer[f"s1/{attempt}"] = [done]
    plan = {
        "summary": f"Apply the reference patch of {instance_id}",
        "risk": "low",
        "steps": [
            {
                "id": "s1",
                "title": "Apply the reference patch",
                "instructions": "Write the files of the reference patch.",
                "files_hint": sorted(files),
            }
        ],
    }
    data = {"label": "oracle", "planner": [{"json": plan}], "developer": developer,
            "reviewer": reviewer}  # fmt: skip
    return Script(data, name=f"oracle:{instance_id}")


def oracle_models(instance_id: str, files: dict[str, str]) -> dict[Role, ScriptedChatModel]:
    """One scripted model per role, answering from :func:`oracle_script`."""
    script = oracle_script(instance_id, files)
    return {role: ScriptedChatModel(script=script, role=role) for role in ROLES}


def _call(name: str, **args: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": name, "args": args}]}


def _git(
    clone: Path, env: dict[str, str], *args: str, check: bool = True, text: bool = True
) -> subprocess.CompletedProcess[Any]:
    done = subprocess.run(
        ["git", *args], cwd=clone, env=env, capture_output=True, text=text, check=False
    )
    if check and done.returncode != 0:
        err = done.stderr if isinstance(done.stderr, str) else done.stderr.decode(errors="replace")
        raise HarnessError(f"git {args[0]} in the task's clone failed: {err.strip()}")
    return done


__all__ = ["oracle_models", "oracle_script", "patched_files"]
