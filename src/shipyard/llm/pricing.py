"""What a model call costs: a small built-in price table, overridable per role.

Prices are USD per one million (input, output) tokens, as published by the provider when
this table was written. They drift; ``SHIPYARD_<ROLE>_PRICE="in,out"`` overrides them (read
through ``Settings``), and a model not in the table costs 0 — ``price_for`` returns ``None``
so the caller can say the cost is unknown instead of pretending it was free.
"""

from __future__ import annotations

import re

Price = tuple[float, float]
"""USD per 1M (input, output) tokens."""

PRICES: dict[str, Price] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "o3": (2.00, 8.00),
    "o4-mini": (1.10, 4.40),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
}

# A dated snapshot ("gpt-4o-mini-2024-07-18") costs what its family does; other suffixes
# ("o3-pro") are different products and must not match by prefix.
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def price_for(model: str, override: Price | None = None) -> Price | None:
    """The price of ``model``: ``override`` if given, else the table entry, else ``None``.

    A provider prefix as LiteLLM writes it (``openai/gpt-4o``) and a dated snapshot
    suffix are ignored when looking the name up.
    """
    if override is not None:
        return override
    name = model.strip().lower().rsplit("/", 1)[-1]
    return PRICES.get(name) or PRICES.get(_SNAPSHOT.sub("", name))


def cost_usd(price: Price | None, input_tokens: int, output_tokens: int) -> float:
    """The cost of one call, rounded to a millionth of a dollar; 0 when the price is unknown."""
    if price is None:
        return 0.0
    return round((input_tokens * price[0] + output_tokens * price[1]) / 1_000_000, 6)
