"""A package's public names, imported when first used (PEP 562).

``import shipyard.store`` or ``import shipyard`` must stay cheap: the CLI's ``--help`` and
``shipyard runs`` would otherwise pay for LangGraph, LangChain and every store module they
never use. A package lists where each public name lives; the type checker still sees plain
imports (under ``TYPE_CHECKING``).
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # not typing's: importing typing would cost the CLI's --help
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any


def attribute(package: str, exports: Mapping[str, str], name: str) -> Any:
    """The public ``name`` of ``package``, from the module ``exports`` names for it."""
    module = exports.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
