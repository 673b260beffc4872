"""The emulator's ASGI app: the seven public routes, media, and a control plane under ``/_emulator``.

Routing works on the raw, still-encoded path, so ``/v1/models/weird%2Fslug`` reaches the
model handler as the slug ``weird/slug`` (API contract, shared/reference/clipia-api.md §17.1).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import anyio
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from clipia_mcp.sandbox import catalogue, media
from clipia_mcp.sandbox.faults import Fault
from clipia_mcp.sandbox.state import Emulator, EmulatorError, Key
from clipia_mcp.sandbox.webhooks import WebhookSender

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
MAX_BODY = 1024 * 1024


def envelope(status: int, code: str, message: str, type_: str = "invalid_request_error",
             headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": {"type": type_, "code": code, "message": message}}, status_code=status,
                        headers=headers)


class EmulatorApp:
    """ASGI callable over an :class:`Emulator`."""

    def __init__(self, emulator: Emulator, sender: WebhookSender | None = None) -> None:
        self.emulator = emulator
        self.sender = sender or WebhookSender(emulator)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the background settler and webhook sender for the app's lifetime."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.sender.run)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()
                await self.sender.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        raw = scope.get("raw_path") or scope["path"].encode()
        path = raw.decode("latin-1").split("?", 1)[0]
        parts = [unquote(p) for p in path.strip("/").split("/")] if path.strip("/") else []
        method = scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        body = await self._body(receive)
        if parts[:1] == ["_emulator"]:
            response = await self._control(method, parts[1:], body, scope)
            await response(scope, receive, send)
            return
        await self._api(method, parts, headers, body, scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        stack = contextlib.AsyncExitStack()
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await stack.enter_async_context(self.running())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await stack.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    @staticmethod
    async def _body(receive: Receive) -> bytes:
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= MAX_BODY:
                chunks.append(chunk)
            if not message.get("more_body"):
                break
        return b"".join(chunks)

    # ------------------------------------------------------------------ public API

    def _route(self, method: str, parts: list[str]) -> tuple[str, list[str]] | None:
        if parts[:1] != ["v1"]:
            return None
        rest = parts[1:]
        if method == "GET" and rest == ["models"]:
            return "models", []
        if method == "GET" and rest == ["account"]:
            return "account", []
        if len(rest) == 2 and rest[0] == "models":
            return ("model", rest[1:]) if method == "GET" else ("submit", rest[1:]) if method == "POST" else None
        if len(rest) == 3 and rest[0] == "models" and rest[2] == "estimate" and method == "POST":
            return "estimate", rest[1:2]
        if len(rest) == 3 and rest[0] == "requests" and rest[2] == "status" and method == "GET":
            return "status", rest[1:2]
        if len(rest) == 2 and rest[0] == "requests" and method == "GET":
            return "result", rest[1:]
        return None

    async def _api(self, method: str, parts: list[str], headers: dict[str, str], body: bytes,
                   scope: Scope, receive: Receive, send: Send) -> None:
        em = self.emulator
        routed = self._route(method, parts)
        if routed is None:
            await envelope(404, "not_found", "Not found.")(scope, receive, send)
            return
        route, args = routed
        extra: dict[str, str] = {}
        fault = em.faults.pick(route)
        if fault and fault.kind == "error":
            if fault.retry_after is not None:
                extra["Retry-After"] = fault.retry_after
            etype = EmulatorError(fault.status, fault.code, fault.message).type
            await envelope(fault.status, fault.code, fault.message, etype, extra)(scope, receive, send)
            return
        if fault and fault.kind == "html":
            await Response(f"<html><body><h1>{fault.status}</h1></body></html>", status_code=fault.status,
                           media_type="text/html", headers=extra)(scope, receive, send)
            return
        key: Key | None = None
        try:
            key = em.authenticate(headers)
            em.count(route)  # every authenticated attempt, rate-limited ones included
            extra = em.check_rate(key)
            status, payload = await self._handle(route, args, key, headers, body, fault)
            response: Response = JSONResponse(payload, status_code=status, headers=extra)
        except EmulatorError as exc:
            if key is not None:  # RateLimit-* on every authenticated response, the 429 included (contract §9)
                extra = {**em.rate_headers(key), **extra}
            if exc.retry_after is not None:
                extra["Retry-After"] = exc.retry_after
            response = envelope(exc.status, exc.code, exc.message, exc.type, extra)
        if fault and fault.kind == "delay":
            await anyio.sleep(fault.seconds)
        if fault and fault.kind == "drop":
            await self._drop(response, send)
            return
        await response(scope, receive, send)

    @staticmethod
    async def _drop(response: Response, send: Send) -> None:
        """Break the connection mid-response: declare a longer body than we send."""
        body = bytes(response.body)
        raw_headers = [(k, v) for k, v in response.raw_headers if k.lower() != b"content-length"]
        raw_headers.append((b"content-length", str(len(body) + 100).encode()))
        await send({"type": "http.response.start", "status": response.status_code, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": False})

    async def _handle(self, route: str, args: list[str], key: Key, headers: dict[str, str], body: bytes,
                      fault: Fault | None) -> tuple[int, Any]:
        em = self.emulator
        if route == "models":
            return 200, {"object": "list", "data": [catalogue.list_entry(m) for m in catalogue.MODELS]}
        if route == "model":
            return 200, em.model(args[0])
        if route == "account":
            return 200, em.account_body(key)
        if route == "status":
            return 200, em.status_body(em.request_for(key, args[0]))
        if route == "result":
            req = em.request_for(key, args[0])
            if fault and fault.kind == "stale_result":
                req.stale_result_once = True
            return em.result_body(req)
        data = _json(body)
        if route == "estimate":
            model = em.model(args[0])
            if not isinstance(data, dict) or "input" not in data:
                raise EmulatorError(400, "invalid_request", "The body must be a JSON object with an 'input' object.")
            checked = em.check(model, data.get("input"))
            return 200, {"credits": checked.cost, "warnings": checked.warnings}
        # submit
        idem = headers.get("idempotency-key")
        fp = em.fingerprint(args[0], data if isinstance(data, dict) else {"_": data})
        replay = em.idempotency_begin(key, idem, fp)
        if replay is not None:
            return 200, replay
        try:
            started = anyio.current_time()
            while (left := em.config.submit_delay - (anyio.current_time() - started)) > 0:
                await anyio.sleep(min(left, 0.01))  # re-read: lowering submit_delay releases a held submit
            result = em.submit(key, args[0], data)
        except BaseException:
            em.idempotency_finish(key, idem, None)
            raise
        em.idempotency_finish(key, idem, result)
        return 200, result

    # ------------------------------------------------------------------ control plane

    async def _control(self, method: str, parts: list[str], body: bytes, scope: Scope) -> Response:
        em = self.emulator
        if method in ("GET", "HEAD") and len(parts) >= 3 and parts[0] == "media":
            rendered = media.render("/".join(parts[1:]))
            if rendered is None:
                return envelope(404, "not_found", "No such media file.")
            blob, ctype = rendered
            return Response(blob if method == "GET" else b"", media_type=ctype,
                            headers={"Content-Length": str(len(blob)), "Cache-Control": "public, max-age=3600"})
        try:
            data = _json(body) or {}
        except EmulatorError as exc:
            return envelope(exc.status, exc.code, exc.message)
        if not isinstance(data, dict):
            return envelope(400, "invalid_request", "Control bodies are JSON objects.")
        if len(parts) == 2 and parts[0] == "requests" and method == "GET":
            req = em.requests.get(parts[1])
            if req is None:
                return envelope(404, "not_found", "Unknown request.")
            return JSONResponse({"request_id": req.request_id, "status": em.status_of(req),
                                 "created_wall": req.created_wall,
                                 "completes_wall": req.created_wall + req.queue_s + req.progress_s})
        if parts == ["faults"] and method == "POST":
            try:
                fault = em.faults.add(Fault.from_dict(data))
            except (TypeError, ValueError) as exc:
                return envelope(400, "invalid_request", str(exc))
            return JSONResponse({"added": fault.route, "kind": fault.kind})
        if parts == ["faults"] and method == "DELETE":
            em.faults.clear()
            return JSONResponse({"cleared": True})
        if parts == ["webhook-faults"] and method == "POST":
            self.sender.faults = set(data.get("faults", []))
            return JSONResponse({"faults": sorted(self.sender.faults)})
        if len(parts) == 3 and parts[0] == "requests" and method == "POST":
            target = {"cancel": "CANCELED", "fail": "FAILED", "complete": "COMPLETED"}.get(parts[2])
            if target is None or parts[1] not in em.requests:
                return envelope(404, "not_found", "Unknown request or action.")
            try:
                em.force(parts[1], target)
            except EmulatorError as exc:
                return envelope(exc.status, exc.code, exc.message)
            return JSONResponse({"request_id": parts[1], "status": target})
        if parts == ["clock"] and method == "POST":
            em.clock.advance(float(data.get("advance", 0)))
            return JSONResponse({"offset": em.clock.offset})
        if parts == ["keys"] and method == "POST":
            acc = em.accounts.get(str(data.get("account_id", ""))) or em.add_account(
                balance=int(data.get("balance", 1000)))
            k = em.add_key(test=bool(data.get("test")), account=acc,
                           scopes=tuple(data.get("scopes", ("generate", "read"))))
            return JSONResponse({"key": k.value, "account_id": acc.account_id, "webhook_secret": acc.webhook_secret})
        if parts == ["webhooks"] and method == "GET":
            return JSONResponse({"deliveries": em.webhook_log})
        if parts == ["stats"] and method == "GET":
            return JSONResponse({"calls": em.calls, "requests": len(em.requests), "charges": len(em.charges)})
        if parts == ["config"] and method == "POST":
            for name, value in data.items():
                if hasattr(em.config, name):
                    setattr(em.config, name, value)
            return JSONResponse({"ok": True})
        return envelope(404, "not_found", "Unknown emulator control route.")


def _json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        raise EmulatorError(400, "invalid_request", "The body is not valid JSON.") from None


def create_app(emulator: Emulator | None = None) -> EmulatorApp:
    """An ASGI app over ``emulator`` (a fresh one by default)."""
    return EmulatorApp(emulator or Emulator())
