"""The official JavaScript SDK (``@langchain/langgraph-sdk``) for the e2e suite.

* ``install() -> Path`` installs the version pinned in ``tests/e2e/js/package-lock.json``
  into ``tests/e2e/js/node_modules`` (ignored by git) with ``npm ci``, once per lockfile:
  the lockfile's hash is written next to the modules and a matching hash skips the install.
  Raises ``Unavailable`` (the caller skips, printing the reason) when ``node`` or ``npm`` is
  absent, the registry cannot be reached, or the folder is not writable (no install yet);
  any other install failure is an error.
* ``run_scenario(name, *args) -> dict`` runs ``node scenarios.mjs NAME ARGS…`` and returns
  the JSON object it prints; a non-zero exit raises ``AssertionError`` with its stderr.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

JS_DIR = Path(__file__).parent / "js"
_STAMP = JS_DIR / "node_modules" / ".lockfile-sha256"
_NETWORK_ERRORS = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT", "ENETUNREACH")
_INSTALL_TIMEOUT_S = 300
_SCENARIO_TIMEOUT_S = 240


class Unavailable(Exception):
    """The JavaScript SDK cannot be used on this machine (the message says why)."""


def _lock_hash() -> str:
    return hashlib.sha256((JS_DIR / "package-lock.json").read_bytes()).hexdigest()


def install() -> Path:
    """Install the pinned SDK unless the installed one matches the lockfile; return the dir."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise Unavailable(f"{tool} is not installed")
    wanted = _lock_hash()
    if _STAMP.is_file() and _STAMP.read_text() == wanted:
        return JS_DIR
    if not os.access(JS_DIR, os.W_OK):  # e.g. an unprivileged run on a root's checkout
        raise Unavailable(f"{JS_DIR} is not writable and holds no installed SDK")
    done = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=_INSTALL_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        offline = [code for code in _NETWORK_ERRORS if code in done.stderr]
        if offline:
            raise Unavailable(f"npm ci could not reach the registry ({offline[0]})")
        raise AssertionError(f"npm ci failed ({done.returncode}):\n{done.stderr}")
    _STAMP.write_text(wanted)
    return JS_DIR


def run_scenario(name: str, *args: str) -> dict[str, Any]:
    """Run one scenario of ``scenarios.mjs``; return its observations."""
    done = subprocess.run(
        ["node", "scenarios.mjs", name, *args],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=_SCENARIO_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, f"node scenarios.mjs {name} failed:\n{done.stderr}"
    observed = json.loads(done.stdout)
    assert isinstance(observed, dict)
    return observed
