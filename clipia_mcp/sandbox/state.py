"""The emulator's state: keys, accounts, the scripted queue, idempotency and limits.

Time comes from an injectable :class:`Clock`; every scripted duration is
multiplied by ``EmulatorConfig.time_scale`` so that a "60 s render" can take
0.3 s in a test. Request status is derived from the clock on every read, and a
terminal transition settles money and queues the webhook exactly once.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from clipia_mcp.sandbox import catalogue
from clipia_mcp.sandbox.faults import FaultBook

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELED"})

# Scripted lifecycle per output type, in emulated seconds: (queue, progress, initial queue position)
PROFILES: dict[str, tuple[float, float, int]] = {
    "image": (1.0, 2.0, 2),
    "video": (4.0, 40.0, 3),
    "audio": (1.0, 4.0, 1),
}


class Clock:
    """Monotonic and wall time, shiftable forward for tests (``/_emulator/clock``).

    ``frozen=True`` (tests): time stands still until :meth:`advance` moves it, so a test steps
    the scripted queue explicitly instead of sleeping through it.
    """

    def __init__(self, *, frozen: bool = False) -> None:
        self.offset = 0.0
        self.frozen = frozen
        self._mono0 = time.monotonic()
        self._wall0 = time.time()

    def now(self) -> float:
        return (self._mono0 if self.frozen else time.monotonic()) + self.offset

    def wall(self) -> float:
        return (self._wall0 if self.frozen else time.time()) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class EmulatorConfig:
    """Knobs of the emulator; defaults follow the API contract's checklist (shared/reference/clipia-api.md §17)."""

    public_base_url: str = "http://127.0.0.1"
    time_scale: float = 1.0
    rpm: int = 120
    concurrency: int = 10
    concurrency_retry_after: int | None = None
    input_invalid_status: int = 400
    unknown_model_code: str = "model_not_found"
    idempotency_ttl: float = 24 * 3600
    submit_delay: float = 0.0
    webhook_base_delay: float = 1.0
    webhook_max_retries: int = 6
    webhook_timeout: float = 10.0
    webhook_on_cancel: bool = True
    webhook_allow_loopback: bool = True
    seed: int = 0


@dataclass
class Account:
    account_id: str
    balance: int = 1000
    subscription_active: bool = True
    webhook_secret: str = field(default_factory=lambda: "whsec_" + secrets.token_hex(16))


@dataclass
class Key:
    value: str
    account_id: str
    scopes: tuple[str, ...] = ("generate", "read")
    revoked: bool = False

    @property
    def is_test(self) -> bool:
        return self.value.startswith("clipia_test_")


@dataclass
class Usage:
    requests: int = 0
    credits_spent: int = 0


@dataclass
class Request:
    request_id: str
    key: str
    account_id: str
    model: dict[str, Any]
    input: dict[str, Any]
    webhook_url: str | None
    cost: int
    created: float  # clock.now()
    created_wall: float
    queue_s: float
    progress_s: float
    queue_position: int
    outcome: str = "COMPLETED"  # or FAILED, CANCELED, STUCK
    cancel_at: float | None = None  # fraction of the progress phase
    sandbox: bool = False
    forced: str | None = None  # terminal status forced out of band
    settled: str | None = None
    completed_wall: float | None = None
    stale_result_once: bool = False


