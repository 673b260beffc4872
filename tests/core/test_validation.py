"""core/validation: every argument is checked before it touches the network or a URL path."""

from __future__ import annotations

import pytest

from clipia_mcp.core import constants as C
from clipia_mcp.core import validation as v
from clipia_mcp.core.errors import InvalidInputError
from clipia_mcp.core.timeutil import iso_seconds


def rejects(fn, *args, **kw) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError) as info:
        fn(*args, **kw)
    assert info.value.code == "invalid_input"
    return info.value.message


def test_request_id_is_a_canonical_uuid() -> None:
    assert v.request_id(" 764CABCF-B745-4B3E-AE38-1200304CF45B ") == "764cabcf-b745-4b3e-ae38-1200304cf45b"
    for bad in ("", "not-a-uuid", "../../v1/account", "764cabcf-b745-4b3e-ae38-1200304cf45bx"):
        assert "request_id must be a UUID" in rejects(v.request_id, bad)


def test_model_slug_refuses_paths_and_accepts_other_providers_exactly() -> None:
    assert v.model_slug(" nano-banana-2 ") == "nano-banana-2"
    assert v.model_slug("reka/clips", extra={"reka/clips"}) == "reka/clips"
    for bad in ("../../account", "Nano-Banana", "a b", "a/b", "", "x" * 129):
        assert "model must be a model slug" in rejects(v.model_slug, bad)


@pytest.mark.parametrize("bad", ["abc\n", "abc\r\nX-Injected: 1", "", " abc", "abc ", "a\tb", "k" * 256, "é"])
def test_idempotency_key_travels_in_a_header_so_it_is_restricted(bad: str) -> None:
    assert "idempotency_key" in rejects(v.idempotency_key, bad)


def test_idempotency_key_accepts_the_safe_set() -> None:
    assert v.idempotency_key(None) is None
    assert v.idempotency_key("job-1.a_b:c") == "job-1.a_b:c"
    assert v.idempotency_key("order 42 / retry #2") == "order 42 / retry #2"  # as lenient as the API
    assert v.idempotency_key("k" * 255) == "k" * 255


def test_generation_input_bounds() -> None:
    assert v.generation_input({"prompt": "a red fox"}) == {"prompt": "a red fox"}
    assert "JSON object" in rejects(v.generation_input, ["prompt"])
    assert "lone surrogate" in rejects(v.generation_input, {"prompt": "half \ud800 a pair"})
    assert "NaN" in rejects(v.generation_input, {"x": float("nan")})
    assert "longer than" in rejects(v.generation_input, {"prompt": "x" * (C.MAX_PROMPT_CHARS + 1)})
    assert "larger than" in rejects(v.generation_input, {"blob": "x" * (C.MAX_INPUT_BYTES + 1)})
    deep: dict[str, object] = {}
    node = deep
    for _ in range(C.MAX_INPUT_DEPTH + 1):
        node["n"] = {}
        node = node["n"]  # type: ignore[assignment]
    assert "nested deeper" in rejects(v.generation_input, deep)


@pytest.mark.parametrize(("url", "why"), [
    ("https://hooks.example.com/a\r\nX: y", "control characters"),
    ("https://hooks.example.com/a\nb", "control characters"),
    ("https://hooks.example.com/a b", "control characters"),
    ("https://user:pw@hooks.example.com/h", "user name or password"),
    ("https://user@hooks.example.com/h", "user name or password"),
    ("https://169.254.169.254/latest/meta-data", "public host"),
    ("https://10.0.0.7/hook", "public host"),
    ("https://192.168.1.1/hook", "public host"),
    ("https://[::1]/hook", "public host"),
    ("https://localhost/hook", "public host"),
    ("https://app.localhost/hook", "public host"),
    ("https://127.0.0.1/hook", "public host"),
    # The other IPv4 spellings a resolver turns into the same private addresses.
    ("https://2130706433/hook", "public host"),
    ("https://0x7f000001/hook", "public host"),
    ("https://127.1/hook", "public host"),
    ("https://0177.0.0.1/hook", "public host"),
    ("https://0/hook", "public host"),
    ("https://10.1/hook", "public host"),
    ("https://0xa9fea9fe/latest/meta-data", "public host"),
    ("http://hooks.example.com/hook", "https://"),
    ("ftp://hooks.example.com/hook", "https://"),
    ("https:///nohost", "name a host"),
    ("https://hooks.example.com:99999/h", "not a valid URL"),
    ("https://x/" + "a" * 2048, "2048"),
])
def test_webhook_url_policy_rejects(url: str, why: str) -> None:
    assert why in rejects(v.webhook_url, url)


def test_webhook_url_policy_accepts() -> None:
    assert v.webhook_url(None) is None
    assert v.webhook_url("https://hooks.example.com/clipia?x=1") == "https://hooks.example.com/clipia?x=1"
    assert v.webhook_url("https://8.8.8.8/hook") == "https://8.8.8.8/hook"
    assert v.webhook_url("https://134744072/hook") == "https://134744072/hook"  # 8.8.8.8 spelled as one number
    assert v.webhook_url("https://cafe.example/hook") == "https://cafe.example/hook"  # hex letters, not a number
    # Loopback only when the sandbox asks for it, and never a private LAN address.
    assert v.webhook_url("http://127.0.0.1:9/h", allow_loopback=True) == "http://127.0.0.1:9/h"
    assert v.webhook_url("http://localhost:9/h", allow_loopback=True) == "http://localhost:9/h"
    assert "public host" in rejects(v.webhook_url, "https://10.1.2.3/h", allow_loopback=True)
    assert "https://" in rejects(v.webhook_url, "http://127.0.0.1:9/h")


def test_status_filter() -> None:
    assert v.status_filter(None) is None
    assert v.status_filter(" completed ") == "COMPLETED"
    assert "status must be one of" in rejects(v.status_filter, "DONE")


@pytest.mark.parametrize(("value", "end", "iso"), [
    ("2026-11-24", False, "2026-11-24T00:00:00Z"),
    ("2026-11-24", True, "2026-11-25T00:00:00Z"),  # an end date includes its whole day
    ("1970-01-01", False, "1970-01-01T00:00:00Z"),  # the epoch is a time, not "no time"
    ("9999-12-31", True, "9999-12-31T23:59:59Z"),  # the last day: no day after it to end at
    ("9999-12-31T23:00:00-14:00", True, "9999-12-31T23:59:59Z"),
    ("0001-01-01", False, "1970-01-01T00:00:00Z"),
    ("0001-01-01T00:00:00+14:00", False, "1970-01-01T00:00:00Z"),
])
def test_time_bounds_past_either_end_of_the_calendar_are_clamped(value: str, end: bool, iso: str) -> None:
    bound = v.time_bound(value, "until" if end else "since", end=end)
    assert iso_seconds(bound) == iso


def test_time_bound_rejects_what_is_not_a_time() -> None:
    assert v.time_bound(None, "since") is None and v.time_bound(" ", "since") is None
    assert "since must be a date" in rejects(v.time_bound, "2026-13-01", "since")
    assert "until must be a date" in rejects(v.time_bound, "yesterday", "until", end=True)
