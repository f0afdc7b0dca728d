"""The environment a sandboxed command sees: an allowlist, never a denylist.

Only locale, terminal and search-path variables pass through from the parent; ``HOME`` and
``TMPDIR`` point at directories the command may write. Extras the caller names are added,
but a name that looks like a credential is refused even then.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from shipyard.errors import SandboxError

_PASS_THROUGH = frozenset({"PATH", "LANG", "LANGUAGE", "TERM", "TZ", "COLUMNS", "LINES"})

_SECRET_NAME = re.compile(
    r"(^|_)(KEY|KEYS|TOKEN|TOKENS|SECRET|SECRETS|PASSWORD|PASSWD|PASS|PWD_HASH|CREDENTIALS?"
    r"|AUTH|COOKIE|SESSION|PRIVATE|CERT|DSN)(_|$)"
    r"|^(OPENAI|ANTHROPIC|AWS|AZURE|GOOGLE|GCP|GCLOUD|GITHUB|GH|GITLAB|SLACK|HF|HUGGINGFACE"
    r"|LANGCHAIN|LANGSMITH|NPM|PYPI|TWINE|DOCKER|SSH|GPG|VAULT)_"
    r"|(^|_)DATABASE_URL$|_URI$",
    re.IGNORECASE,
)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def is_secret_name(name: str) -> bool:
    """True for variable names that conventionally hold credentials (``OPENAI_API_KEY``,
    ``GITHUB_TOKEN``, ``DATABASE_URL``, ``PGPASSWORD`` ...)."""
    upper = name.upper()
    return bool(_SECRET_NAME.search(upper)) or "PASSWORD" in upper or "SECRET" in upper


def build_env(
    parent: Mapping[str, str],
    *,
    home: str,
    tmpdir: str,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The child's whole environment.

    Raises ``SandboxError`` when ``extra`` names a credential-like variable or holds a
    value with a NUL byte — the caller asked for something the sandbox never passes.
    """
    env = {k: v for k, v in parent.items() if k in _PASS_THROUGH or k.startswith("LC_")}
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("LANG", "C.UTF-8")
    env["HOME"] = home
    env["TMPDIR"] = tmpdir
    # Keep tools from writing caches or bytecode outside the places above.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["XDG_CACHE_HOME"] = f"{tmpdir}/.cache"
    for name, value in (extra or {}).items():
        if not name or "=" in name or "\0" in name or "\0" in value:
            raise SandboxError(f"invalid environment variable name or value: {name!r}")
        if is_secret_name(name):
            raise SandboxError(
                f"refusing to pass {name!r} into the sandbox: it looks like a credential; "
                "commands in the sandbox never receive secrets"
            )
        env[name] = value
    return env