class EmulatorError(Exception):
    """An API error the app turns into the envelope."""

    TYPES = {
        400: "invalid_request_error",
        401: "authentication_error",
        402: "billing_error",
        403: "permission_error",
        404: "invalid_request_error",
        409: "invalid_request_error",
        422: "invalid_request_error",
        429: "rate_limit_error",
    }

    def __init__(self, status: int, code: str, message: str, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after

    @property
    def type(self) -> str:
        return self.TYPES.get(self.status, "api_error")


def _private(host: str) -> bool:
    """A literal loopback, private, link-local or reserved address (the API refuses those as webhook targets)."""
    import ipaddress

    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host.lower() in ("localhost", "localhost.localdomain")
    return not ip.is_global


class Emulator:
    """All emulated state; the ASGI app in :mod:`clipia_mcp.sandbox.app` is a thin layer over it."""

    def __init__(self, config: EmulatorConfig | None = None, *, clock: Clock | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.clock = clock or Clock()
        self.faults = FaultBook(self.config.seed)
        self.accounts: dict[str, Account] = {}
        self.keys: dict[str, Key] = {}
        self.requests: dict[str, Request] = {}
        self.unsettled: set[str] = set()  # ids not yet terminal: keeps settle_all and limits O(live)
        self.usage: dict[str, Usage] = {}
        self.idempotency: dict[tuple[str, str], dict[str, Any]] = {}
        self.windows: dict[str, deque[float]] = {}
        self.webhook_outbox: deque[dict[str, Any]] = deque()
        self.webhook_log: list[dict[str, Any]] = []
        #: Calls served per route name (counts every authenticated call).
        self.calls: dict[str, int] = {}
        self.charges: list[tuple[str, int]] = []  # (request_id, credits) for every reserve
        #: Called after every change worth keeping (submit, settle, idempotency); see sandbox/place.py.
        self.on_change: Callable[[], None] | None = None

    def changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # ------------------------------------------------------------------ keys and accounts

    def add_account(self, account_id: str | None = None, **fields: Any) -> Account:
        acc = Account(account_id=account_id or f"acc_{secrets.token_hex(4)}", **fields)
        self.accounts[acc.account_id] = acc
        return acc

    def add_key(
        self,
        value: str | None = None,
        *,
        account: Account | None = None,
        test: bool = False,
        scopes: tuple[str, ...] = ("generate", "read"),
    ) -> Key:
        acc = account or self.add_account()
        if value is None:
            value = ("clipia_test_" if test else "clipia_live_") + secrets.token_urlsafe(16).replace("-", "x")
        key = Key(value=value, account_id=acc.account_id, scopes=scopes)
        self.keys[value] = key
        return key

    def authenticate(self, headers: dict[str, str]) -> Key:
        raw = None
        auth = headers.get("authorization")
        if auth:
            scheme, _, token = auth.strip().partition(" ")
            if scheme.lower() in ("bearer", "key") and token.strip():
                raw = token.strip()
        elif headers.get("x-api-key"):
            raw = headers["x-api-key"].strip()
        key = self.keys.get(raw or "")
        if key is None or key.revoked:
            raise EmulatorError(401, "invalid_api_key", "Invalid or missing API key.")
        return key

    def account_of(self, key: Key) -> Account:
        return self.accounts[key.account_id]

    # ------------------------------------------------------------------ rate limits

    def check_rate(self, key: Key) -> dict[str, str]:
        """Count one call against the key's RPM window; raise 429 when over the limit."""
        now = self.clock.now()
        window = self.windows.setdefault(key.value, deque())
        while window and window[0] <= now - 60:
            window.popleft()
        limit = self.config.rpm
        if len(window) >= limit:
            reset = max(1, math.ceil(window[0] + 60 - now))
            raise EmulatorError(
                429, "rate_limit_exceeded", f"Rate limit of {limit} requests per minute exceeded.", str(reset)
            )
        window.append(now)
        return self.rate_headers(key)

    def rate_headers(self, key: Key) -> dict[str, str]:
        now = self.clock.now()
        window = self.windows.get(key.value, deque())
        remaining = max(0, self.config.rpm - len(window))
        reset = max(0, math.ceil(window[0] + 60 - now)) if window else 0
        return {
            "RateLimit-Limit": str(self.config.rpm),
            "RateLimit-Remaining": str(remaining),
            "RateLimit-Reset": str(reset),
            "RateLimit-Policy": f"{self.config.rpm};w=60",
        }

    # ------------------------------------------------------------------ catalogue

    def model(self, slug: str) -> dict[str, Any]:
        model = catalogue.BY_SLUG.get(slug)
        if model is None:
            raise EmulatorError(404, self.config.unknown_model_code, f"Model '{slug}' not found.")
        return model

    def check(self, model: dict[str, Any], data: Any) -> catalogue.Checked:
        if model.get("type") == "text":
            raise EmulatorError(400, "invalid_request", "Text models are served by /v1/chat/completions.")
        if not model.get("pricing", {}).get("available", True):
            raise EmulatorError(400, "invalid_request", f"Model '{model['slug']}' is not available.")
        if not isinstance(data, dict):
            raise EmulatorError(400, "invalid_request", "'input' must be a JSON object.")
        try:
            return catalogue.check_input(model, data)
        except catalogue.InputInvalid as exc:
            raise EmulatorError(self.config.input_invalid_status, "model_input_invalid", str(exc)) from None

    # ------------------------------------------------------------------ submit

    def fingerprint(self, slug: str, body: dict[str, Any]) -> str:
        canon = json.dumps([slug, body], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()

    def idempotency_begin(self, key: Key, idem: str | None, fp: str) -> dict[str, Any] | None:
        """Return a stored response to replay, or None to proceed (marking the key in progress)."""
        if idem is None:
            return None
        if not idem or len(idem) > 255:
            raise EmulatorError(400, "invalid_request", "Idempotency-Key must be 1-255 characters.")
        now = self.clock.now()
        entry = self.idempotency.get((key.value, idem))
        if entry and entry["expires"] <= now:
            entry = None
        if entry is None:
            self.idempotency[(key.value, idem)] = {"fp": fp, "expires": now + self.config.idempotency_ttl,
                                                   "response": None}
            return None
        if entry["fp"] != fp:
            raise EmulatorError(
                409, "idempotency_key_reuse", "This Idempotency-Key was already used with different parameters."
            )
        if entry["response"] is None:
            raise EmulatorError(409, "request_in_progress", "A request with this Idempotency-Key is in progress.")
        return dict(entry["response"])

    def idempotency_finish(self, key: Key, idem: str | None, response: dict[str, Any] | None) -> None:
        if idem is None:
            return
        if response is None:  # failed: free the key
            self.idempotency.pop((key.value, idem), None)
        else:
            self.idempotency[(key.value, idem)]["response"] = response
        self.changed()

    def submit(self, key: Key, slug: str, body: Any) -> dict[str, Any]:
        """Create a request (validation, billing, scripted timeline). Idempotency is handled by the caller."""
        if "generate" not in key.scopes:
            raise EmulatorError(403, "insufficient_scope", "This API key lacks the 'generate' scope.")
        if not isinstance(body, dict) or "input" not in body:
            raise EmulatorError(400, "invalid_request", "The body must be a JSON object with an 'input' object.")
        model = self.model(slug)
        checked = self.check(model, body.get("input"))
        webhook_url = body.get("webhook_url")
        if webhook_url is not None:
            self._check_webhook_url(webhook_url)
        acc = self.account_of(key)
        data: dict[str, Any] = body["input"]
        now, wall = self.clock.now(), self.clock.wall()
        queue_s, progress_s, position = PROFILES.get(str(model.get("type")), PROFILES["image"])
        prompt = str(data.get("prompt", ""))
        outcome, cancel_at = "COMPLETED", None
        if "[[fail]]" in prompt:
            outcome = "FAILED"
        elif "[[fail-early]]" in prompt:
            outcome, progress_s = "FAILED", 0.0
        elif "[[cancel]]" in prompt:
            outcome, cancel_at = "CANCELED", 0.5
        elif "[[stuck]]" in prompt:
            outcome = "STUCK"
        if "[[slow]]" in prompt:
            queue_s, progress_s = queue_s * 10, progress_s * 10
        if "[[instant]]" in prompt:
            queue_s, progress_s = 0.0, 0.0
        scale = self.config.time_scale
        req = Request(
            request_id=str(uuid.uuid4()),
            key=key.value,
            account_id=acc.account_id,
            model=model,
            input=data,
            webhook_url=webhook_url,
            cost=checked.cost,
            created=now,
            created_wall=wall,
            queue_s=queue_s * scale,
            progress_s=progress_s * scale,
            queue_position=position,
            outcome=outcome,
            cancel_at=cancel_at,
            sandbox=key.is_test,
        )
        if key.is_test:
            req.queue_s = req.progress_s = 0.0
            req.outcome = "COMPLETED"
        else:
            if not acc.subscription_active:
                raise EmulatorError(402, "subscription_required", "An active plan is required for API generation.")
            if acc.balance < checked.cost:
                raise EmulatorError(
                    402, "insufficient_credits", "Not enough credits for this generation. Please top up your balance."
                )
            live = sum(1 for rid in list(self.unsettled)
                       if self.requests[rid].key == key.value and self.status_of(self.requests[rid]) not in TERMINAL)
            if live >= self.config.concurrency:
                ra = self.config.concurrency_retry_after
                raise EmulatorError(
                    429, "concurrency_limit_exceeded",
                    f"Too many generations in flight (limit {self.config.concurrency}).",
                    str(ra) if ra is not None else None,
                )
            acc.balance -= checked.cost
            self.charges.append((req.request_id, checked.cost))
            self.usage.setdefault(key.value, Usage()).requests += 1
        self.requests[req.request_id] = req
        self.unsettled.add(req.request_id)
        status = self.status_of(req)
        self.changed()
        base = self.config.public_base_url
        return {
            "request_id": req.request_id,
            "status": status,
            "queue_position": 0 if key.is_test else (req.queue_position if status == "IN_QUEUE" else None),
            "status_url": f"{base}/v1/requests/{req.request_id}/status",
            "response_url": f"{base}/v1/requests/{req.request_id}",
            "cost": checked.cost,
            "warnings": checked.warnings,
        }

    def _check_webhook_url(self, url: Any) -> None:
        from urllib.parse import urlparse

        ok = isinstance(url, str) and len(url) <= 2048 and not any(ord(c) < 33 or ord(c) == 127 for c in url)
        try:
            parsed = urlparse(url) if ok else None
            if parsed is not None:
                parsed.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            parsed = None
        if parsed is not None and (parsed.username is not None or "@" in parsed.netloc):
            parsed = None  # no userinfo
        if parsed and parsed.scheme == "https" and parsed.hostname and not _private(parsed.hostname):
            return
        if (
            parsed
            and self.config.webhook_allow_loopback
            and parsed.scheme == "http"
            and parsed.hostname in ("127.0.0.1", "localhost")
        ):
            return
        raise EmulatorError(400, "webhook_url_invalid", "webhook_url must be a public https:// URL.")

    # ------------------------------------------------------------------ lifecycle

    def request_for(self, key: Key, request_id: str) -> Request:
        req = self.requests.get(request_id)
        if req is None or self.keys[req.key].account_id != key.account_id:
            raise EmulatorError(404, "not_found", "Request not found.")
        return req

    def _phase(self, req: Request) -> tuple[str, int | None, int | None]:
        """(status, queue_position, progress) at the current clock, before settlement."""
        if req.forced:
            return req.forced, None, None
        if req.sandbox:
            return "COMPLETED", None, 100
        elapsed = self.clock.now() - req.created
        if elapsed < req.queue_s:
            if req.outcome == "FAILED" and req.progress_s == 0.0 and elapsed >= req.queue_s / 2:
                return "FAILED", None, None
            left = 1 - elapsed / req.queue_s if req.queue_s else 0
            return "IN_QUEUE", max(0, math.ceil(req.queue_position * left) - 1), None
        if req.outcome == "FAILED" and req.progress_s == 0.0:
            return "FAILED", None, None
        done = (elapsed - req.queue_s) / req.progress_s if req.progress_s else 1.0
        if req.outcome == "STUCK":
            return "IN_PROGRESS", None, min(99, int(done * 100))
        if req.cancel_at is not None and done >= req.cancel_at:
            return "CANCELED", None, None
        if done < 1.0:
            return "IN_PROGRESS", None, int(done * 100)
        return req.outcome, None, 100

    def status_of(self, req: Request) -> str:
        status, _, _ = self._phase(req)
        if status in TERMINAL and req.settled is None:
            self._settle(req, status)
        return req.settled or status

    def _settle(self, req: Request, status: str) -> None:
        req.settled = status
        self.unsettled.discard(req.request_id)
        req.completed_wall = self.clock.wall()
        if not req.sandbox:
            acc = self.accounts[req.account_id]
            if status == "COMPLETED":
                self.usage.setdefault(req.key, Usage()).credits_spent += req.cost
            else:
                acc.balance += req.cost
        if req.webhook_url and (status != "CANCELED" or self.config.webhook_on_cancel):
            self.webhook_outbox.append({"request": req.request_id, "status": status})
        self.changed()

    def force(self, request_id: str, status: str) -> None:
        """Out-of-band transition (the web UI cancelling, or a test forcing an outcome)."""
        req = self.requests[request_id]
        if self.status_of(req) in TERMINAL:
            raise EmulatorError(409, "invalid_request", "Request is already terminal.")
        req.forced = status
        self.status_of(req)

    def settle_all(self) -> None:
        for rid in list(self.unsettled):
            self.status_of(self.requests[rid])

    def status_body(self, req: Request) -> dict[str, Any]:
        status = self.status_of(req)
        _, position, progress = self._phase(req)
        body: dict[str, Any] = {
            "request_id": req.request_id,
            "status": status,
            "queue_position": position if status == "IN_QUEUE" else None,
            "logs": [],
        }
        if status == "IN_PROGRESS":
            body["progress"] = progress  # logs stay [] as the status page's IN_PROGRESS example shows
        elif status == "COMPLETED":
            body["progress"] = 100
        return body

    def result_body(self, req: Request) -> tuple[int, dict[str, Any]]:
        status = self.status_of(req)
        if status not in TERMINAL or req.stale_result_once:
            req.stale_result_once = False
            return 202, {"request_id": req.request_id, "status": "IN_PROGRESS" if status in TERMINAL else status}
        body: dict[str, Any] = {
            "request_id": req.request_id,
            "status": status,
            "model": req.model["slug"],
            "output": self.output_of(req) if status == "COMPLETED" else None,
            "error": None,
            "cost": req.cost if status == "COMPLETED" else 0,
            "created_at": iso(req.created_wall),
            "completed_at": iso(req.completed_wall or self.clock.wall()),
        }
        if status == "FAILED":
            body["error"] = {"code": "GENERATION_FAILED", "message": "The generation failed. Credits were refunded."}
        return 200, body

    def output_of(self, req: Request) -> dict[str, Any]:
        media = f"{self.config.public_base_url}/_emulator/media"
        kind = req.model.get("type")
        seed = f"sample-{kind}" if req.sandbox else req.request_id
        if kind == "video":
            raw = req.input.get("duration")
            duration = float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else 5.0
            if req.sandbox:
                duration = 5.0  # the sandbox returns one fixed sample per type
            return {"video": {"url": f"{media}/{seed}/video.mp4", "original_url": f"{media}/{seed}/video.mp4",
                              "width": 1280, "height": 720, "duration": duration}}
        if kind == "audio":
            n = 2 if req.model["slug"] == "suno-music" else 1
            tracks = [{"url": f"{media}/{seed}-{i}/audio.wav", "format": "wav"} for i in range(n)]
            return {"audio": tracks[0], "audios": tracks}
        count = req.input.get("num_images", 1) if isinstance(req.input.get("num_images"), int) else 1
        images = [
            {"url": f"{media}/{seed}-{i}/preview.png", "original_url": f"{media}/{seed}-{i}/original.png",
             "width": 256, "height": 256}
            for i in range(max(1, min(4, count)))
        ]
        return {"images": images}

    # ------------------------------------------------------------------ account

    def account_body(self, key: Key) -> dict[str, Any]:
        acc = self.account_of(key)
        usage = self.usage.get(key.value, Usage())
        self.settle_all()
        return {
            "account_id": acc.account_id,
            "balance": {"credits": acc.balance},
            "usage_30d": {"requests": usage.requests, "credits_spent": usage.credits_spent},
        }

    def count(self, route: str) -> None:
        self.calls[route] = self.calls.get(route, 0) + 1
