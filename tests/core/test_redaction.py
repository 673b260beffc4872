"""core/redaction: a secret never leaves the process whole, in part, base64-encoded, or inside a traceback."""

from __future__ import annotations

import base64
import logging

import pytest

from clipia_mcp.core.errors import ConfigError, api_error_from
from clipia_mcp.core.records import GenerationError
from clipia_mcp.core.redaction import RedactingFilter, redact, register_secret
from clipia_mcp.core.settings import ApiKey, Settings
from clipia_mcp.core.upstream import AccountResponse, StatusResponse

KEY = "clipia_live_CANARYredactionKEY0123456789"
REKA = "reka_CANARYrekaSECRET98765"
register_secret(KEY)
register_secret(REKA)


@pytest.mark.parametrize("echo", [
    KEY,
    KEY.removeprefix("clipia_live_"),  # the body without its prefix
    KEY[-16:],  # a tail
    REKA[3:18],  # a middle
    base64.b64encode(f"Bearer {KEY}".encode()).decode(),  # an encoded Authorization header
    base64.b64encode(f"x{KEY}yz".encode()).decode(),  # the key inside other encoded bytes
])
def test_any_run_of_a_secret_is_masked(echo: str) -> None:
    text = redact(f"upstream said: {echo}!")
    assert "[REDACTED]" in text and text.startswith("upstream said: ") and text.endswith("!")
    for i in range(len(KEY) - 11):
        assert KEY[i:i + 12] not in text


def test_ordinary_text_is_left_alone() -> None:
    text = "Could not reach the Clipia API at https://api.clipia.ai (ConnectError: connection refused)."
    assert redact(text) == text


def test_a_traceback_in_a_log_record_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("clipia_mcp.test_redaction")
    log.addFilter(RedactingFilter())
    try:
        raise RuntimeError(f"unexpected state for key {KEY}")
    except RuntimeError:
        log.exception("crashed")
    assert KEY not in caplog.text and "[REDACTED]" in caplog.text


def test_upstream_codes_types_and_words_cannot_carry_a_secret() -> None:
    err = api_error_from(400, f"bad_{KEY}", "rejected", error_type=f"auth:Bearer {KEY}")
    assert (err.code, err.error_type) == ("invalid_request", None)
    assert KEY not in str(err.to_dict())
    assert api_error_from(400, "model_input_invalid", "x", error_type="invalid_request_error").code == \
        "model_input_invalid"
    assert KEY not in GenerationError(code="E", message=f"worker saw Bearer {KEY}").message
    assert KEY not in StatusResponse(request_id="r", status=f"WEIRD_{KEY}").status
    assert KEY not in str(AccountResponse(account_id=f"acc_{KEY}").account_id)


@pytest.mark.parametrize(("env", "said"), [
    ({"CLIPIA_API_KEY": "clipia_live_CANARYnewline\nabcdef1234567890"}, "line breaks"),
    ({"CLIPIA_BASE_URL": "https://user:URLPASSCANARY99@127.0.0.1:1"}, "user name or password"),
    ({"CLIPIA_MCP_STORE": "mysql://u:PGCANARYPASS123@127.0.0.1:1/db"}, "file path or a postgresql://"),
    ({"CLIPIA_MCP_STORE": "host=127.0.0.1 user=u password=PGCANARYPASS123 dbname=db"}, "key=value"),
])
def test_settings_that_would_echo_a_secret_are_refused_without_it(env: dict[str, str], said: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert said in info.value.message
    for canary in ("CANARYnewline", "abcdef1234567890", "URLPASSCANARY99", "PGCANARYPASS123"):
        assert canary not in info.value.message
    if "CLIPIA_BASE_URL" in env:  # the password was registered on the way: a later echo is masked too
        assert "URLPASSCANARY99" not in redact("at https://user:URLPASSCANARY99@host")


@pytest.mark.parametrize("url", ["POSTGRESQL://u:PGCANARY2@db/x", "postgresql+psycopg://u:PGCANARY2@db/x",
                                 "postgres://u:PGCANARY2@db/x"])
def test_every_spelling_of_a_postgresql_url_is_one(url: str) -> None:
    assert Settings.from_env({"CLIPIA_MCP_STORE": url}).store_url == "postgresql://u:PGCANARY2@db/x"
    assert ApiKey(KEY).reveal() == KEY
