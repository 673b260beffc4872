"""Signed webhook delivery with retries (API contract, shared/reference/clipia-api.md §11, §17.9)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from typing import Any

import anyio
import httpx

from clipia_mcp.sandbox.state import Emulator

log = logging.getLogger(__name__)


def sign(secret: str, timestamp: int, raw_body: bytes) -> str:
    """``v1`` = lower-hex HMAC-SHA256 over ``"{t}.{raw_body}"``."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + raw_body, hashlib.sha256).hexdigest()


def payload_for(emulator: Emulator, request_id: str, status: str) -> dict[str, Any]:
    req = emulator.requests[request_id]
    if status == "COMPLETED":
        return {
            "request_id": request_id,
            "status": "OK",
            "payload": {"model": req.model["slug"], "output": emulator.output_of(req), "cost": req.cost},
        }
    code = "CANCELED" if status == "CANCELED" else "GENERATION_FAILED"
    return {"request_id": request_id, "status": "ERROR",
            "error": {"code": code, "message": f"The generation ended {status}."}}


class WebhookSender:
    """Drains the emulator's outbox; one delivery id per event, kept across retries."""

    def __init__(self, emulator: Emulator, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.emulator = emulator
        self._http = httpx.AsyncClient(transport=transport, timeout=emulator.config.webhook_timeout)
        #: Deliberate sender faults for tests: "duplicate", "bad_signature", "stale", "future", "missing_t".
        self.faults: set[str] = set()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def run(self, poll: float = 0.02) -> None:
        """Forever: settle due requests and deliver what is queued (each delivery in its own task)."""
        async with anyio.create_task_group() as tg:
            while True:
                self.emulator.settle_all()
                while self.emulator.webhook_outbox:
                    event = self.emulator.webhook_outbox.popleft()
                    tg.start_soon(self.deliver, event)
                await anyio.sleep(poll)

    async def deliver(self, event: dict[str, Any]) -> None:
        em = self.emulator
        req = em.requests[event["request"]]
        if not req.webhook_url:
            return
        secret = em.accounts[req.account_id].webhook_secret
        raw = json.dumps(payload_for(em, req.request_id, event["status"]), separators=(",", ":")).encode()
        delivery_id = str(uuid.uuid4())
        copies = 2 if "duplicate" in self.faults else 1
        for _ in range(copies):
            await self._attempts(req.webhook_url, delivery_id, secret, raw, req.request_id)

    async def _attempts(self, url: str, delivery_id: str, secret: str, raw: bytes, request_id: str) -> None:
        em = self.emulator
        for attempt in range(em.config.webhook_max_retries + 1):
            t = int(em.clock.wall())
            if "stale" in self.faults:
                t -= 3600
            if "future" in self.faults:
                t += 3600
            sig = sign(secret, t, raw)
            if "bad_signature" in self.faults:
                sig = "0" * 64
            header = f"v1={sig}" if "missing_t" in self.faults else f"t={t},v1={sig}"
            headers = {
                "Content-Type": "application/json",
                "X-Clipia-Webhook-Id": delivery_id,
                "X-Clipia-Timestamp": str(t),
                "X-Clipia-Signature": header,
            }
            entry: dict[str, Any] = {"delivery_id": delivery_id, "request_id": request_id, "attempt": attempt + 1,
                                     "url": url}
            try:
                resp = await self._http.post(url, content=raw, headers=headers)
                entry["status_code"] = resp.status_code
                ok = 200 <= resp.status_code < 300
            except httpx.HTTPError as exc:
                entry["error"] = type(exc).__name__
                ok = False
            entry["delivered"] = ok
            em.webhook_log.append(entry)
            if ok:
                return
            await anyio.sleep(em.config.webhook_base_delay * (2**attempt))
        log.info("webhook %s for %s gave up", delivery_id, request_id)
