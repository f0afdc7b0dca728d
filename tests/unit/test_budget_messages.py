"""Budget sentences keep the figures a person needs: fractions of a second and of a cent are
not rounded away, so the spent amount never reads as less than the limit."""

from __future__ import annotations

import pytest

from shipyard.contracts import Usage
from shipyard.policy.config import Budgets, budget_exceeded


@pytest.mark.parametrize(
    ("usage", "budgets", "sentence"),
    [
        (Usage(wall_s=0.62), Budgets(wall_s=0.5), "wall-time budget spent: 0.62 s of 0.5 s"),
        (Usage(wall_s=3601.4), Budgets(wall_s=3600), "wall-time budget spent: 3601 s of 3600 s"),
        (Usage(cost_usd=0.25), Budgets(cost_usd=0.01), "cost budget spent: $0.25 of $0.01"),
        (Usage(cost_usd=0.0042), Budgets(cost_usd=0.004), "cost budget spent: $0.0042 of $0.004"),
        (Usage(cost_usd=1.25), Budgets(cost_usd=1.0), "cost budget spent: $1.25 of $1.00"),
    ],
)
def test_budget_sentence_shows_both_figures(usage: Usage, budgets: Budgets, sentence: str) -> None:
    assert budget_exceeded(usage, budgets) == sentence
