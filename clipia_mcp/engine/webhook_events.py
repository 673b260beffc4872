"""What a verified Clipia webhook delivery means for a request (the payload → a terminal record)."""

from __future__ import annotations

import time
from typing import Any

from clipia_mcp.core.model import replaced
from clipia_mcp.core.records import GenerationError, RequestRecord
from clipia_mcp.core.upstream import count_or_none


def record_from_delivery(current: RequestRecord, payload: dict[str, Any]) -> RequestRecord | None:
    """The terminal record a delivery describes, or None when it describes nothing we can use.

    ``status: OK`` → COMPLETED (output as delivered: None when the delivery carried none, so one
    result fetch completes it); ``status: ERROR`` → FAILED, or CANCELED for code ``CANCELED``.
    """
    status = payload.get("status")
    now = time.time()
    if status == "OK":
        raw_body = payload.get("payload")
        body: dict[str, Any] = raw_body if isinstance(raw_body, dict) else {}
        cost = count_or_none(body.get("cost"))
        output = body.get("output")
        return replaced(
            current,
            status="COMPLETED", output=output if isinstance(output, dict) else None, progress=100,
            queue_position=None, cost=cost if cost is not None else current.cost, completed_at=now,
            updated_at=now,
            model=body.get("model") if isinstance(body.get("model"), str) else current.model,
        )
    if status == "ERROR":
        raw_err = payload.get("error")
        err: dict[str, Any] = raw_err if isinstance(raw_err, dict) else {}
        code = str(err.get("code", "GENERATION_FAILED"))
        final = "CANCELED" if code == "CANCELED" else "FAILED"
        return replaced(
            current,
            status=final, cost=0, queue_position=None, completed_at=now, updated_at=now,
            error=GenerationError(code=code, message=str(err.get("message", ""))) if final == "FAILED" else None,
        )
    return None
