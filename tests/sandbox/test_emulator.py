"""The emulator against the unmodified official SDK, over real loopback HTTP."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest
from clipia import Clipia, ClipiaApiError, verify_signature
from conftest import balance_of

from clipia_mcp.sandbox import EmulatorServer, Fault
from clipia_mcp.sandbox.media import parse_boxes


def sdk(emu: EmulatorServer, key: str, **kw: object) -> Clipia:
    return Clipia(key, base_url=emu.base_url, **kw)  # type: ignore[arg-type]


def test_sdk_subscribe_runs_unmodified_and_charges_once(frozen_emu: EmulatorServer) -> None:
    emu = frozen_emu
    key = emu.new_key(balance=100)
    seen: list[tuple[str, int | None, int | None]] = []

    def on_update(s: Any) -> None:
        seen.append((s.status, s.queue_position, s.progress))
        emu.emulator.clock.advance(0.7)  # the SDK's polls step emulated time: 1 s queue, 2 s render

    with sdk(emu, key.value) as c:
        res = c.subscribe("nano-banana-2", input={"prompt": "a fox"}, poll_interval=0.001, on_queue_update=on_update)
        assert res.status == "COMPLETED"
        assert res.cost == 4 and res.model == "nano-banana-2"
        image = res.output["images"][0]  # type: ignore[index]
        assert image["width"] == 256 and image["original_url"].endswith("/original.png")
        assert [s for s, _, _ in seen] == ["IN_QUEUE", "IN_QUEUE", "IN_PROGRESS", "IN_PROGRESS", "IN_PROGRESS",
                                           "COMPLETED"]
        account = c.account.get()
    assert account["balance"]["credits"] == 96
    assert account["usage_30d"] == {"requests": 1, "credits_spent": 4}
    png = httpx.get(image["original_url"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")


def test_lifecycle_queue_position_counts_down_then_progress(frozen_emu: EmulatorServer) -> None:
    emu = frozen_emu  # emulated time moves only when the test advances it: 4 s queue, 40 s render
    clock = emu.emulator.clock
    with sdk(emu, emu.new_key(balance=1000).value) as c:
        sub = c.submit("seedance-2-fast-t2v", input={"prompt": "waves"})
        assert sub.status == "IN_QUEUE" and sub.queue_position == 3
        assert sub.status_url == f"{emu.base_url}/v1/requests/{sub.request_id}/status"
        assert c.result(sub.request_id).pending is True
        positions, progress = [], []
        for _ in range(40):
            st = c.status(sub.request_id)
            if st.status == "IN_QUEUE":
                positions.append(st.queue_position)
            elif st.status == "IN_PROGRESS":
                assert st.queue_position is None
                progress.append(st.progress)
            else:
                break
            clock.advance(1.5)
        assert st.status == "COMPLETED" and st.data["progress"] == 100
        assert positions == sorted(positions, reverse=True) and positions[0] >= 1 and len(positions) == 3
        assert progress == sorted(progress) and 0 <= progress[0] < progress[-1] <= 100 and len(progress) >= 20
        res = c.result(sub.request_id)
        assert res.output["video"]["duration"] == 5.0  # type: ignore[index]
        assert parse_boxes(httpx.get(res.output["video"]["url"]).content)[0][0] == b"ftyp"  # type: ignore[index]


def test_failed_and_canceled_refund_in_full(frozen_emu: EmulatorServer) -> None:
    emu = frozen_emu  # the video cannot finish before the test cancels it

    def step(_: Any) -> None:
        emu.emulator.clock.advance(1)

    key = emu.new_key(balance=100)
    with sdk(emu, key.value) as c:
        failed = c.subscribe("nano-banana-2", input={"prompt": "x [[fail]]"}, poll_interval=0.001,
                             on_queue_update=step)
        assert failed.status == "FAILED" and failed.cost == 0
        assert failed.error == {"code": "GENERATION_FAILED", "message": "The generation failed. Credits were refunded."}
        sub = c.submit("seedance-2-fast-t2v", input={"prompt": "long"})
        assert balance_of(emu, key) == 100 - 47
        r = httpx.post(f"{emu.base_url}/_emulator/requests/{sub.request_id}/cancel")
        assert r.json()["status"] == "CANCELED"
        res = c.result(sub.request_id)
        assert res.status == "CANCELED" and res.cost == 0
    assert balance_of(emu, key) == 100


def test_audio_outputs_are_real_wav_and_music_has_variants(emu: EmulatorServer, live_key) -> None:
    with sdk(emu, live_key.value) as c:
        res = c.subscribe("suno-music", input={"prompt": "lofi"}, poll_interval=0.005)
    out = res.output or {}
    assert out["audio"] == out["audios"][0] and len(out["audios"]) == 2
    wav = httpx.get(out["audio"]["url"])
    assert wav.headers["content-type"] == "audio/wav" and wav.content[:4] == b"RIFF" and wav.content[8:12] == b"WAVE"


def test_sandbox_key_completes_instantly_and_is_not_charged(emu: EmulatorServer) -> None:
    key = emu.new_key(test=True, balance=0)
    with sdk(emu, key.value) as c:
        sub = c.submit("seedance-2-fast-t2v", input={"prompt": "x", "duration": 10})
        assert (sub.status, sub.queue_position, sub.cost) == ("COMPLETED", 0, 94)
        res = c.result(sub.request_id)
        again = c.subscribe("seedance-2-fast-t2v", input={"prompt": "y"}, poll_interval=0.01)
    assert res.output == again.output  # fixed sample asset per type
    assert balance_of(emu, key) == 0


def test_estimate_equals_submit_cost_and_reports_warnings(emu: EmulatorServer, live_key) -> None:
    data = {"prompt": "x", "resolution": "4K", "num_images": 2, "aspect_ration": "1:1", "duration": 5}
    with sdk(emu, live_key.value) as c:
        est = c.models.estimate("nano-banana-2", data)
        sub = c.submit("nano-banana-2", input=data)
    assert est.credits == sub.cost == 16
    codes = {(w.parameter, w.code) for w in sub.warnings}
    assert codes == {("aspect_ration", "unknown_parameter"), ("duration", "unsupported_parameter")}
    assert {(w.parameter, w.code) for w in est.warnings} == codes


def test_catalogue_shapes(emu: EmulatorServer, live_key) -> None:
    with sdk(emu, live_key.value) as c:
        models = c.models.list()["data"]
        tts = c.models.get("gemini-3-1-flash-tts")
    slugs = {m.get("slug") for m in models}
    assert {"nano-banana-2", "seedance-2-fast-t2v", "seedance-2-fast-i2v", "gemini-3-1-flash-tts",
            "suno-music", "video-upscale", "imagen-legacy"} <= slugs
    assert all("input_schema" not in m for m in models)
    assert tts["text_limits"] == {"min_chars": 1, "max_chars": 5000}
    assert tts["input_schema"]["parameters"][0]["name"] == "prompt"
    text = next(m for m in models if m.get("type") == "text")
    assert text["object"] == "model" and isinstance(text["context_length"], int)


@pytest.mark.parametrize(
    ("scheme", "header"),
    [("bearer", "Authorization"), ("key", "Authorization"), ("x", "X-Api-Key")],
)
def test_three_auth_header_forms(emu: EmulatorServer, live_key, scheme: str, header: str) -> None:
    value = {"bearer": f"Bearer {live_key.value}", "key": f"Key {live_key.value}", "x": live_key.value}[scheme]
    r = httpx.get(f"{emu.base_url}/v1/account", headers={header: value})
    assert r.status_code == 200
    assert int(r.headers["RateLimit-Limit"]) == emu.emulator.config.rpm and "RateLimit-Remaining" in r.headers


def _error(emu: EmulatorServer, method: str, path: str, key: str | None, **kw: object) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    r = httpx.request(method, f"{emu.base_url}{path}", headers=headers, **kw)  # type: ignore[arg-type]
    body = r.json()
    assert set(body["error"]) >= {"type", "code", "message"}
    return r.status_code, body["error"]["code"]


def test_every_error_code_in_the_envelope(own_emu: EmulatorServer) -> None:
    emu = own_emu  # changes emulator-wide config
    key = emu.new_key(balance=3)
    k = key.value
    assert _error(emu, "GET", "/v1/account", None) == (401, "invalid_api_key")
    assert _error(emu, "GET", "/v1/account", "clipia_live_unknown") == (401, "invalid_api_key")
    assert _error(emu, "POST", "/v1/models/nano-banana-2", k, json={"input": {"prompt": "x"}}) == (
        402, "insufficient_credits")
    emu.emulator.accounts[key.account_id].subscription_active = False
    assert _error(emu, "POST", "/v1/models/nano-banana-2", k, json={"input": {"prompt": "x"}}) == (
        402, "subscription_required")
    ro = emu.new_key(scopes=("read",))
    assert _error(emu, "POST", "/v1/models/nano-banana-2", ro.value, json={"input": {"prompt": "x"}}) == (
        403, "insufficient_scope")
    assert _error(emu, "GET", "/v1/models/nope", k) == (404, "model_not_found")
    assert _error(emu, "GET", "/v1/requests/764cabcf-b745-4b3e-ae38-1200304cf45b/status", k) == (404, "not_found")
    assert _error(emu, "POST", "/v1/requests/764cabcf-b745-4b3e-ae38-1200304cf45b/cancel", k) == (404, "not_found")
    assert _error(emu, "POST", "/v1/models/nano-banana-2", k, content=b"{nope") == (400, "invalid_request")
    assert _error(emu, "POST", "/v1/models/nano-banana-2", k, json={"input": "x"}) == (400, "invalid_request")
    good = emu.new_key().value
    assert _error(emu, "POST", "/v1/models/nano-banana-2", good, json={"input": {}}) == (400, "model_input_invalid")
    assert _error(emu, "POST", "/v1/models/nano-banana-2", good,
                  json={"input": {"prompt": "x", "resolution": "8K"}}) == (400, "model_input_invalid")
    assert _error(emu, "POST", "/v1/models/gemini-3-1-flash-tts", good,
                  json={"input": {"prompt": "x" * 5001}}) == (400, "model_input_invalid")
    assert _error(emu, "POST", "/v1/models/nano-banana-2", good,
                  json={"input": {"prompt": "x"}, "webhook_url": "ftp://x"}) == (400, "webhook_url_invalid")
    emu.emulator.config.input_invalid_status = 422
    assert _error(emu, "POST", "/v1/models/nano-banana-2", good, json={"input": {}}) == (422, "model_input_invalid")


def test_raw_path_routing_keeps_encoded_slashes(emu: EmulatorServer, live_key) -> None:
    with sdk(emu, live_key.value) as c, pytest.raises(ClipiaApiError) as info:
        c.models.get("weird/slug x")
    assert info.value.status == 404 and "weird/slug x" in info.value.message


def test_idempotency_replay_reuse_and_in_progress(frozen_emu: EmulatorServer) -> None:
    emu = frozen_emu
    key = emu.new_key(balance=100)
    url = f"{emu.base_url}/v1/models/nano-banana-2"
    h = {"Authorization": f"Bearer {key.value}", "Idempotency-Key": "order-42"}
    first = httpx.post(url, headers=h, json={"input": {"prompt": "a", "seed": 1}}).json()
    replay = httpx.post(url, headers=h, json={"input": {"seed": 1, "prompt": "a"}}).json()
    assert replay["request_id"] == first["request_id"]
    assert balance_of(emu, key) == 96
    r = httpx.post(url, headers=h, json={"input": {"prompt": "b"}})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "idempotency_key_reuse")
    long = dict(h, **{"Idempotency-Key": "k" * 256})
    assert httpx.post(url, headers=long, json={"input": {"prompt": "a"}}).status_code == 400
    emu.emulator.config.submit_delay = 3600  # the first submit holds its key until the test lets it go
    results: list[httpx.Response] = []
    h2 = dict(h, **{"Idempotency-Key": "slow"})
    t = threading.Thread(target=lambda: results.append(
        httpx.post(url, headers=h2, json={"input": {"prompt": "s"}}, timeout=60)))
    t.start()
    deadline = time.monotonic() + 60
    while (key.value, "slow") not in emu.emulator.idempotency:  # wait until the first one is in progress
        assert time.monotonic() < deadline, "the first submit never arrived"
        time.sleep(0.005)
    second = httpx.post(url, headers=h2, json={"input": {"prompt": "s"}})
    assert (second.status_code, second.json()["error"]["code"]) == (409, "request_in_progress")
    emu.emulator.config.submit_delay = 0
    t.join(60)
    assert results and results[0].status_code == 200
    emu.emulator.clock.advance(24 * 3600 + 1)
    fresh = httpx.post(url, headers=h, json={"input": {"prompt": "a", "seed": 1}}).json()
    assert fresh["request_id"] != first["request_id"]


def test_rate_and_concurrency_limits(frozen_emu: EmulatorServer) -> None:
    emu = frozen_emu  # a frozen clock: the RPM window and the render never move under load
    key = emu.new_key(balance=1000)
    emu.emulator.config.rpm = 3
    h = {"Authorization": f"Bearer {key.value}"}
    codes = [httpx.get(f"{emu.base_url}/v1/account", headers=h) for _ in range(4)]
    assert [r.status_code for r in codes] == [200, 200, 200, 429]
    assert codes[-1].json()["error"] == {"type": "rate_limit_error", "code": "rate_limit_exceeded",
                                         "message": "Rate limit of 3 requests per minute exceeded."}
    assert codes[-1].headers["Retry-After"] == "60"
    assert codes[1].headers["RateLimit-Remaining"] == "1"
    emu.emulator.clock.advance(60)
    assert httpx.get(f"{emu.base_url}/v1/account", headers=h).status_code == 200  # the window rolled over
    emu.emulator.config.rpm = 100_000
    emu.emulator.config.concurrency = 1
    url = f"{emu.base_url}/v1/models/seedance-2-fast-t2v"
    assert httpx.post(url, headers=h, json={"input": {"prompt": "a"}}).status_code == 200
    r = httpx.post(url, headers=h, json={"input": {"prompt": "b"}})
    assert (r.status_code, r.json()["error"]["code"]) == (429, "concurrency_limit_exceeded")
    assert balance_of(emu, key) == 1000 - 47
    emu.emulator.clock.advance(60)  # the first one finished: a slot is free
    assert httpx.post(url, headers=h, json={"input": {"prompt": "b"}}).status_code == 200


def test_faults_html_502_and_lost_response_after_commit(own_emu: EmulatorServer) -> None:
    emu = own_emu  # faults are emulator-wide
    key = emu.new_key(balance=100)
    emu.emulator.faults.add(Fault(route="account", kind="html", status=502))
    r = httpx.get(f"{emu.base_url}/v1/account", headers={"Authorization": f"Bearer {key.value}"})
    assert r.status_code == 502 and r.headers["content-type"].startswith("text/html")
    emu.emulator.faults.add(Fault(route="submit", kind="drop"))
    with sdk(emu, key.value) as c:  # the SDK's own retry, same Idempotency-Key
        sub = c.submit("nano-banana-2", input={"prompt": "x"}, idempotency_key="drop-1")
    created = [r for r in emu.emulator.requests.values() if r.key == key.value]
    assert [r.request_id for r in created] == [sub.request_id]
    assert balance_of(emu, key) == 96


class _Receiver(BaseHTTPRequestHandler):
    got: list[tuple[dict[str, str], bytes]] = []
    fail_first = 0

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).got.append((dict(self.headers), body))
        code = 500 if len(type(self).got) <= type(self).fail_first else 200
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_signed_webhooks_verify_with_the_sdk_and_retry(emu: EmulatorServer) -> None:
    _Receiver.got, _Receiver.fail_first = [], 2
    srv = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        key = emu.new_key(balance=100)
        secret = emu.emulator.accounts[key.account_id].webhook_secret
        hook = f"http://127.0.0.1:{srv.server_port}/hook"
        with sdk(emu, key.value) as c:
            sub = c.submit("nano-banana-2", input={"prompt": "x"}, webhook_url=hook)
        deadline = time.monotonic() + 60  # a generous bound on a wait for an event, not a timing assert
        while len(_Receiver.got) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        srv.shutdown()
    assert len(_Receiver.got) == 3  # two 500s, then delivered
    ids = {h["X-Clipia-Webhook-Id"] for h, _ in _Receiver.got}
    assert len(ids) == 1
    headers, body = _Receiver.got[-1]
    assert verify_signature(secret, headers, body)
    payload = json.loads(body)
    assert payload["request_id"] == sub.request_id and payload["status"] == "OK"
    assert payload["payload"]["cost"] == 4 and payload["payload"]["output"]["images"]
    assert not verify_signature(secret, headers, body.replace(b'"OK"', b'"ER"'))
    assert not verify_signature("whsec_wrong", headers, body)
    log = httpx.get(f"{emu.base_url}/_emulator/webhooks").json()["deliveries"]
    mine = [d for d in log if d["request_id"] == sub.request_id]
    assert [d["attempt"] for d in mine] == [1, 2, 3] and mine[-1]["delivered"] is True
