"""``--oracle``: scripted models that apply a task's reference ``patch``, so the harness
itself is checked — a correct patch must resolve, a wrong one must not.

The planner proposes one low-risk step; the developer makes the patch's change and
finishes; the reviewer, when a policy turns it on, approves. A later attempt (the
repository's own checks failed) only finishes again, so a wrong patch ends the run as the
graph ends any failing step. The patch is first applied in a scratch index of the task's
clone (never in a work tree): one that does not apply to the base commit is a
``HarnessError``. How the developer makes the change:

* a patch that only adds or changes text files: ``write_file`` with each file's content
  after the patch;
* any other patch ``git apply`` takes — deleting or renaming files, a ``GIT binary patch``,
  a file mode — cannot be written with ``write_file``: the developer writes the patch to
  :data:`PATCH_FILE`, runs ``git apply`` on it and removes it, with ``run_command``. Those
  two command lines are the run's ``[commands] allow`` (:func:`oracle_policy`; the override
  replaces the repository's own list, and the developer runs nothing else).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.evals.errors import HarnessError
from shipyard.llm import Script, ScriptedChatModel
from shipyard.settings import ROLES, Role

MAX_ATTEMPTS = 20
"""Attempts the script answers (a policy's ``attempts_per_step`` is at most this)."""


PATCH_FILE = ".shipyard-oracle.patch"
"""Where the developer writes a patch it applies with ``git apply`` (removed afterwards)."""
APPLY = f"git apply --whitespace=nowarn {PATCH_FILE}"
REMOVE = f"rm {PATCH_FILE}"


@dataclass(frozen=True)
class Reference:
    """A task's reference patch as the oracle's developer makes it."""

    patch: str
    files: dict[str, str]
    """Path -> text after the patch of every file it adds or modifies (``write_file``)."""
    applied: bool
    """Whether the developer applies the patch with ``git apply`` (see the module
    docstring) instead of writing ``files``."""

    @property
    def paths(self) -> list[str]:
        """Every path the patch touches."""
        return sorted(self.files)


def reference(clone: Path, base: str, patch: str) -> Reference:
    """The reference ``patch`` applied to ``base`` in a scratch index of ``clone``."""
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
        raw = _git(clone, env, "diff", "--cached", "--raw", "-z", "--no-renames", base)
        files: dict[str, str] = {}  # what write_file cannot write is left empty
        plain = True
        fields = raw.stdout.split("\0")
        for meta, path in zip(fields[0::2], fields[1::2], strict=False):
            if not meta.startswith(":"):
                continue
            old_mode, new_mode, *_, kind = meta[1:].split()
            if kind == "D" or (kind == "M" and old_mode != new_mode) or new_mode != "100644":
                plain = False
                files[path] = ""
                continue
            blob = _git(clone, env, "cat-file", "blob", f":{path}", text=False)
            try:
                files[path] = blob.stdout.decode("utf-8")
            except UnicodeDecodeError:
                plain, files[path] = False, ""
        return Reference(patch=patch, files=files, applied=not plain)


def oracle_policy(ref: Reference) -> dict[str, object]:
    """The run's policy override for ``ref``: the two command lines that apply it when the
    developer applies it with ``git apply``; nothing otherwise."""
    return {"commands": {"allow": [APPLY, REMOVE]}} if ref.applied else {}


def oracle_script(instance_id: str, ref: Reference) -> Script:
    """The planner, developer and reviewer replies of one task (``llm/scripted.py``)."""
    if ref.applied:
        writes = [
            _call("write_file", path=PATCH_FILE, content=ref.patch),
            _call("run_command", command=APPLY),
            _call("run_command", command=REMOVE),
        ]
    else:
        writes = [_call("write_file", path=p, content=c) for p, c in sorted(ref.files.items())]
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
                "instructions": "Make the change of the reference patch.",
                "files_hint": ref.paths,
            }
        ],
    }
    data = {"label": "oracle", "planner": [{"json": plan}], "developer": developer,
            "reviewer": reviewer}  # fmt: skip
    return Script(data, name=f"oracle:{instance_id}")


def oracle_models(instance_id: str, ref: Reference) -> dict[Role, ScriptedChatModel]:
    """One scripted model per role, answering from :func:`oracle_script`."""
    script = oracle_script(instance_id, ref)
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


__all__ = ["APPLY", "PATCH_FILE", "REMOVE", "Reference", "oracle_models", "oracle_policy",
           "oracle_script", "reference"]  # fmt: skip
