"""The emulator and the client against shapes read from the API contract, not from the emulator itself.

Sources: ``shared/reference/clipia-api.md`` (the contract) and ``shared/reference/source-docs/`` (the original
pages). Each test parses the shape it checks from there, so a change of the contract breaks it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from clipia_mcp.core import validation as check
from clipia_mcp.core.errors import InvalidInputError
from clipia_mcp.sandbox import EmulatorServer
from clipia_mcp.sandbox.catalogue import MODELS

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference"
CONTRACT = REFERENCE / "clipia-api.md"
STATUS_PAGE = REFERENCE / "source-docs" / "clipia-request-status.txt"
pytestmark = pytest.mark.skipif(not CONTRACT.exists(), reason=f"the API contract is not at {CONTRACT}")


def section(number: str) -> str:
    """The text of ``## <number>.`` (or ``### <number>``) up to the next heading of the same level."""
    text = CONTRACT.read_text()
    level = "###" if "." in number else "##"
    start = re.search(rf"^{level} {re.escape(number)}[. ]", text, re.M)
    assert start, f"section {number} not in the contract"
    end = re.search(rf"^{level} ", text[start.end():], re.M)
    return text[start.start(): start.end() + (end.start() if end else len(text))]


def test_in_progress_status_logs_are_empty_like_the_status_page(emu: EmulatorServer) -> None:
    page = STATUS_PAGE.read_text()
    example = json.loads(re.search(r"Response 200\s*(\{.*?\})", page, re.S).group(1))  # type: ignore[union-attr]
    assert example["status"] == "IN_PROGRESS"
    emu.emulator.config.time_scale = 1.0  # a real-time render: it stays IN_PROGRESS while we look
    key = emu.new_key()
    auth = {"Authorization": f"Key {key.value}"}
    rid = httpx.post(f"{emu.base_url}/v1/models/nano-banana-2", headers=auth,
                     json={"input": {"prompt": "slow"}}).json()["request_id"]
    req = emu.emulator.requests[rid]
    emu.emulator.clock.offset += req.queue_s + req.progress_s / 2  # mid-render, on the injectable clock
    body = httpx.get(f"{emu.base_url}/v1/requests/{rid}/status", headers=auth).json()
    assert body["status"] == "IN_PROGRESS", body
    assert set(example) <= set(body)
    assert body["logs"] == example["logs"] == []


def test_rate_limit_429_carries_the_ratelimit_headers(emu: EmulatorServer) -> None:
    names = re.findall(r"`(RateLimit-[A-Za-z]+)`", section("9"))
    assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(names)
    emu.emulator.config.rpm = 2
    key = emu.new_key()
    auth = {"Authorization": f"Key {key.value}"}
    answers = [httpx.get(f"{emu.base_url}/v1/account", headers=auth) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    limited = answers[-1]
    assert limited.json()["error"]["type"] == "rate_limit_error" and limited.headers["Retry-After"]
    for name in names:
        assert name in limited.headers, (name, dict(limited.headers))
    assert limited.headers["RateLimit-Remaining"] == "0"
    for answer in answers[:2]:  # "on every response"
        assert all(name in answer.headers for name in names)


def _multiplier_shape_ok(multipliers: Any) -> bool:
    """``Record<param, Record<value, number>>``."""
    return isinstance(multipliers, dict) and all(
        isinstance(table, dict) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                        for v in table.values())
        for table in multipliers.values())


def test_pricing_multipliers_keep_the_documented_shape(emu: EmulatorServer) -> None:
    pricing = section("12.2")
    assert "Record<param, Record<value, number>>" in pricing
    example = json.loads(re.search(r'`(\{"resolution": \{.*?\}\})`', pricing).group(1))  # type: ignore[union-attr]
    assert _multiplier_shape_ok(example)
    for model in MODELS:
        multipliers = model.get("pricing", {}).get("multipliers")
        if multipliers is not None:
            assert _multiplier_shape_ok(multipliers), (model["slug"], multipliers)
    key = emu.new_key()
    served = httpx.get(f"{emu.base_url}/v1/models", headers={"Authorization": f"Key {key.value}"}).json()
    for model in served.get("models", served.get("data", [])):
        multipliers = (model.get("pricing") or {}).get("multipliers")
        if multipliers is not None:
            assert _multiplier_shape_ok(multipliers), (model.get("slug"), multipliers)


def test_idempotency_keys_are_checked_no_stricter_than_the_api() -> None:
    idem = section("10")
    limit = int(re.search(r"up\s+to a sane length \(e\.g\. (\d+)\)", idem).group(1))  # type: ignore[union-attr]
    documented = re.findall(r"e\.g\. `([^`]+)` or `([^`]+)`", idem)[0]  # the SDK sends any string, e.g. ...
    for key in (*documented, "user/42 retry #1", "a" * limit, "Ünïcode".encode("ascii", "ignore").decode()):
        assert check.idempotency_key(key) == key
    for bad in ("", "a" * (limit + 1), "line\nbreak", " padded "):
        with pytest.raises(InvalidInputError):
            check.idempotency_key(bad)
