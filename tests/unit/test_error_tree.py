"""The exception tree drawn in ``shipyard.errors`` is the real one: every ``ShipyardError``
subclass anywhere in the package is drawn, under the class it derives from."""

from __future__ import annotations

import importlib
import pkgutil
import re

import shipyard
from shipyard import errors
from shipyard.errors import ShipyardError

_NODE = re.compile(r"^(?P<indent>[\s│]*)(?:[├└]── )?(?P<name>[A-Z]\w+)\b")


def drawn_tree() -> dict[str, str | None]:
    """Class name → the name drawn as its parent (``None`` for the root)."""
    doc = errors.__doc__ or ""
    lines = doc.split("::", 1)[1].split("\n\n", 2)[1].splitlines()
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in lines:
        match = _NODE.match(line.removeprefix("    "))
        if match is None or ("── " not in line and stack):
            continue  # a continuation line of the previous entry's description
        depth = match.start("name")
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[match.group("name")] = stack[-1][1] if stack else None
        stack.append((depth, match.group("name")))
    return parents


def every_error_class() -> dict[str, type[ShipyardError]]:
    for module in pkgutil.walk_packages(shipyard.__path__, "shipyard."):
        if not any(part in module.name for part in (".examples", ".migrations", "__main__")):
            importlib.import_module(module.name)
    found: dict[str, type[ShipyardError]] = {}
    pending: list[type[ShipyardError]] = [ShipyardError]
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


def drawn_parent_of(cls: type[ShipyardError]) -> str | None:
    """The nearest base that is a ``ShipyardError`` (the first listed, for several)."""
    if cls is ShipyardError:
        return None
    bases = [b for b in cls.__bases__ if issubclass(b, ShipyardError)]
    return bases[0].__name__


def test_the_drawing_parses() -> None:
    tree = drawn_tree()
    assert tree["ShipyardError"] is None
    assert tree["RepoError"] == "UserInputError"
    assert tree["CommandRefusedError"] == "SandboxError"


def test_every_shipyard_error_is_drawn_under_its_base() -> None:
    tree = drawn_tree()
    classes = every_error_class()
    undrawn = sorted(set(classes) - set(tree))
    assert not undrawn, f"draw these in shipyard/errors.py's tree: {undrawn}"
    wrong = {
        name: (tree[name], drawn_parent_of(cls))
        for name, cls in classes.items()
        if tree[name] != drawn_parent_of(cls)
    }
    assert not wrong, f"drawn parent vs real base: {wrong}"
    assert not set(tree) - set(classes), "the drawing names classes that do not exist"
