"""The ``shipyard`` parser is cheap: building it (what ``--help`` does) imports none of the
heavy libraries a command uses, and every sub-command names a function that exists."""

from __future__ import annotations

import importlib
import subprocess
import sys

from shipyard.cli import parser

HEAVY = ("pydantic", "sqlalchemy", "psycopg", "langgraph", "langchain_core", "rich", "fastapi")


def test_building_the_parser_imports_no_heavy_library() -> None:
    probe = (
        "import sys; from shipyard.cli import parser; parser().format_help(); "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_every_sub_command_names_an_existing_function() -> None:
    top = parser()
    commands = top._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    targets = []
    for name, sub in commands.items():
        nested = [a for a in sub._actions if a.__class__.__name__ == "_SubParsersAction"]
        parsers = [sub] if not nested else list(nested[0].choices.values())
        targets += [(name, p.get_default("command")) for p in parsers]
    assert len(targets) >= 15
    for name, target in targets:
        module, _, function = target.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), name
