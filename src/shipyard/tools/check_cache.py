"""The check cache: what a check's result depends on, and how a cached result is reused.

The cache is a speed-up, never a verdict. A cached result may stand in for running a check
only for the same owner and when nothing that can change the result changed. The tree hash
covers the workspace's files; :func:`command_key` covers the rest: the check spec and its
targets, the environment the sandbox gives the check, the toolchain, the policy's content
hash and the isolation the launcher provides (the caller adds the resource limits).

The toolchain is identified by ``stat`` alone, never by running anything: the program a
check starts (resolved through the sandbox's ``PATH`` or inside the workspace) by real path,
size and modification time, and for a Python interpreter its ``pyvenv.cfg`` and
site-packages directories (installing, removing or upgrading a package changes their
modification time). The ``stat`` calls are made for every check (microseconds); only which
directories to look at is remembered per process. Running ``--version`` would mean running
a program from the workspace outside the sandbox, which Shipyard never does.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import site
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from shipyard.contracts import Evidence
from shipyard.sandbox.isolation.environment import build_env
from shipyard.tools.checkspec import CheckSpec

CHECK_ENV = {"PYTHONDONTWRITEBYTECODE": "1", "NO_COLOR": "1", "PY_COLORS": "0", "CI": "1"}
"""Clean, non-interactive output; bytecode off so a check run leaves the tree hash unchanged."""


EVIDENCE_FORMAT = 2
"""What cached evidence holds; raised when it holds more (2: failure identities), so an
entry made before never stands in for one that would have it."""


class Artifacts(Protocol):
    """Where full logs go; ``put`` returns a reference that ``Evidence.log_ref`` holds and
    ``read`` gives the bytes back (``OSError``/``ValueError`` when it cannot)."""

    def put(self, run_id: str, name: str, data: bytes | str) -> str: ...

    def read(self, ref: str) -> bytes: ...


class CheckCache(Protocol):
    """Evidence by (owner, tree hash, command key). Implementations:
    :class:`MemoryCheckCache`, and the Postgres one in ``store/``. What is put carries
    ``cached_from``: the run that produced it."""

    def get(self, owner: str, tree_hash: str, command_key: str) -> Evidence | None: ...

    def put(self, owner: str, tree_hash: str, command_key: str, evidence: Evidence) -> None: ...


class MemoryCheckCache:
    """A :class:`CheckCache` in a dict, for one process (tests, the offline demo)."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str, str], Evidence] = {}

    def get(self, owner: str, tree_hash: str, command_key: str) -> Evidence | None:
        found = self._items.get((owner, tree_hash, command_key))
        return found.model_copy(deep=True) if found is not None else None

    def put(self, owner: str, tree_hash: str, command_key: str, evidence: Evidence) -> None:
        self._items[(owner, tree_hash, command_key)] = evidence.model_copy(deep=True)


def reuse(hit: Evidence, artifacts: Artifacts, run_id: str) -> Evidence | None:
    """``hit`` as evidence of run ``run_id``: its log copied into that run's artifacts (so
    nothing points at another run's logs) and its summary naming the run it came from;
    ``None`` (run the check again) when its log is gone."""
    if hit.log_ref is None or not hit.cached_from:
        return None
    try:
        log = artifacts.read(hit.log_ref)
    except (OSError, ValueError):
        return None
    name = f"checks/{hit.check}-cached-{uuid.uuid4().hex[:8]}.log"
    header = f"(cached: this log is from run {hit.cached_from}, {hit.log_ref})\n".encode()
    log_ref = artifacts.put(run_id, name, header + log)
    summary = f"{hit.summary} (cached from run {hit.cached_from})"
    return hit.model_copy(update={"cached": True, "log_ref": log_ref, "summary": summary})


def command_key(
    spec: CheckSpec, targets: Sequence[str] = (), context: Mapping[str, Any] | None = None
) -> str:
    """A stable key for "this check, run this way, in this setting" (the tree hash is the
    other half); ``context`` is :func:`key_context`'s result."""
    body = json.dumps(
        {
            "spec": spec.model_dump(mode="json"),
            "targets": list(targets),
            "context": dict(context or {}),
        },
        sort_keys=True,
        default=str,
    )
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()


def key_context(
    spec: CheckSpec, workspace: Path, *, policy_hash: str, isolation: Mapping[str, Any]
) -> dict[str, Any]:
    """Everything outside the tree and the spec that a check's result depends on."""
    environment = sandbox_environment()
    return {
        "evidence_format": EVIDENCE_FORMAT,
        "environment": environment,
        "toolchain": toolchain(spec, workspace, environment.get("PATH", "")),
        "policy": policy_hash,
        "isolation": dict(isolation),
    }


def sandbox_environment() -> dict[str, str]:
    """The environment values a check receives (its private ``HOME``/``TMPDIR`` named by
    placeholders: they differ on every run but never change a result)."""
    return build_env(os.environ, home="<home>", tmpdir="<tmp>", extra=CHECK_ENV)


def toolchain(spec: CheckSpec, workspace: Path, path: str) -> dict[str, Any]:
    """A ``stat`` fingerprint of the program ``spec`` runs (see the module docstring)."""
    program = spec.argv[0]
    if "/" in program:
        found: str | None = str(workspace / program) if not program.startswith("/") else program
    else:
        found = shutil.which(program, path=path)
    if found is None or not os.path.exists(found):
        return {"program": program, "found": None}
    located = Path(found)
    return {
        "program": program,
        "found": _stat(located.resolve()),
        "python": _python_dirs(located) if "-m" in spec.argv[1:2] else [],
    }


def _stat(path: Path) -> dict[str, Any]:
    try:
        info = path.stat()
    except OSError:
        return {"path": str(path), "missing": True}
    return {"path": str(path), "size": info.st_size, "mtime_ns": info.st_mtime_ns}


def _python_dirs(interpreter: Path) -> list[dict[str, Any]]:
    """The interpreter's ``pyvenv.cfg`` and site-packages directories, fingerprinted (which
    directories those are is looked up once per process; their ``stat`` every time)."""
    return [_stat(d) for d in _python_dir_names(interpreter, interpreter.resolve())]


@functools.lru_cache(maxsize=64)
def _python_dir_names(interpreter: Path, real: Path) -> tuple[Path, ...]:
    roots = {interpreter.parent.parent, real.parent.parent}
    dirs: set[Path] = set()
    for root in roots:
        dirs.add(root / "pyvenv.cfg")
        for pattern in ("lib/python3*/site-packages", "lib/python3*/dist-packages"):
            dirs.update(root.glob(pattern))
    if real == Path(sys.executable).resolve():
        dirs.update(Path(p) for p in site.getsitepackages())
    return tuple(sorted(d for d in dirs if d.exists()))
