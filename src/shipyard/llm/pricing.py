"""What a model call costs: a small built-in price table, overridable per role.

Prices are USD per one million (input, output) tokens, as published by the provider when
this table was written. They drift; ``SHIPYARD_<ROLE>_PRICE="in,out"`` overrides them (read
through ``Settings``), and a model not in the table costs 0 — ``price_for`` returns ``None``
so the caller can say the cost is unknown instead of pretending it was free.

Before a call is made, its worst case is checked against what the run's budgets leave
(``Allowance``): the prompt's tokens (estimated) and the longest reply the rest affords; the
reply is bounded by ``max_tokens`` when the budget allows less than a model would otherwise
write, and a call that cannot afford a useful reply is not made.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.contracts import Usage
    from shipyard.policy.config import Budgets

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


REPLY_TOKENS_ASSUMED = 16_384
"""The longest reply assumed when nothing else bounds it (most models' output limit is at or
under it). ``max_tokens`` is sent only when the budget allows fewer: a larger value than a
server's own limit is refused by some servers."""

MIN_REPLY_TOKENS = 64
"""A call whose budget leaves room for fewer reply tokens than this is not made: such a
reply cannot hold a tool call or a plan."""


@dataclass(frozen=True)
class Allowance:
    """What a run may still spend on model calls: its budgets minus its usage so far."""

    cost_usd: float
    """Dollars left (may be 0)."""
    tokens: int
    """Tokens (input + output) left."""
    cost_cap: float
    token_cap: int

    @classmethod
    def of(cls, usage: Usage, budgets: Budgets) -> Allowance:
        """The allowance ``budgets`` leave after ``usage``."""
        spent = usage.input_tokens + usage.output_tokens
        return cls(
            cost_usd=max(budgets.cost_usd - usage.cost_usd, 0.0),
            tokens=max(budgets.tokens - spent, 0),
            cost_cap=budgets.cost_usd,
            token_cap=budgets.tokens,
        )

    def after(self, usage: Usage) -> Allowance:
        """What is left once ``usage`` is spent too."""
        spent = usage.input_tokens + usage.output_tokens
        return replace(
            self,
            cost_usd=max(self.cost_usd - usage.cost_usd, 0.0),
            tokens=max(self.tokens - spent, 0),
        )


def estimate_tokens(text: str) -> int:
    """Tokens ``text`` is likely to be (about four characters a token, rounded up): no
    tokenizer ships with its data offline, and a request is checked, not billed, by it."""
    return -(-len(text) // 4)


def reply_tokens(price: Price | None, prompt_tokens: int, allowance: Allowance) -> int:
    """The most reply tokens a call with ``prompt_tokens`` can afford (≤ 0: not even the
    prompt), by the token budget and — when the price is known — the cost budget."""
    most = allowance.tokens - prompt_tokens
    if price is not None and price[1] > 0:
        dollars = allowance.cost_usd - prompt_tokens * price[0] / 1_000_000
        most = min(most, math.floor(dollars * 1_000_000 / price[1]))
    return most


def unaffordable(price: Price | None, prompt_tokens: int, allowance: Allowance, role: str) -> str:
    """The sentence for a call that cannot afford ``MIN_REPLY_TOKENS`` of reply."""
    if price is not None:
        worst = cost_usd(price, prompt_tokens, MIN_REPLY_TOKENS)
        if worst > allowance.cost_usd:
            return (
                f"cost budget spent: the next {role} call (about {prompt_tokens} prompt "
                f"tokens) would cost at least ${worst:.6f}, but ${allowance.cost_usd:.6f} of "
                f"${allowance.cost_cap:g} is left; the call was not made"
            )
    return (
        f"token budget spent: the next {role} call needs about {prompt_tokens} prompt tokens "
        f"and a reply, but {allowance.tokens} of {allowance.token_cap} tokens are left; the "
        "call was not made"
    )
