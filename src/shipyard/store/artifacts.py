"""Large artifacts (logs, diffs, reports) on disk; state holds only their references.

A reference is ``artifact://<run_id>/<name>`` and maps to ``<root>/<run_id>/<name>``. Names
may contain ``/`` (``logs/pytest.txt``) but never leave the run's directory: absolute names,
``..``, empty parts and NUL bytes are refused. Writes are atomic (temp file + rename), so a
reader never sees half an artifact. Every write masks the secret values of the environment
(``shipyard.secret_values``), whoever wrote the text; pattern redaction of what may hold
credentials is the caller's job (``shipyard.redact``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path, PurePosixPath

from shipyard.secret_values import redact_values_bytes

SCHEME = "artifact://"


class ArtifactStore:
    """Artifacts under ``root``, one directory per run."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, run_id: str, name: str, data: bytes | str) -> str:
        """Write ``data`` (text is stored as UTF-8) with secret values masked, and return its
        ``artifact://`` reference.

        Writing the same name again replaces the artifact.
        """
        path = self._resolve(run_id, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = redact_values_bytes(data.encode() if isinstance(data, str) else data)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return f"{SCHEME}{run_id}/{name}"

    def path(self, ref: str) -> Path:
        """The file a reference points to (it may not exist). Raises ``ValueError`` if malformed."""
        if not ref.startswith(SCHEME):
            raise ValueError(f"not an artifact reference: {ref!r} (expected {SCHEME}<run>/<name>)")
        run_id, _, name = ref.removeprefix(SCHEME).partition("/")
        return self._resolve(run_id, name)

    def read(self, ref: str) -> bytes:
        """The artifact's bytes; ``FileNotFoundError`` naming the reference if it is missing."""
        path = self.path(ref)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(f"artifact {ref} does not exist (looked for {path})") from None

    def _resolve(self, run_id: str, name: str) -> Path:
        _check_part("artifact run id", run_id)
        pure = PurePosixPath(name)
        if not name or pure.is_absolute() or "\\" in name:
            raise ValueError(f"artifact name {name!r} must be a relative path like 'logs/test.txt'")
        for part in name.split("/"):
            _check_part("artifact name", part, whole=name)
        root = self.root.resolve()
        path = (root / run_id / name).resolve()
        # Symlinks planted inside the store must not lead outside it either.
        if not path.is_relative_to(root / run_id):
            raise ValueError(f"artifact name {name!r} escapes the artifact store")
        return path


def _check_part(what: str, part: str, whole: str | None = None) -> None:
    shown = whole if whole is not None else part
    if part in ("", ".", "..") or "/" in part or "\x00" in part:
        raise ValueError(f"invalid {what} {shown!r}: empty, '.', '..', '/' and NUL are not allowed")
