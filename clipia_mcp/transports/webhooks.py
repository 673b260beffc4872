"""Receiving Clipia webhooks on the HTTP transports (``POST /webhooks/clipia``).

A delivery is accepted only if its signature verifies: HMAC-SHA256 over ``{t}.{raw_body}``, 300 s window,
fail-closed, exactly as the official SDK's ``clipia.verify_signature`` decides (``verified_mac`` is that check
without the SDK's per-call HMAC object and header copy, which cost a third of a delivery's handling; a
property test holds the two to the same answer on any header and body). The body is read with a streamed
size limit. Applying a delivery is idempotent (a terminal state never changes), so a verified redelivery —
Clipia's own retry, or a replay of the same signed content — answers 200 and changes nothing; a repeat of
the same signed content (its MAC) is recognised without any work.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections import OrderedDict

import pydantic_core
from clipia.webhooks import SIGNATURE_HEADER
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from clipia_mcp.core import metrics
from clipia_mcp.engine.service import QueueService

log = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024
TOLERANCE_S = 300
REPLAY_MEMORY = 10_000
_TRACKED, _UNTRACKED = b'{"ok":true,"tracked":true}', b'{"ok":true,"tracked":false}'


def signature_fields(signature: str) -> dict[str, str]:
    """A signature header's comma-separated ``key=value`` fields as the SDK's check reads them (spaces around
    each part ignored, fields without ``=`` skipped, the last of a key wins)."""
    fields: dict[str, str] = {}
    for chunk in signature.split(","):
        key, eq, value = chunk.strip().partition("=")
        if eq:
            fields[key.strip()] = value.strip()
    return fields


_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))


class Hmac:
    """HMAC-SHA256 under one key (RFC 2104), its two padded-key hash states computed once: per message two
    SHA-256 copies, where ``hmac.digest`` sets OpenSSL's HMAC up again each call (2.5x the cost)."""

    def __init__(self, key: bytes) -> None:
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def __repr__(self) -> str:
        return "Hmac(sha256)"

    def hexdigest(self, message: bytes) -> str:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


def verified_mac(mac: Hmac | None, signature: str, raw: bytes, now: float) -> tuple[str, int] | None:
    """(the hex HMAC of a delivery's signed content, its signed time) when ``signature`` verifies it, else None.

    True where ``clipia.verify_signature(secret, {header: signature}, raw, tolerance_seconds=TOLERANCE_S,
    now=now)`` is, for ``mac = Hmac(secret.encode())`` (None for an empty secret): both ``t`` and ``v1``
    present, ``t`` an integer within the window, the body UTF-8, ``v1`` the HMAC of ``{t}.{body}`` (compared
    in constant time). Never raises.
    The MAC identifies the signed ``(t, body)`` however the header around them is written: the replay key.
    """
    if mac is None:
        return None
    try:
        fields = signature_fields(signature)
        stamp, provided = fields.get("t"), fields.get("v1")
        if not stamp or not provided:
            return None
        signed_at = int(stamp)
        if abs(now - signed_at) > TOLERANCE_S:
            return None
        raw.decode("utf-8")  # a body that is not UTF-8 never verifies (the SDK checks it as text)
        expected = mac.hexdigest(stamp.encode("utf-8") + b"." + raw)
        return (expected, signed_at) if hmac.compare_digest(provided, expected) else None
    except Exception:  # noqa: BLE001 - fail-closed, as the SDK's check: malformed input is a bad signature
        return None


class _FixedAnswer(Response):
    """A 200 JSON answer whose body and headers were made once (Starlette's ``Response`` works them out per
    call; a burst of deliveries makes a thousand)."""

    def __init__(self, body: bytes, raw_headers: list[tuple[bytes, bytes]]) -> None:
        self.status_code = 200
        self.background: BackgroundTask | None = None
        self.body = body
        self.raw_headers = raw_headers.copy()


#: The two 200 answers' headers, made once.
_ANSWER_HEADERS = {body: Response(body, media_type="application/json").raw_headers for body in (_TRACKED, _UNTRACKED)}


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
        self._mac = Hmac(secret.encode("utf-8")) if secret else None
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
        now = time.time()
        # Only the signature header is signed, so it is all the check reads.
        verified = verified_mac(self._mac, signature, raw, now)
        if verified is None:
            return self._reject(401, "invalid signature")
        digest, signed_at = verified
        # The signed content is (t, body), however the header around them is written (spaces, field order,
        # extra fields): a repeat of it is a duplicate.
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
        metrics.observe("clipia_mcp_webhook_lag_seconds", max(0.0, now - signed_at))
        applied = await self.service.apply_delivery(request_id, payload)
        body = _TRACKED if applied else _UNTRACKED
        return _FixedAnswer(body, _ANSWER_HEADERS[body])

    def _reject(self, status: int, reason: str) -> Response:
        self.rejected += 1
        log.info("webhook rejected: %s", reason)
        return JSONResponse({"ok": False, "error": reason}, status_code=status)

    def _remember(self, digest: str) -> None:
        self._seen[digest] = None
        while len(self._seen) > REPLAY_MEMORY:
            self._seen.popitem(last=False)
