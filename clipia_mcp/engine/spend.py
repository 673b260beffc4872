"""Spend limits: a maximum cost per call, and per-tenant daily / monthly caps, checked before the paid call.

The operator's key pays for every tenant in token and OAuth modes, so the operator can cap what one
call and one tenant may spend. The check uses the API's estimate of the submit (one extra, free call)
and the credits the tenant's submits reserved in the journal (:meth:`Store.spent_since`). The check
and the intent that records the estimate happen under one per-tenant lock, so concurrent submits of
one tenant cannot both slip under a cap. Days and months are UTC calendar days and months.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import anyio

from clipia_mcp.core.errors import SpendLimitExceeded
from clipia_mcp.core.settings import Settings
from clipia_mcp.engine.caller import Caller
from clipia_mcp.store.base import Store


@dataclass(frozen=True)
class Budget:
    """What a tenant may still spend (None: no such limit)."""

    max_cost_per_call: int | None
    remaining_today: int | None
    remaining_this_month: int | None


def _periods(now: float) -> tuple[float, float, datetime, datetime]:
    t = datetime.fromtimestamp(now, timezone.utc)
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    next_month = (month + timedelta(days=32)).replace(day=1)
    return day.timestamp(), month.timestamp(), day + timedelta(days=1), next_month


class SpendLimits:
    """The operator's spend limits, applied per submit."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.per_call = settings.max_cost_per_call
        self.daily = settings.tenant_daily_credits
        self.monthly = settings.tenant_monthly_credits
        self.store = store
        self._locks: dict[str, anyio.Lock] = {}

    def _caps(self, caller: Caller) -> bool:
        return caller.shared_key and (self.daily is not None or self.monthly is not None)

    def applies(self, caller: Caller, model: str) -> bool:
        """Whether a submit of ``model`` by ``caller`` is limited (billed in Clipia credits, a limit is set)."""
        if caller.sandbox or not caller.provider_for(model).capabilities.credits:
            return False
        return self.per_call is not None or self._caps(caller)

    async def budget(self, caller: Caller, now: float) -> Budget:
        """The caller's remaining allowances (tenant caps only for tenants on a shared key)."""
        if caller.sandbox:
            return Budget(None, None, None)  # never charged: no limits apply
        if not self._caps(caller):
            return Budget(self.per_call, None, None)
        day, month, _, _ = _periods(now)
        today = max(0, self.daily - await self.store.spent_since(caller.owner, day)) \
            if self.daily is not None else None
        this_month = max(0, self.monthly - await self.store.spent_since(caller.owner, month)) \
            if self.monthly is not None else None
        return Budget(self.per_call, today, this_month)

    @contextlib.asynccontextmanager
    async def reserve(self, caller: Caller, model: str, data: dict[str, Any], now: float) -> AsyncIterator[int | None]:
        """Check the limits for this submit; yields its estimate (record it in the intent inside the block).

        Raises :class:`SpendLimitExceeded` (nothing submitted) when the estimate is over a limit.
        """
        if not self.applies(caller, model):
            yield None
            return
        credits = (await caller.clipia.estimate(model, data)).credits
        if self.per_call is not None and credits > self.per_call:
            raise SpendLimitExceeded(
                f"This generation is estimated at {credits} credits; the operator allows at most {self.per_call} "
                "per call. Nothing was submitted: choose a cheaper model or smaller parameters (estimate_cost).",
                remaining=self.per_call, limit="per_call")
        if not self._caps(caller):
            yield credits
            return
        lock = self._locks.setdefault(caller.owner, anyio.Lock())
        try:
            async with lock:
                budget = await self.budget(caller, now)
                _, _, tomorrow, next_month = _periods(now)
                for remaining, name, resets in ((budget.remaining_today, "daily", tomorrow),
                                                (budget.remaining_this_month, "monthly", next_month)):
                    if remaining is not None and credits > remaining:
                        raise SpendLimitExceeded(
                            f"This generation is estimated at {credits} credits but only {remaining} remain of "
                            f"your {name} allowance (it resets {resets:%Y-%m-%d %H:%M} UTC). Nothing was submitted.",
                            remaining=remaining, limit=name)
                yield credits
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._locks.pop(caller.owner, None)
