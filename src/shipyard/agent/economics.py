"""What each model cost a run: usage by the label of the model that answered, so a report
shows the economics of model routing (calls, tokens, cost per model)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from shipyard.contracts import Usage


def charged(book: Mapping[str, Usage], label: str, usage: Usage) -> dict[str, Usage]:
    """``book`` (usage by model label) with ``usage`` added to ``label``'s; an empty label
    (a reply journaled before labels were recorded) is counted as ``unknown``."""
    book = dict(book)
    name = label or "unknown"
    book[name] = Usage.model_validate(book.get(name) or Usage()) + usage
    return book


def merged(book: Mapping[str, Usage], *more: Mapping[str, Usage]) -> dict[str, Usage]:
    """``book`` with every label's usage of ``more`` added."""
    total = dict(book)
    for other in more:
        for label, usage in other.items():
            total = charged(total, label, usage)
    return total


def spent_since(after: Usage, before: Usage) -> Usage:
    """What was used between two running totals (``after`` counts ``before``)."""
    fields = {
        name: round(getattr(after, name) - getattr(before, name), 6) for name in Usage.model_fields
    }
    return Usage.model_validate(fields)


def sum_usage(parts: Iterable[Usage]) -> Usage:
    """The total of ``parts``."""
    total = Usage()
    for part in parts:
        total = total + part
    return total
