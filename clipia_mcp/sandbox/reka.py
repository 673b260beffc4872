"""An emulator of Reka Vision's clip-generation API, in the style of the Clipia one.

Source: API contract, shared/reference/clipia-api.md §16, and source-docs/reka-get-clip-status.txt.

Routes: ``POST /v1/clips``, ``GET /v1/clips/{id}``, ``GET /v1/clips``, ``DELETE /v1/clips/{id}``; auth by
``X-Api-Key`` or ``Authorization: Bearer``; ``queued → processing → completed | failed`` on a scaled clock;
``POST /v1/clips`` limited per key per rolling 24 h (10 by default) with ``x-ratelimit-*`` headers;
errors in Reka's envelope ``{"error": {"type", "message", "param"?}}``; every response has ``X-Request-ID``.
Clip videos are real MP4 containers served under ``/media/``.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, unquote

from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from clipia_mcp.sandbox import media

DAY = 24 * 3600.0
#: Create-body defaults (contract §16.2); GET echoes the resolved configs.
DEFAULT_PROMPT = "Create an engaging short video highlighting the best moments"
GENERATION_DEFAULTS: dict[str, Any] = {"template": "moments", "num_generations": 1, "min_duration_seconds": 0,
                                       "max_duration_seconds": 90}
RENDERING_DEFAULTS: dict[str, Any] = {"show_watermark": False, "subtitles": True, "aspect_ratio": "9:16",
                                      "resolution": 720}


@dataclass
class RekaConfig:
    public_base_url: str = "http://127.0.0.1"
    time_scale: float = 1.0
    daily_limit: int = 10
    queue_s: float = 10.0
    processing_s: float = 120.0


@dataclass
class Clip:
    id: str
    key: str
    body: dict[str, Any]
    created: float
    created_wall: float
    queue_s: float
    processing_s: float
    fail: bool = False


@dataclass
class RekaEmulator:
    config: RekaConfig = field(default_factory=RekaConfig)
    keys: set[str] = field(default_factory=set)
    clips: dict[str, Clip] = field(default_factory=dict)
    creates: dict[str, deque[float]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def status(self, clip: Clip) -> str:
        elapsed = time.monotonic() - clip.created
        if elapsed < clip.queue_s:
            return "queued"
        if elapsed < clip.queue_s + clip.processing_s:
            return "processing"
        return "failed" if clip.fail else "completed"

    def view(self, clip: Clip) -> dict[str, Any]:
        status = self.status(clip)
        body = clip.body
        # updated_at is the time of the last status change, not the time of the read.
        changed = clip.created_wall + {"queued": 0.0, "processing": clip.queue_s}.get(
            status, clip.queue_s + clip.processing_s)
        gen = {**GENERATION_DEFAULTS, **(body.get("generation_config") or {})}
        ren = {**RENDERING_DEFAULTS, **(body.get("rendering_config") or {})}
        out: dict[str, Any] = {
            "id": clip.id, "status": status, "created_at": _iso(clip.created_wall),
            "updated_at": _iso(changed), "video_urls": body["video_urls"],
            "prompt": body.get("prompt") or DEFAULT_PROMPT,
            "generation_config": gen, "rendering_config": ren,  # the resolved configs, defaults filled in
        }
        if status == "completed":
            n = int(gen["num_generations"])
            base = self.config.public_base_url
            out["output"] = [{
                "title": f"Highlight {i + 1}", "video_url": f"{base}/media/{clip.id}-{i}/clip.mp4",
                "caption": "The best moment of the source video.",
                "signed_s3_video_url": f"{base}/media/{clip.id}-{i}/clip.mp4?X-Amz-Signature=emulated",
                "hashtags": ["highlights", "clip"],  # without '#', as Reka's status example shows
                "ai_score": 87 - i,
            } for i in range(n)]
        if status == "failed":
            out["error_message"] = "Could not process the source video."
        return out


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error(status: int, type_: str, message: str, param: str | None = None,
           headers: dict[str, str] | None = None) -> Response:
    err: dict[str, Any] = {"type": type_, "message": message}
    if param:
        err["param"] = param
    return JSONResponse({"error": err}, status_code=status, headers=headers)


def validate(body: Any) -> tuple[str, str] | None:
    """(param, message) of the first problem in a create body, or None."""
    if not isinstance(body, dict):
        return "body", "The body must be a JSON object."
    urls = body.get("video_urls")
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) and u.startswith(("http://", "https://"))
                                                         for u in urls):
        return "video_urls", "video_urls must be a non-empty list of http(s) URLs."
    gen = body.get("generation_config") or {}
    if not isinstance(gen, dict):
        return "generation_config", "generation_config must be an object."
    if gen.get("template", "moments") not in ("moments", "compilation"):
        return "generation_config.template", "template must be 'moments' or 'compilation'."
    n = gen.get("num_generations", 1)
    if not isinstance(n, int) or not 1 <= n <= 3:
        return "generation_config.num_generations", "num_generations must be 1-3."
    lo, hi = gen.get("min_duration_seconds", 0), gen.get("max_duration_seconds", 90)
    if not isinstance(lo, int) or lo < 0:
        return "generation_config.min_duration_seconds", "min_duration_seconds must be >= 0."
    if not isinstance(hi, int) or not 1 <= hi <= 600 or hi < lo:
        return "generation_config.max_duration_seconds", "max_duration_seconds must be 1-600 and >= the minimum."
    ren = body.get("rendering_config") or {}
    if not isinstance(ren, dict):
        return "rendering_config", "rendering_config must be an object."
    if ren.get("aspect_ratio", "9:16") not in ("9:16", "16:9", "4:5", "1:1"):
        return "rendering_config.aspect_ratio", "aspect_ratio must be one of 9:16, 16:9, 4:5, 1:1."
    if ren.get("resolution", 720) not in (240, 360, 480, 720, 1080):
        return "rendering_config.resolution", "resolution must be one of 240, 360, 480, 720, 1080."
    return None


class RekaApp:
    """ASGI app over a :class:`RekaEmulator`."""

    def __init__(self, emulator: RekaEmulator) -> None:
        self.emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1").split("?", 1)[0]
        parts = [unquote(p) for p in raw.strip("/").split("/") if p]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        response = self.handle(scope["method"], parts, headers, body, scope.get("query_string", b"").decode())
        response.headers["X-Request-ID"] = str(uuid.uuid4())
        await response(scope, receive, send)

    def handle(self, method: str, parts: list[str], headers: dict[str, str], body: bytes, query: str) -> Response:
        em = self.emulator
        if parts[:1] == ["media"] and len(parts) == 3 and method == "GET":
            rendered = media.render(f"{parts[1]}/video.mp4")
            assert rendered is not None
            return Response(rendered[0], media_type=rendered[1])
        if parts[:2] != ["v1", "clips"]:
            return _error(404, "not_found_error", "Not found.")
        auth = headers.get("authorization", "")
        key = auth[7:].strip() if auth.lower().startswith("bearer ") else headers.get("x-api-key", "").strip()
        if key not in em.keys:
            return _error(401, "authentication_error", "Invalid or missing API key.")
        route = f"{method} {'/'.join(parts[:2])}{'/{id}' if len(parts) == 3 else ''}"
        em.calls[route] = em.calls.get(route, 0) + 1
        if method == "POST" and len(parts) == 2:
            return self.create(key, body)
        if method == "GET" and len(parts) == 2:
            q = parse_qs(query)
            offset, limit = int(q.get("offset", ["0"])[0]), int(q.get("limit", ["20"])[0])
            status = q.get("status", [None])[0]
            mine = [c for c in em.clips.values() if c.key == key and (status is None or em.status(c) == status)]
            items = [{"id": c.id, "status": em.status(c), "video_urls": c.body["video_urls"],
                      "prompt": c.body.get("prompt")} for c in mine[offset:offset + limit]]
            return JSONResponse({"items": items})
        if len(parts) != 3:
            return _error(404, "not_found_error", "Not found.")
        clip = em.clips.get(parts[2])
        if clip is None or clip.key != key:
            return _error(404, "not_found_error", f"Clip {parts[2]} not found.")
        if method == "GET":
            return JSONResponse(em.view(clip))
        if method == "DELETE":
            if em.status(clip) not in ("completed", "failed"):
                return _error(400, "validation_error", "Only completed or failed clips can be deleted.", "id")
            del em.clips[clip.id]
            return JSONResponse({})
        return _error(404, "not_found_error", "Not found.")

    def create(self, key: str, raw: bytes) -> Response:
        em = self.emulator
        now = time.monotonic()
        window = em.creates.setdefault(key, deque())
        while window and window[0] <= now - DAY:
            window.popleft()
        remaining = em.config.daily_limit - len(window)
        limits = {"x-ratelimit-requests-limit": str(em.config.daily_limit),
                  "x-ratelimit-requests-remaining": str(max(0, remaining - 1))}
        if remaining <= 0:
            reset = str(math.ceil(window[0] + DAY - now))
            return _error(429, "rate_limit_error", f"Daily limit of {em.config.daily_limit} clip jobs reached.",
                          headers={**limits, "x-ratelimit-requests-reset": reset, "retry-after": reset})
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            return _error(400, "validation_error", "The body is not valid JSON.")
        problem = validate(body)
        if problem:
            return _error(400, "validation_error", problem[1], problem[0])
        window.append(now)
        scale = em.config.time_scale
        clip = Clip(id=str(uuid.uuid4()), key=key, body=body, created=now, created_wall=time.time(),
                    queue_s=em.config.queue_s * scale, processing_s=em.config.processing_s * scale,
                    fail="[[fail]]" in str(body.get("prompt", "")))
        em.clips[clip.id] = clip
        return JSONResponse(em.view(clip), headers={**limits, "retry-after": "0"})


class RekaServer:
    """The Reka emulator on a loopback port, served from a daemon thread (tests, sandbox)."""

    def __init__(self, emulator: RekaEmulator | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        from clipia_mcp.sandbox.runner import bind_socket

        self.emulator = emulator or RekaEmulator()
        self._sock = bind_socket(host, port)
        self.base_url = f"http://{host}:{self._sock.getsockname()[1]}"
        self.emulator.config.public_base_url = self.base_url

    def new_key(self) -> str:
        key = "reka_" + uuid.uuid4().hex
        self.emulator.keys.add(key)
        return key

    def start_in_thread(self) -> RekaServer:
        import threading

        import uvicorn

        config = uvicorn.Config(RekaApp(self.emulator), lifespan="off", log_config=None, access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the Reka emulator did not start")
            time.sleep(0.01)
        return self

    def stop_thread(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
