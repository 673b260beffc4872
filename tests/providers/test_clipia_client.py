"""providers/clipia over loopback HTTP: what needs sockets (dropped connections, timeouts); MockTransport units.

Each test that injects faults or changes limits has its own emulator (``own_emu``).
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import replace

import anyio
import httpx
import pytest
from conftest import balance_of

from clipia_mcp.core.errors import (
    AuthenticationError,
    BillingError,
    ConflictError,
    InvalidRequestError,
    NetworkError,
    NotFoundError,
    RateLimitError,
    ScopeError,
    ServerError,
    UpstreamInvalidResponse,
)
from clipia_mcp.core.settings import ApiKey, Settings
from clipia_mcp.providers.clipia.client import ClipiaClient
from clipia_mcp.sandbox import EmulatorServer, Fault

pytestmark = pytest.mark.anyio
FAST = Settings(retry_base_delay=0.001, retry_max_delay=0.01, retry_after_cap=0.05, http_timeout=5)


def client_for(emu: EmulatorServer, key: str, settings: Settings = FAST) -> ClipiaClient:
    return ClipiaClient(ApiKey(key), base_url=emu.base_url, settings=settings)


async def test_every_api_error_maps_to_a_stable_code(own_emu: EmulatorServer) -> None:
    key = own_emu.new_key(balance=1)
    async with client_for(own_emu, key.value) as c:
        with pytest.raises(BillingError) as e1:
            await c.submit("nano-banana-2", {"prompt": "x"})
        assert (e1.value.code, e1.value.http_status) == ("insufficient_credits", 402)
        with pytest.raises(NotFoundError) as e2:
            await c.get_model("no-such-model")
        assert e2.value.code == "model_not_found"
        with pytest.raises(NotFoundError) as e3:
            await c.status("764cabcf-b745-4b3e-ae38-1200304cf45b")
        assert (e3.value.code, e3.value.request_id) == ("not_found", "764cabcf-b745-4b3e-ae38-1200304cf45b")
        with pytest.raises(InvalidRequestError) as e4:
            await c.estimate("nano-banana-2", {})
        assert e4.value.code == "model_input_invalid"
    own_emu.emulator.accounts[key.account_id].subscription_active = False
    async with client_for(own_emu, key.value) as c:
        with pytest.raises(BillingError) as e5:
            await c.submit("nano-banana-2", {"prompt": "x"})
        assert e5.value.code == "subscription_required"
    async with client_for(own_emu, own_emu.new_key(scopes=("read",)).value) as c:
        with pytest.raises(ScopeError) as e6:
            await c.submit("nano-banana-2", {"prompt": "x"})
        assert e6.value.code == "insufficient_scope"
    async with client_for(own_emu, "clipia_live_not_registered_anywhere") as c:
        with pytest.raises(AuthenticationError) as e7:
            await c.account()
        assert (e7.value.code, e7.value.http_status) == ("invalid_api_key", 401)
        assert "clipia_live_not_registered_anywhere" not in str(e7.value)


async def test_conflicts_and_limits(frozen_emu: EmulatorServer) -> None:
    own_emu = frozen_emu  # the first video must still be running at the second submit, whatever the load
    key = own_emu.new_key(balance=1000)
    async with client_for(own_emu, key.value) as c:
        await c.submit("nano-banana-2", {"prompt": "a"}, idempotency_key="same")
        with pytest.raises(ConflictError) as e1:
            await c.submit("nano-banana-2", {"prompt": "b"}, idempotency_key="same")
        assert e1.value.code == "idempotency_key_reuse" and not e1.value.transient
        assert c.calls["submit"] == 2
    own_emu.emulator.config.concurrency = 1
    async with client_for(own_emu, own_emu.new_key(balance=1000).value) as c:
        await c.submit("seedance-2-fast-t2v", {"prompt": "v"})
        with pytest.raises(RateLimitError) as e2:
            await c.submit("seedance-2-fast-t2v", {"prompt": "w"})
        assert e2.value.code == "concurrency_limit_exceeded" and e2.value.transient
        assert c.calls["submit"] == 1 + FAST.retry_max_attempts  # the 429 was retried to the limit


async def test_rate_limit_retry_after_is_honoured_but_capped(own_emu: EmulatorServer) -> None:
    own_emu.emulator.faults.add(Fault(route="account", status=429, code="rate_limit_exceeded", retry_after="3600",
                                  times=2))
    async with client_for(own_emu, own_emu.new_key(balance=1000).value) as c:
        with anyio.fail_after(30):  # an uncapped Retry-After would sleep an hour
            acc = await c.account()
        assert acc.balance["credits"] == 1000
        assert c.calls["account"] == 3


@pytest.mark.parametrize("fault", [
    Fault(route="submit", kind="drop"),
    Fault(route="submit", kind="error", status=503, code="service_unavailable", retry_after="0"),
    Fault(route="submit", kind="html", status=502),
])
async def test_submit_retries_reuse_the_key_one_request_one_charge(own_emu: EmulatorServer, fault: Fault) -> None:
    key = own_emu.new_key(balance=100)
    own_emu.emulator.faults.add(fault)
    async with client_for(own_emu, key.value) as c:
        sub = await c.submit("nano-banana-2", {"prompt": "x"})
        assert c.calls["submit"] == 2
    mine = [r for r in own_emu.emulator.requests.values() if r.key == key.value]
    assert [r.request_id for r in mine] == [sub.request_id]
    assert balance_of(own_emu, key) == 96


async def test_slow_response_times_out_then_replays_same_request(own_emu: EmulatorServer) -> None:
    key = own_emu.new_key(balance=100)
    own_emu.emulator.faults.add(Fault(route="submit", kind="delay", seconds=5.0))
    settings = replace(FAST, http_timeout=1.5)
    async with client_for(own_emu, key.value, settings) as c:
        sub = await c.submit("nano-banana-2", {"prompt": "slow"})
    mine = [r for r in own_emu.emulator.requests.values() if r.key == key.value]
    assert [r.request_id for r in mine] == [sub.request_id]
    assert balance_of(own_emu, key) == 96


async def test_persistent_5xx_gives_up_with_a_transient_code(own_emu: EmulatorServer) -> None:
    own_emu.emulator.faults.add(Fault(route="status", status=500, code="internal_error", times=None))
    async with client_for(own_emu, own_emu.new_key(balance=1000).value) as c:
        with pytest.raises(ServerError) as info:
            await c.status("764cabcf-b745-4b3e-ae38-1200304cf45b")
        assert info.value.transient and info.value.code == "internal_error"
        assert c.calls["status"] == FAST.retry_max_attempts


async def test_network_error_is_transient_and_names_no_secret() -> None:
    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    key = ApiKey("clipia_live_supersecretvalue123456")
    c = ClipiaClient(key, base_url="https://api.example.test", settings=FAST, transport=httpx.MockTransport(boom))
    with pytest.raises(NetworkError) as info:
        await c.account()
    assert info.value.transient and info.value.code == "network_error"
    assert c.calls["account"] == FAST.retry_max_attempts
    assert "supersecretvalue" not in repr(c) and "supersecretvalue" not in str(info.value)
    await c.aclose()


async def test_request_headers_bearer_and_idempotency_key_sent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(500, json={"error": {"type": "api_error", "code": "internal_error", "message": "x"}})
        return httpx.Response(200, json={"request_id": "764cabcf-b745-4b3e-ae38-1200304cf45b", "status": "IN_QUEUE",
                                         "queue_position": 1, "cost": 4, "extra_field": True})

    c = ClipiaClient(ApiKey("clipia_live_abcdefghijkl"), base_url="https://api.example.test", settings=FAST,
                     transport=httpx.MockTransport(handler))
    sub = await c.submit("weird/slug x", {"prompt": "x"})
    await c.aclose()
    assert sub.cost == 4 and sub.warnings == []
    assert [r.url.raw_path for r in seen] == [b"/v1/models/weird%2Fslug%20x"] * 2
    keys = {r.headers["Idempotency-Key"] for r in seen}
    assert len(keys) == 1 and seen[0].headers["Authorization"] == "Bearer clipia_live_abcdefghijkl"


def answering(body: dict[str, object], seen: list[httpx.Request] | None = None) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(200, json=body)

    return httpx.MockTransport(handler)


RID = "764cabcf-b745-4b3e-ae38-1200304cf45b"


@pytest.mark.parametrize(("cost", "position", "expected"), [
    (10**30, -5, (None, None)),  # past any 64-bit column: unknown, not an OverflowError that loses the submit
    (True, 3.0, (None, 3)),  # a bool is not a count
    ("12", "3", (12, 3)),
    (-100, 2.5, (None, None)),
    (4, 0, (4, 0)),
])
async def test_wrong_shaped_numbers_in_a_submit_answer_are_unknown(cost: object, position: object,
                                                                  expected: tuple[int | None, int | None]) -> None:
    c = ClipiaClient(ApiKey("clipia_live_abcdefghijkl"), base_url="https://api.example.test", settings=FAST,
                     transport=answering({"request_id": RID.upper(), "status": "IN_QUEUE", "cost": cost,
                                          "queue_position": position}))
    sub = await c.submit("nano-banana-2", {"prompt": "x"})
    await c.aclose()
    assert (sub.cost, sub.queue_position) == expected
    assert sub.request_id == RID  # canonical form, as tool arguments are


@pytest.mark.parametrize(("progress", "expected"), [(1e308, 100), (-3, 0), (45.5, 45), ("50", None), (None, None)])
async def test_progress_is_a_percentage_or_unknown(progress: object, expected: int | None) -> None:
    c = ClipiaClient(ApiKey("clipia_live_abcdefghijkl"), base_url="https://api.example.test", settings=FAST,
                     transport=answering({"request_id": RID, "status": "IN_PROGRESS", "progress": progress}))
    assert (await c.status(RID)).progress == expected
    await c.aclose()


@pytest.mark.parametrize("rid", ["..", "../../v1/account", "%2e%2e/x", "abc\r\nX-Evil: 1", "x" * 2000, ""])
async def test_a_submit_answer_whose_request_id_is_not_a_uuid_is_unreadable(rid: str) -> None:
    seen: list[httpx.Request] = []
    c = ClipiaClient(ApiKey("clipia_live_abcdefghijkl"), base_url="https://api.example.test", settings=FAST,
                     transport=answering({"request_id": rid, "status": "IN_QUEUE", "cost": 4}, seen))
    with pytest.raises(UpstreamInvalidResponse) as info:
        await c.submit("nano-banana-2", {"prompt": "x"})
    await c.aclose()
    assert info.value.code == "upstream_invalid_response" and rid[:20] not in str(info.value) or rid == ""
    assert len({r.headers["Idempotency-Key"] for r in seen}) == 1  # its retries could never pay twice


BOMB = gzip.compress(b'{"account_id":"' + b"0" * (16 * 1024 * 1024) + b'"}')
BIG = b'{"a":"' + b"x" * (9 * 1024 * 1024) + b'"}'


@pytest.mark.parametrize("answer", [
    lambda: httpx.Response(200, content=BOMB, headers={"content-encoding": "gzip"}),  # 16 MiB from 16 KiB
    lambda: httpx.Response(200, content=BIG),  # declared too large
    lambda: httpx.Response(200, stream=httpx.ByteStream(BIG), headers={"transfer-encoding": "chunked"}),  # not
])
async def test_an_answer_too_large_or_compressed_is_unreadable_not_held_in_memory(
        answer: Callable[[], httpx.Response]) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer()  # a fresh one for each retry

    c = ClipiaClient(ApiKey("clipia_live_abcdefghijkl"), base_url="https://api.example.test", settings=FAST,
                     transport=httpx.MockTransport(handler))
    with pytest.raises(UpstreamInvalidResponse):
        await c.account()
    await c.aclose()
    assert seen[0].headers["accept-encoding"] == "identity"


async def test_a_compressed_error_answer_keeps_its_code_and_retry_after() -> None:
    body = gzip.compress(b'{"error":{"type":"rate_limit_error","code":"rate_limit_exceeded","message":"slow down"}}')

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, content=body, headers={"content-encoding": "gzip", "retry-after": "7"})

    c = ClipiaClient(ApiKey("clipia_live_abcdefghijkl"), base_url="https://api.example.test", settings=FAST,
                     transport=httpx.MockTransport(handler))
    with pytest.raises(RateLimitError) as info:
        await c.account()
    await c.aclose()
    assert info.value.code == "rate_limit_exceeded" and info.value.retry_after is not None
