"""Which checks a repository has: :class:`CheckSpec` and :func:`detect_checks`.

Which Python runs a Python check: the workspace's own virtualenv (``.venv`` or ``venv``)
when it has the tool installed, because it also has the project's dependencies; else
Shipyard's own interpreter (``sys.executable``) when it can import the tool; else ``python3``
from ``PATH``, so a missing tool fails loudly as evidence rather than silently skipping.
The workspace venv is named by a relative path (commands run with the workspace as cwd)
so the cache key of a check does not depend on where the worktree lives.
"""

from __future__ import annotations

import configparser
import importlib.util
import json
import shlex
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from shipyard.errors import PolicyError

CheckKind = Literal["pytest", "ruff", "mypy", "npm", "exit-code"]
"""How a check's output is parsed: JUnit XML, ruff JSON, mypy lines, or exit code only."""

_NPM_PLACEHOLDER = 'echo "Error: no test specified" && exit 1'


class CheckSpec(BaseModel):
    """One check to run: a name, an argv (no shell), how to parse it and its time limit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    """Shown in evidence; also part of the artifact name of the log."""
    argv: list[str] = Field(min_length=1, validation_alias=AliasChoices("argv", "command"))
    """The command (``command`` in a policy file is accepted too); a string is split like a
    shell would, never run by one."""
    kind: CheckKind = "exit-code"
    timeout: float = Field(default=600.0, gt=0)
    """Seconds before the launcher kills the check (a failed check saying so)."""

    @field_validator("argv", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return shlex.split(value) if isinstance(value, str) else value


def detect_checks(
    workspace: Path, configured: Sequence[CheckSpec | BaseModel | Mapping[str, Any]] | None = None
) -> list[CheckSpec]:
    """The checks to run in ``workspace``.

    ``configured`` (from policy) replaces detection entirely; ``[]`` means "no checks".
    Raises ``PolicyError`` naming the field of a configured check that does not validate.
    Detection: pytest (a ``tests``/``test`` directory or pytest config), ruff (``ruff.toml``
    or ``[tool.ruff]``), mypy (``mypy.ini`` or ``[tool.mypy]``/``[mypy]``), ``npm test``
    (a real ``test`` script in ``package.json``).
    """
    if configured is not None:
        return [_configured(i, item) for i, item in enumerate(configured)]
    pyproject = _toml(workspace / "pyproject.toml")
    tool = pyproject.get("tool", {}) if isinstance(pyproject.get("tool"), dict) else {}
    found = [
        _pytest(workspace, tool),
        _ruff(workspace, tool),
        _mypy(workspace, tool),
        _npm(workspace),
    ]
    return [spec for spec in found if spec is not None]


def _configured(index: int, item: CheckSpec | BaseModel | Mapping[str, Any]) -> CheckSpec:
    if isinstance(item, CheckSpec):
        return item
    try:
        # The policy's check model (``policy.config.ConfiguredCheck``) arrives as a model.
        data = item.model_dump(exclude_none=True) if isinstance(item, BaseModel) else dict(item)
        return CheckSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in (f"checks[{index}]", *err["loc"]))
        raise PolicyError(f"{field}: {err['msg']}", field=field) from exc
    except (TypeError, ValueError) as exc:  # not a mapping, or bad shell quoting
        raise PolicyError(f"checks[{index}]: {exc}", field=f"checks[{index}]") from exc


def _toml(path: Path) -> dict[str, Any]:
    """A TOML file's content; unreadable or invalid counts as empty (the tool itself will
    then fail with its own message, which becomes evidence)."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def _ini_sections(path: Path) -> set[str]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, configparser.Error):
        return set()
    return set(parser.sections())


def python_with(workspace: Path, module: str) -> str:
    """The interpreter that should run ``python -m <module>`` (see the module docstring)."""
    for venv in (".venv", "venv"):
        site = workspace / venv / "lib"
        if (workspace / venv / "bin" / "python").exists() and any(
            site.glob(f"python3*/site-packages/{module}")
        ):
            return f"{venv}/bin/python"
    if importlib.util.find_spec(module) is not None:
        return sys.executable
    return "python3"


def _pytest(workspace: Path, tool: dict[str, Any]) -> CheckSpec | None:
    configured = (
        "pytest" in tool
        or (workspace / "pytest.ini").is_file()
        or (workspace / "conftest.py").is_file()
        or "tool:pytest" in _ini_sections(workspace / "setup.cfg")
        or "pytest" in _ini_sections(workspace / "tox.ini")
    )
    if not (configured or (workspace / "tests").is_dir() or (workspace / "test").is_dir()):
        return None
    python = python_with(workspace, "pytest")
    return CheckSpec(name="pytest", argv=[python, "-m", "pytest", "-q"], kind="pytest")


def _ruff(workspace: Path, tool: dict[str, Any]) -> CheckSpec | None:
    names = ("ruff.toml", ".ruff.toml")
    if "ruff" not in tool and not any((workspace / n).is_file() for n in names):
        return None
    python = python_with(workspace, "ruff")
    argv = [python, "-m", "ruff", "check", "--no-cache", "."]
    return CheckSpec(name="ruff", argv=argv, kind="ruff")


def _mypy(workspace: Path, tool: dict[str, Any]) -> CheckSpec | None:
    section: dict[str, Any] | None = (
        tool.get("mypy") if isinstance(tool.get("mypy"), dict) else None
    )
    ini = next(
        (workspace / n for n in ("mypy.ini", ".mypy.ini") if (workspace / n).is_file()), None
    )
    if section is None and ini is None and "mypy" not in _ini_sections(workspace / "setup.cfg"):
        return None
    # mypy needs targets unless its config names them (``files`` / ``packages``).
    has_targets = bool(section and ("files" in section or "packages" in section))
    if ini is not None:
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(ini, encoding="utf-8")
        has_targets = has_targets or parser.has_option("mypy", "files")
    argv = [python_with(workspace, "mypy"), "-m", "mypy", *([] if has_targets else ["."])]
    return CheckSpec(name="mypy", argv=argv, kind="mypy")


def _npm(workspace: Path) -> CheckSpec | None:
    try:
        package = json.loads((workspace / "package.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    scripts = package.get("scripts") if isinstance(package, dict) else None
    test = scripts.get("test") if isinstance(scripts, dict) else None
    if not isinstance(test, str) or not test.strip() or test.strip() == _NPM_PLACEHOLDER:
        return None
    return CheckSpec(name="npm-test", argv=["npm", "test", "--silent"], kind="npm")
