"""Receiving Clipia webhooks on the HTTP transports (``POST /webhooks/clipia``).

A delivery is accepted only if its signature verifies with the official SDK's
fail-closed ``verify_signature`` (HMAC-SHA256 over ``{t}.{raw_body}``, 300 s
window). A delivery id seen before is a replay and is rejected. An accepted
delivery updates the tracked request at once (idempotent by request id), which
wakes every waiter without another poll.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from typing import Any

from clipia import verify_signature
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from clipia_mcp.journal import RequestRecord
from clipia_mcp.models import GenerationError
from clipia_mcp.tracker import Tracker

log = logging.getLogger(__name__)
WEBHOOK_PATH = "/webhooks/clipia"
MAX_BODY = 1024 * 1024
TOLERANCE_S = 300
REPLAY_MEMORY = 10_000


class WebhookReceiver:
    """Verifies deliveries and feeds them to the tracker."""

    def __init__(self, secret: str, tracker: Tracker) -> None:
        self._secret = secret
        self.tracker = tracker
        self._seen: OrderedDict[str, float] = OrderedDict()
        self.accepted = 0
        self.rejected = 0

    def __repr__(self) -> str:
        return f"WebhookReceiver(accepted={self.accepted}, rejected={self.rejected})"

    async def handle(self, request: Request) -> Response:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return self._reject(413, "body too large")
        headers = {k: v for k, v in request.headers.items()}
        if not verify_signature(self._secret, headers, raw, tolerance_seconds=TOLERANCE_S):
            return self._reject(401, "invalid signature")
        delivery = headers.get("x-clipia-webhook-id", "")
        if not delivery:
            return self._reject(400, "missing X-Clipia-Webhook-Id")
        if delivery in self._seen:
            return self._reject(409, "replayed delivery")
        try:
            payload = json.loads(raw)
            request_id = str(payload["request_id"])
        except (ValueError, KeyError, TypeError):
            return self._reject(400, "malformed payload")
        self._remember(delivery)
        self.accepted += 1
        applied = await self.apply(request_id, payload)
        return JSONResponse({"ok": True, "tracked": applied})

    def _reject(self, status: int, reason: str) -> Response:
        self.rejected += 1
        log.info("webhook rejected: %s", reason)
        return JSONResponse({"ok": False, "error": reason}, status_code=status)

    def _remember(self, delivery: str) -> None:
        self._seen[delivery] = time.time()
        while len(self._seen) > REPLAY_MEMORY:
            self._seen.popitem(last=False)

    async def apply(self, request_id: str, payload: dict[str, Any]) -> bool:
        """Store the terminal state for every tracked copy of ``request_id``; False if none is tracked."""
        items = self.tracker.find(request_id)
        for item in items:
            record = _terminal_record(item.record, payload)
            if record is not None:
                await self.tracker.apply_terminal(item, record)
        return bool(items)


def _terminal_record(current: RequestRecord, payload: dict[str, Any]) -> RequestRecord | None:
    status = payload.get("status")
    now = time.time()
    if status == "OK":
        raw_body = payload.get("payload")
        body: dict[str, Any] = raw_body if isinstance(raw_body, dict) else {}
        cost = body.get("cost")
        return current.model_copy(update={
            "status": "COMPLETED", "output": body.get("output"), "progress": 100, "queue_position": None,
            "cost": cost if isinstance(cost, int) else current.cost, "completed_at": now,
            "model": body.get("model") or current.model,
        })
    if status == "ERROR":
        raw_err = payload.get("error")
        err: dict[str, Any] = raw_err if isinstance(raw_err, dict) else {}
        code = str(err.get("code", "GENERATION_FAILED"))
        final = "CANCELED" if code == "CANCELED" else "FAILED"
        return current.model_copy(update={
            "status": final, "cost": 0, "queue_position": None, "completed_at": now,
            "error": GenerationError(code=code, message=str(err.get("message", ""))) if final == "FAILED" else None,
        })
    return None
