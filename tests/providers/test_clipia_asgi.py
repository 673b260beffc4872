"""providers/clipia against the in-memory emulator (httpx.ASGITransport): no sockets, no sleeps.

The emulator runs on a frozen clock; each test advances emulated time explicitly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from clipia_mcp.core.errors import (
    AuthenticationError,
    BillingError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
    ServerError,
    UpstreamInvalidResponse,
)
from clipia_mcp.core.settings import ApiKey, Settings
from clipia_mcp.providers.clipia.client import ClipiaClient
from clipia_mcp.sandbox import Emulator, EmulatorConfig, Fault, create_app
from clipia_mcp.sandbox.state import Clock, Key

pytestmark = pytest.mark.anyio
BASE = "https://emulator.test"  # never resolved: the ASGI transport answers in-process
FAST = Settings(retry_base_delay=0.0, retry_max_delay=0.0, retry_after_cap=0.0, http_timeout=5)
UNKNOWN = "764cabcf-b745-4b3e-ae38-1200304cf45b"


@pytest.fixture
def em() -> Emulator:
    return Emulator(EmulatorConfig(public_base_url=BASE, rpm=100_000), clock=Clock(frozen=True))


@pytest.fixture
def key(em: Emulator) -> Key:
    return em.add_key(account=em.add_account(balance=1000))


@pytest.fixture
async def client(em: Emulator, key: Key) -> AsyncIterator[ClipiaClient]:
    c = client_for(em, key.value)
    yield c
    await c.aclose()


def client_for(em: Emulator, key: str, settings: Settings = FAST) -> ClipiaClient:
    return ClipiaClient(ApiKey(key), base_url=BASE, settings=settings,
                        transport=httpx.ASGITransport(app=create_app(em)))


async def test_lifecycle_on_emulated_time(em: Emulator, client: ClipiaClient) -> None:
    sub = await client.submit("seedance-2-fast-t2v", {"prompt": "waves"})
    assert (sub.status, sub.queue_position, sub.cost) == ("IN_QUEUE", 3, 47)
    assert sub.status_url == f"{BASE}/v1/requests/{sub.request_id}/status"
    positions = []
    for _ in range(4):  # the scripted queue is 4 emulated seconds: the position counts down
        st = await client.status(sub.request_id)
        assert st.status == "IN_QUEUE"
        positions.append(st.queue_position)
        em.clock.advance(0.9)
    assert positions == sorted(positions, reverse=True) and positions[0] == 2
    em.clock.advance(0.5)
    assert (await client.result(sub.request_id)).pending is True
    progress = []
    for _ in range(3):
        em.clock.advance(10)
        st = await client.status(sub.request_id)
        assert st.status == "IN_PROGRESS" and st.queue_position is None
        progress.append(st.progress)
    assert progress == sorted(progress) and 0 < progress[0] < progress[-1] < 100
    em.clock.advance(30)
    st = await client.status(sub.request_id)
    assert (st.status, st.progress) == ("COMPLETED", 100)
    res = await client.result(sub.request_id)
    assert (res.pending, res.status, res.cost, res.model) == (False, "COMPLETED", 47, "seedance-2-fast-t2v")
    assert res.output is not None and res.output["video"]["duration"] == 5.0
    assert client.calls == {"submit": 1, "status": 8, "result": 2}


async def test_an_html_200_body_is_upstream_invalid_response(em: Emulator, client: ClipiaClient) -> None:
    for route, call in (("account", client.account), ("models", client.list_models),
                        ("status", lambda: client.status(UNKNOWN))):
        em.faults.add(Fault(route=route, kind="html", status=200, times=None))
        with pytest.raises(UpstreamInvalidResponse) as info:
            await call()  # type: ignore[operator]
        assert info.value.code == "upstream_invalid_response" and info.value.transient
        assert client.calls[route] == FAST.retry_max_attempts  # transient: retried, then reported
        em.faults.clear()


async def test_a_wrong_shape_is_upstream_invalid_response(client: ClipiaClient) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=["not", "an", "object"])

    odd = ClipiaClient(ApiKey("clipia_live_abcdefghijkl"), base_url=BASE, settings=FAST,
                       transport=httpx.MockTransport(handler))
    with pytest.raises(UpstreamInvalidResponse) as info:
        await odd.status(UNKNOWN, retry=False)
    assert "status" in info.value.message and info.value.request_id == UNKNOWN
    await odd.aclose()


async def test_errors_map_to_stable_codes(em: Emulator, key: Key, client: ClipiaClient) -> None:
    with pytest.raises(NotFoundError) as e1:
        await client.get_model("no-such-model")
    assert e1.value.code == "model_not_found"
    with pytest.raises(NotFoundError) as e2:
        await client.status(UNKNOWN)
    assert (e2.value.code, e2.value.request_id) == ("not_found", UNKNOWN)
    with pytest.raises(InvalidRequestError) as e3:
        await client.estimate("nano-banana-2", {})
    assert e3.value.code == "model_input_invalid" and not e3.value.transient
    em.accounts[key.account_id].balance = 1
    with pytest.raises(BillingError) as e4:
        await client.submit("nano-banana-2", {"prompt": "x"})
    assert (e4.value.code, e4.value.http_status) == ("insufficient_credits", 402)
    async with client_for(em, "clipia_live_unknownunknown12") as stranger:
        with pytest.raises(AuthenticationError) as e5:
            await stranger.account()
    assert "unknownunknown12" not in str(e5.value)
    em.faults.add(Fault(route="status", status=503, code="service_unavailable", times=None))
    with pytest.raises(ServerError) as e6:
        await client.status(UNKNOWN)
    assert e6.value.transient and client.calls["status"] == 1 + FAST.retry_max_attempts


async def test_rate_limit_is_deterministic_on_a_frozen_clock(em: Emulator, client: ClipiaClient) -> None:
    em.config.rpm = 3
    for _ in range(3):
        await client.account()
    with pytest.raises(RateLimitError) as info:
        await client.account()
    assert info.value.retry_after == 60 and info.value.code == "rate_limit_exceeded"
    assert client.rate_limit.limit == 3
    em.clock.advance(60)  # the window rolls over only when emulated time moves
    assert (await client.account()).balance["credits"] == 1000


async def test_submit_retries_reuse_one_key_and_charge_once(em: Emulator, key: Key, client: ClipiaClient) -> None:
    em.faults.add(Fault(route="submit", status=500, code="internal_error", times=2))
    sub = await client.submit("nano-banana-2", {"prompt": "x"})
    assert client.calls["submit"] == 3
    assert [r.request_id for r in em.requests.values()] == [sub.request_id]
    assert em.accounts[key.account_id].balance == 1000 - 4
    await client.submit("nano-banana-2", {"prompt": "y"}, idempotency_key="k-1")
    with pytest.raises(ConflictError) as info:  # the same key with another input
        await client.submit("nano-banana-2", {"prompt": "z"}, idempotency_key="k-1")
    assert info.value.code == "idempotency_key_reuse" and not info.value.transient


async def test_idempotency_key_expires_on_emulated_time(em: Emulator, client: ClipiaClient) -> None:
    first = await client.submit("nano-banana-2", {"prompt": "a"}, idempotency_key="order-1")
    replay = await client.submit("nano-banana-2", {"prompt": "a"}, idempotency_key="order-1")
    assert replay.request_id == first.request_id
    em.clock.advance(24 * 3600 + 1)
    fresh = await client.submit("nano-banana-2", {"prompt": "a"}, idempotency_key="order-1")
    assert fresh.request_id != first.request_id


async def test_concurrency_limit_then_a_slot_frees_on_emulated_time(em: Emulator, client: ClipiaClient) -> None:
    em.config.concurrency = 1
    once = replace(FAST, retry_max_attempts=1)
    async with client_for(em, next(iter(em.keys)), once) as c:
        await c.submit("seedance-2-fast-t2v", {"prompt": "a"})
        with pytest.raises(RateLimitError) as info:
            await c.submit("seedance-2-fast-t2v", {"prompt": "b"})
        assert info.value.code == "concurrency_limit_exceeded" and info.value.transient
        em.clock.advance(60)  # the first one finished
        assert (await c.submit("seedance-2-fast-t2v", {"prompt": "b"})).status == "IN_QUEUE"
