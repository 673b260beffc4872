"""Money in view: the spend summary behind the ``spend_summary`` tool and the ``clipia://spend`` resource."""

from __future__ import annotations

import time
from collections import defaultdict

from clipia_mcp.core.timeutil import iso_seconds
from clipia_mcp.engine.caller import Caller
from clipia_mcp.mcp.runtime import Runtime
from clipia_mcp.mcp.views import SpendDay, SpendModel, SpendView

SPEND_URI = "clipia://spend"
DEFAULT_DAYS = 30


async def spend_view(rt: Runtime, caller: Caller, since: float | None = None, until: float | None = None
                     ) -> SpendView:
    """Totals per UTC day and per model from the journal in [since, until) (default: the last 30 days)."""
    end = until if until is not None else time.time() + 1
    start = since if since is not None else max(0.0, end - DEFAULT_DAYS * 86_400)
    rows, account = await rt.service.spend_summary(caller, start, end)
    days: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    models: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in rows:
        days[r.day][0] += r.requests
        days[r.day][1] += r.credits
        m = models[r.model]
        m[0] += r.requests
        m[1] += r.failed
        m[2] += r.credits
    return SpendView(
        since=iso_seconds(start) or "", until=iso_seconds(end) or "",
        requests=sum(r.requests for r in rows), credits=sum(r.credits for r in rows),
        reserved=sum(r.reserved for r in rows),
        by_day=[SpendDay(day=d, requests=v[0], credits=v[1]) for d, v in sorted(days.items())],
        by_model=[SpendModel(model=k, requests=v[0], failed=v[1], credits=v[2])
                  for k, v in sorted(models.items(), key=lambda kv: (-kv[1][2], kv[0]))],
        balance=account.credits if account else None,
        usage_30d_requests=account.requests_30d if account else None,
        usage_30d_credits_spent=account.credits_spent_30d if account else None,
        test_key=caller.sandbox or None,
    )
