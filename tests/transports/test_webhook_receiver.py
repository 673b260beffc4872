"""transports/webhooks: the signed receiver in process (httpx.ASGITransport), and what a delivery means."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import pytest
from clipia import verify_signature
from clipia.webhooks import SIGNATURE_HEADER
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import Route

from clipia_mcp.core.records import RequestRecord
from clipia_mcp.engine.webhook_events import record_from_delivery
from clipia_mcp.sandbox.webhooks import sign
from clipia_mcp.transports.webhooks import MAX_BODY, TOLERANCE_S, Hmac, WebhookReceiver, verified_mac

pytestmark = pytest.mark.anyio
SECRET = "whsec_" + "s" * 32
RID = "764cabcf-b745-4b3e-ae38-1200304cf45b"


class FakeService:
    def __init__(self) -> None:
        self.applied: list[tuple[str, dict[str, Any]]] = []

    async def apply_delivery(self, request_id: str, payload: dict[str, Any]) -> bool:
        self.applied.append((request_id, payload))
        return True


def headers(body: bytes, *, t: int | None = None, delivery: str = "d-1", secret: str = SECRET) -> dict[str, str]:
    ts = int(time.time()) if t is None else t
    return {"X-Clipia-Webhook-Id": delivery, "X-Clipia-Signature": f"t={ts},v1={sign(secret, ts, body)}",
            "Content-Type": "application/json"}


@pytest.fixture
async def hook() -> Any:
    service = FakeService()
    receiver = WebhookReceiver(SECRET, service)  # type: ignore[arg-type]
    app = Starlette(routes=[Route("/webhooks/clipia", receiver.handle, methods=["POST"])])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mcp.test") as http:
        yield http, receiver, service


async def test_a_verified_delivery_is_applied_once(hook: Any) -> None:
    http, receiver, service = hook
    body = json.dumps({"request_id": RID, "status": "OK", "payload": {"cost": 4}}).encode()
    h = headers(body)
    first = await http.post("/webhooks/clipia", content=body, headers=h)
    assert (first.status_code, first.json()) == (200, {"ok": True, "tracked": True})
    replay = await http.post("/webhooks/clipia", content=body, headers=h)
    assert (replay.status_code, replay.json()) == (200, {"ok": True, "duplicate": True})
    assert [rid for rid, _ in service.applied] == [RID]
    assert (receiver.accepted, receiver.duplicates, receiver.rejected) == (1, 1, 0)


async def test_the_same_signed_content_in_a_rewritten_header_is_still_a_duplicate(hook: Any) -> None:
    """The signed content is (t, body): spaces, field order or an extra field around the same t and HMAC
    verify just the same, and must not get a delivery applied twice."""
    http, receiver, service = hook
    body = json.dumps({"request_id": RID, "status": "OK", "payload": {"cost": 4}}).encode()
    t = int(time.time())
    sig = sign(SECRET, t, body)
    written = [f"t={t},v1={sig}", f"t={t}, v1={sig}", f"v1={sig},t={t}", f"t={t},v1={sig},x=1",
               f" t = {t} ,v1={sig}", f"t=1,t={t},v1={sig}"]
    answers = [(await http.post("/webhooks/clipia", content=body, headers={
        "X-Clipia-Signature": header, "Content-Type": "application/json"})).json() for header in written]
    assert answers == [{"ok": True, "tracked": True}] + [{"ok": True, "duplicate": True}] * (len(written) - 1)
    assert [rid for rid, _ in service.applied] == [RID]
    assert (receiver.accepted, receiver.duplicates) == (1, len(written) - 1)


async def test_forged_stale_tampered_oversized_and_malformed_deliveries_are_refused(hook: Any) -> None:
    http, receiver, service = hook
    body = json.dumps({"request_id": RID, "status": "OK", "payload": {}}).encode()
    cases = [
        (body, headers(body, secret="whsec_wrong"), 401),
        (body, headers(body, t=int(time.time()) - 301), 401),  # outside the 300 s window
        (body.replace(b'"OK"', b'"ERROR"'), headers(body), 401),  # signed content changed
        (body, {"Content-Type": "application/json"}, 401),  # unsigned
        (b"x" * (MAX_BODY + 1), headers(b"x" * (MAX_BODY + 1)), 413),
        (b"[1, 2]", headers(b"[1, 2]"), 400),
        (b'{"status": "OK"}', headers(b'{"status": "OK"}'), 400),
    ]
    for content, h, status in cases:
        r = await http.post("/webhooks/clipia", content=content, headers=h)
        assert r.status_code == status, (content[:40], r.text)
        assert r.json()["ok"] is False
    assert service.applied == [] and receiver.rejected == len(cases)


def current() -> RequestRecord:
    return RequestRecord(request_id=RID, owner="o", status="IN_PROGRESS", progress=40, queue_position=None,
                         cost=47, model="m", created_at=1.0, updated_at=1.0)


def test_delivery_ok_with_and_without_output() -> None:
    done = record_from_delivery(current(), {"status": "OK", "payload": {"output": {"video": {}}, "cost": 47}})
    assert done is not None and (done.status, done.output, done.progress, done.cost) == (
        "COMPLETED", {"video": {}}, 100, 47)
    bare = record_from_delivery(current(), {"status": "OK", "payload": "junk"})
    assert bare is not None and bare.status == "COMPLETED" and bare.output is None and not bare.settled
    for absurd in (10**30, True, -1):  # not a cost: the one already known stays
        odd = record_from_delivery(current(), {"status": "OK", "payload": {"cost": absurd}})
        assert odd is not None and odd.cost == current().cost


def test_delivery_errors_and_unknown_statuses() -> None:
    failed = record_from_delivery(current(), {"status": "ERROR", "error": {"code": "GENERATION_FAILED",
                                                                            "message": "no"}})
    assert failed is not None and (failed.status, failed.cost) == ("FAILED", 0)
    assert failed.error is not None and failed.error.message == "no"
    canceled = record_from_delivery(current(), {"status": "ERROR", "error": {"code": "CANCELED"}})
    assert canceled is not None and (canceled.status, canceled.error) == ("CANCELED", None)
    assert record_from_delivery(current(), {"status": "PENDING"}) is None


async def test_a_body_streamed_in_many_chunks_is_read_whole_and_still_capped(hook: Any) -> None:
    http, receiver, service = hook
    body = json.dumps({"request_id": RID, "status": "OK", "payload": {"pad": "p" * 5000}}).encode()

    async def pieces(data: bytes, size: int) -> Any:
        for i in range(0, len(data), size):
            yield data[i:i + size]

    ok = await http.post("/webhooks/clipia", content=pieces(body, 7), headers=headers(body))  # no content-length
    assert (ok.status_code, ok.json()) == (200, {"ok": True, "tracked": True})
    assert [rid for rid, _ in service.applied] == [RID]
    big = b"x" * (MAX_BODY + 1)
    refused = await http.post("/webhooks/clipia", content=pieces(big, 64 * 1024), headers=headers(big))
    assert refused.status_code == 413 and len(service.applied) == 1


async def test_the_first_signature_header_is_the_one_checked_and_a_bad_length_is_refused() -> None:
    """Headers are read in one pass over the raw ASGI list: the first of a repeated header counts (as
    Starlette's lookup did), whatever follows it."""
    service = FakeService()
    receiver = WebhookReceiver(SECRET, service)  # type: ignore[arg-type]
    app = Starlette(routes=[Route("/webhooks/clipia", receiver.handle, methods=["POST"])])
    body = json.dumps({"request_id": RID, "status": "OK", "payload": {}}).encode()
    good = headers(body)["X-Clipia-Signature"]
    bad = headers(body, secret="whsec_wrong")["X-Clipia-Signature"]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mcp.test") as http:
        async def post(extra: list[tuple[str, str]]) -> int:
            return (await http.post("/webhooks/clipia", content=body,
                                    headers=[("content-type", "application/json"), *extra])).status_code

        assert await post([("x-clipia-signature", bad), ("x-clipia-signature", good)]) == 401
        assert await post([("x-clipia-signature", good), ("x-clipia-signature", bad)]) == 200
        assert await post([("x-clipia-signature", good), ("content-length", "12x")]) == 413
    assert [rid for rid, _ in service.applied] == [RID]
    assert receiver.rejected == 2


NOW = 1_790_000_000.0
_BODIES = st.one_of(st.binary(max_size=64), st.text(max_size=64).map(str.encode),
                    st.just(b'{"request_id": "r", "status": "OK"}'), st.just(b"\xff\xfe{}"))
_STAMPS = st.one_of(st.integers(int(NOW) - 2 * TOLERANCE_S, int(NOW) + 2 * TOLERANCE_S).map(str),
                    st.sampled_from(["", " ", "+1790000000", "1790000000.0", "1_790_000_000", "\u0661\u0667\u0669",
                                     "-1", "9" * 5000, "0x6ab0c680", "1790000000\x00"]),
                    st.text(max_size=12))


@st.composite
def _signed(draw: st.DrawFn) -> tuple[str, str, bytes]:
    """A secret, a signature header and a body: mostly near-valid (right MAC, odd spellings), often broken."""
    secret = draw(st.sampled_from([SECRET, "s", "k" * 100, "ключ"]))
    body = draw(_BODIES)
    stamp = draw(_STAMPS)
    try:
        right = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    except UnicodeEncodeError:
        right = "0" * 64
    v1 = draw(st.one_of(st.just(right), st.just(right.upper()), st.just(right[:-1]), st.text(max_size=70),
                        st.just(right + "é")))
    fields = [f"t={stamp}", f"v1={v1}"] + draw(st.lists(st.sampled_from(["x=1", "", "v0=abc", "t=1", "junk", " "]),
                                                           max_size=3))
    fields = draw(st.permutations(fields))
    sep = draw(st.sampled_from([",", ", ", " ,"]))
    return secret, sep.join(fields), body


@settings(max_examples=600, deadline=None)
@given(_signed())
def test_the_signature_check_answers_as_the_sdk_does(case: tuple[str, str, bytes]) -> None:
    secret, header, body = case
    ours = verified_mac(Hmac(secret.encode()), header, body, NOW)
    assert (ours is not None) == verify_signature(secret, {SIGNATURE_HEADER: header}, body,
                                                  tolerance_seconds=TOLERANCE_S, now=NOW)
    if ours is not None:  # the MAC of the signed content, and the time it was signed
        mac, signed_at = ours
        stamp = [f.split("=", 1)[1].strip() for f in header.split(",") if f.strip().split("=")[0].strip() == "t"][-1]
        assert mac == hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        assert signed_at == int(stamp)


@pytest.mark.parametrize(("stamp", "body", "valid"), [
    (str(int(NOW)), b"{}", True), ("+" + str(int(NOW)), b"{}", True), ("1_790_000_000", b"{}", True),
    (str(int(NOW) - TOLERANCE_S), b"{}", True), (str(int(NOW) - TOLERANCE_S - 1), b"{}", False),
    (str(int(NOW)) + ".0", b"{}", False), ("", b"{}", False), (str(int(NOW)), b"\xff{}", False)])
def test_odd_spellings_verify_exactly_where_the_sdk_says(stamp: str, body: bytes, valid: bool) -> None:
    header = f"t={stamp},v1={hmac.new(SECRET.encode(), stamp.encode() + b'.' + body, hashlib.sha256).hexdigest()}"
    assert verify_signature(SECRET, {SIGNATURE_HEADER: header}, body, tolerance_seconds=TOLERANCE_S, now=NOW) is valid
    assert (verified_mac(Hmac(SECRET.encode()), header, body, NOW) is not None) is valid


async def test_a_receiver_without_a_secret_verifies_nothing() -> None:
    service = FakeService()
    receiver = WebhookReceiver("", service)  # type: ignore[arg-type]
    app = Starlette(routes=[Route("/webhooks/clipia", receiver.handle, methods=["POST"])])
    body = json.dumps({"request_id": RID, "status": "OK", "payload": {}}).encode()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mcp.test") as http:
        r = await http.post("/webhooks/clipia", content=body, headers=headers(body, secret=""))
    assert r.status_code == 401 and service.applied == []


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.binary(max_size=300))
def test_hmac_is_the_standard_one_for_any_key(key: bytes, message: bytes) -> None:
    assert Hmac(key).hexdigest(message) == hmac.new(key, message, hashlib.sha256).hexdigest()
    assert repr(Hmac(key)) == "Hmac(sha256)"  # no key material in a repr
