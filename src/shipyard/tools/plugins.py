"""The pytest plugins a repository's own configuration names, and where they live.

pytest loads plugins named by ``-p NAME`` in ``addopts`` (``pytest.ini``, ``.pytest.ini``,
``[tool.pytest.ini_options]`` in ``pyproject.toml``, ``[tool:pytest]`` in ``setup.cfg``,
``[pytest]`` in ``tox.ini``), by ``pytest_plugins`` in a ``conftest.py`` and by ``pytest11``
entry points. :func:`plugins_named` reads them from those files; :func:`plugin_owners` maps a
repository path to the plugin it belongs to: ``NAME.py`` or any file under the package
``NAME/``, at the root, under ``src/`` or under a ``pythonpath`` directory the configuration
names. A plugin installed from elsewhere is not the repository's, so it is not looked up.
"""

from __future__ import annotations

import ast
import configparser
import re
import shlex
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

PYTEST11_PYPROJECT = ("project", "entry-points", "pytest11")
PYTEST11_SETUP_CFG = ("options.entry_points", "pytest11")


@dataclass(frozen=True)
class Plugin:
    """A module pytest loads as a plugin, and what names it (``pytest.ini -p``, …)."""

    module: str
    origin: str


def dig(data: Any, key: tuple[str, ...]) -> Any:
    """``data[key[0]][key[1]]…``, or None where a level is missing or not a table."""
    for part in key:
        data = data.get(part) if isinstance(data, dict) else None
    return data


def parse_toml(raw: bytes) -> dict[str, Any]:
    """A TOML document; ``ValueError`` when it is not one."""
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ValueError(str(err)) from None


def parse_ini(raw: bytes) -> dict[str, Any]:
    """An INI document as section → options; ``ValueError`` when it is not one."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(raw.decode("utf-8"))
    except (UnicodeDecodeError, configparser.Error) as err:
        raise ValueError(str(err)) from None
    return {name: dict(parser[name]) for name in parser.sections()}


def plugins_named(configs: Mapping[str, bytes]) -> tuple[list[Plugin], list[str]]:
    """The plugins and the extra import roots (``pythonpath``) that the configuration files
    ``configs`` (path → bytes: pytest's config files and ``conftest.py`` files) name."""
    plugins: list[Plugin] = []
    roots: list[str] = []
    for path, raw in configs.items():
        name = PurePosixPath(path).name
        if name == "conftest.py":
            plugins += [Plugin(m, f"pytest_plugins in {path}") for m in _pytest_plugins(raw)]
            continue
        options, entry_points, pythonpath = _pytest_options(name, raw)
        plugins += [Plugin(m, f"-p {m} in {path}") for m in _p_options(options)]
        plugins += [Plugin(m, f"pytest11 entry point in {path}") for m in entry_points]
        roots += pythonpath
    return plugins, roots


def _pytest_options(name: str, raw: bytes) -> tuple[str, list[str], list[str]]:
    """``addopts`` (as one string), pytest11 entry-point modules, ``pythonpath`` entries."""
    if name == "pyproject.toml":
        try:
            data = parse_toml(raw)
        except ValueError:
            return "", [], []
        table = dig(data, ("tool", "pytest", "ini_options")) or {}
        eps = dig(data, PYTEST11_PYPROJECT) or {}
        modules = [str(v) for v in eps.values()] if isinstance(eps, dict) else []
        return _joined(table.get("addopts")), modules, _listed(table.get("pythonpath"))
    section = {"setup.cfg": "tool:pytest"}.get(name, "pytest")
    try:
        data = parse_ini(raw)
    except ValueError:
        return "", [], []
    table = data.get(section, {})
    lines = str(dig(data, PYTEST11_SETUP_CFG) or "").splitlines()
    modules = [line.partition("=")[2] for line in lines if "=" in line]
    return str(table.get("addopts", "")), modules, _listed(table.get("pythonpath"))


def _joined(value: Any) -> str:
    return (
        " ".join(map(shlex.quote, map(str, value))) if isinstance(value, list) else str(value or "")
    )


def _listed(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else str(value or "").split()


def _p_options(addopts: str) -> list[str]:
    try:
        words = shlex.split(addopts)
    except ValueError:
        words = addopts.split()
    found = []
    for i, word in enumerate(words):
        if word == "-p" and i + 1 < len(words):
            found.append(words[i + 1])
        elif word.startswith("-p") and len(word) > 2:
            found.append(word[2:])
    return [name for name in found if not name.startswith("no:")]


def _pytest_plugins(raw: bytes) -> list[str]:
    try:
        tree = ast.parse(raw)
    except (SyntaxError, ValueError):
        return []
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytest_plugins" for t in node.targets
        ):
            values = (
                node.value.elts if isinstance(node.value, ast.List | ast.Tuple) else [node.value]
            )
            names += [
                v.value for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)
            ]
    return names


def plugin_owners(plugins: list[Plugin], roots: list[str]) -> Callable[[str], str | None]:
    """A lookup from a path to the origin of the plugin it belongs to, if any."""
    files: dict[str, str] = {}
    packages: list[tuple[str, str]] = []
    for plugin in plugins:
        module = plugin.module.split(":", 1)[0].strip()
        if not re.fullmatch(r"[A-Za-z_][\w.]*", module):
            continue
        stem = module.replace(".", "/")
        for root in dict.fromkeys(roots):
            prefix = f"{root.strip('/')}/" if root.strip("/. ") else ""
            files.setdefault(f"{prefix}{stem}.py", plugin.origin)
            packages.append((f"{prefix}{stem}/", plugin.origin))

    def owner(path: str) -> str | None:
        if path in files:
            return files[path]
        return next((origin for pkg, origin in packages if path.startswith(pkg)), None)

    return owner


__all__ = [
    "PYTEST11_PYPROJECT",
    "PYTEST11_SETUP_CFG",
    "Plugin",
    "dig",
    "parse_ini",
    "parse_toml",
    "plugin_owners",
    "plugins_named",
]
