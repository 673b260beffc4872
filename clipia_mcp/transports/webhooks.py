"""Receiving Clipia webhooks on the HTTP transports (``POST /webhooks/clipia``).

A delivery is accepted only if its signature verifies with the official SDK's fail-closed
``verify_signature`` (HMAC-SHA256 over ``{t}.{raw_body}``, 300 s window). The body is read
with a streamed size limit. Applying a delivery is idempotent (a terminal state never changes),
so a verified redelivery — Clipia's own retry, or a replay of the same signed content — answers
200 and changes nothing; a repeat of the same signed content is recognised without any work.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict

import pydantic_core
from clipia import verify_signature
from clipia.webhooks import SIGNATURE_HEADER
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from clipia_mcp.core import metrics
from clipia_mcp.engine.service import QueueService

log = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024
TOLERANCE_S = 300
REPLAY_MEMORY = 10_000
_TRACKED, _UNTRACKED = b'{"ok":true,"tracked":true}', b'{"ok":true,"tracked":false}'


def signed_timestamp(signature: str) -> str:
    """The ``t=`` of a signature header as the SDK's check reads it (comma-separated ``key=value`` fields,
    spaces ignored, the last ``t`` wins): the timestamp its HMAC covered."""
    stamp = ""
    for field in signature.split(","):
        key, eq, value = field.strip().partition("=")
        if eq and key.strip() == "t":
            stamp = value.strip()
    return stamp


_SIGNATURE = SIGNATURE_HEADER.lower().encode("latin-1")


def _headers(request: Request) -> tuple[str | None, str]:
    """(Content-Length or None, the signature header or ""), the first of each, in one pass over the raw
    headers (ASGI names are lower-case; Starlette's ``Headers`` costs a scan per lookup)."""
    declared: bytes | None = None
    signature: bytes | None = None
    for name, value in request.scope["headers"]:
        if name == b"content-length" and declared is None:
            declared = value
        elif name == _SIGNATURE and signature is None:
            signature = value
    return (None if declared is None else declared.decode("latin-1"),
            "" if signature is None else signature.decode("latin-1"))


class WebhookReceiver:
    """Verifies deliveries and hands them to the engine."""

    def __init__(self, secret: str, service: QueueService) -> None:
        self._secret = secret
        self.service = service
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.accepted = 0
        self.duplicates = 0
        self.rejected = 0

    def __repr__(self) -> str:
        return f"WebhookReceiver(accepted={self.accepted}, duplicates={self.duplicates}, rejected={self.rejected})"

    async def _body(self, request: Request, declared: str | None) -> bytes | None:
        """The raw body, or None past ``MAX_BODY`` or on a disconnect (read from ASGI directly: this is the
        fan-out's critical path, and Starlette's stream generator costs more than the rest of the read)."""
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await request.receive()
            if message["type"] != "http.request":
                return None  # http.disconnect
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_BODY:
                return None
            if not message.get("more_body", False):
                return chunk if len(chunks) == 1 else b"".join(chunks)

    async def handle(self, request: Request) -> Response:
        """Verify, deduplicate and apply one delivery."""
        declared, signature = _headers(request)
        raw = await self._body(request, declared)
        if raw is None:
            return self._reject(413, "body too large")
        # Only the signature header is signed, so it is all the SDK's check is given.
        if not verify_signature(self._secret, {SIGNATURE_HEADER: signature}, raw, tolerance_seconds=TOLERANCE_S):
            return self._reject(401, "invalid signature")
        # The signed content is (t, body), however the header around them is written (spaces, field order,
        # extra fields): a repeat of it is a duplicate.
        stamp = signed_timestamp(signature)
        digest = hashlib.sha256(stamp.encode() + b"." + raw).hexdigest()
        if digest in self._seen:
            self.duplicates += 1
            return JSONResponse({"ok": True, "duplicate": True})
        try:
            payload = pydantic_core.from_json(raw)
            request_id = str(payload["request_id"])
        except (ValueError, KeyError, TypeError):
            return self._reject(400, "malformed payload")
        if not isinstance(payload, dict):
            return self._reject(400, "malformed payload")
        self._remember(digest)
        self.accepted += 1
        if stamp.isdigit():
            metrics.observe("clipia_mcp_webhook_lag_seconds", max(0.0, time.time() - int(stamp)))
        applied = await self.service.apply_delivery(request_id, payload)
        return Response(_TRACKED if applied else _UNTRACKED, media_type="application/json")

    def _reject(self, status: int, reason: str) -> Response:
        self.rejected += 1
        log.info("webhook rejected: %s", reason)
        return JSONResponse({"ok": False, "error": reason}, status_code=status)

    def _remember(self, digest: str) -> None:
        self._seen[digest] = None
        while len(self._seen) > REPLAY_MEMORY:
            self._seen.popitem(last=False)
