"""Where the ``shipyard`` command's log records go: a file, not the person's terminal.

Libraries and Shipyard's own background writers log what they retry and what they drop
(``store.writer``, psycopg's pool). On a terminal those records would bury the one line the
command prints about what happened and what to do; they go to
``SHIPYARD_HOME/logs/cli.log`` instead (mode 0600, secrets masked), where a person looking
for details finds them.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from shipyard.redact import redact


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def log_to_file(home: Path) -> Path | None:
    """Send WARNING and above to ``home/logs/cli.log`` (once per process); ``None`` when
    the file cannot be opened (the records then go where Python sends them by default)."""
    path = home / "logs" / "cli.log"
    root = logging.getLogger()
    if any(getattr(h, "shipyard_cli_log", None) == path for h in root.handlers):
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        return None
    with contextlib.suppress(OSError):
        path.chmod(0o600)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(_RedactingFormatter("%(asctime)s %(process)d %(name)s: %(message)s"))
    handler.shipyard_cli_log = path  # type: ignore[attr-defined]  # marks our handler
    root.addHandler(handler)
    return path
