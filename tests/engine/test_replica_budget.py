"""Replicas split one key's poll budget by their live count (the count comes from store heartbeats)."""

from __future__ import annotations

from clipia_mcp.engine.budget import HEADROOM, PollBudget


def test_budget_is_split_between_live_replicas() -> None:
    budget = PollBudget(600)
    assert budget.rate == 10.0
    budget.share = 3
    assert budget.rate == 10.0 / 3


def test_the_account_limit_is_shared_not_multiplied() -> None:
    limit = 120
    budget = PollBudget(6000, account_limit=lambda: limit)
    one = budget.rate
    assert one == HEADROOM * limit / 60
    budget.share = 4
    assert budget.rate * 4 == one  # four replicas together poll no more than one process
