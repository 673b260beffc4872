"""core/settings, redaction and errors: keys never leak, settings validate, errors are machine-readable."""

from __future__ import annotations

import logging

import pytest

from clipia_mcp.core.errors import ClipiaMcpError, ConfigError, RateLimitError
from clipia_mcp.core.redaction import RedactingFilter
from clipia_mcp.core.settings import ApiKey, Settings, validate_base_url


def test_config_key_checks_and_https_only() -> None:
    with pytest.raises(ConfigError) as info:
        ApiKey("sk-live-1234567890")
    assert "clipia_live_" in info.value.message and "sk-live-1234567890" not in info.value.message
    key = ApiKey("clipia_test_0123456789abcdef")
    assert key.is_test and "0123456789abcdef" not in repr(key) and "0123456789abcdef" not in str(key)
    assert validate_base_url("http://127.0.0.1:8787/") == "http://127.0.0.1:8787"
    assert validate_base_url("https://api.clipia.ai") == "https://api.clipia.ai"
    for bad in ("http://api.clipia.ai", "http://localhost.evil.com", "ftp://x"):
        with pytest.raises(ConfigError):
            validate_base_url(bad)
    s = Settings.from_env({"CLIPIA_KEY": "clipia_live_fromalias12345", "CLIPIA_MCP_JOURNAL": ":memory:"})
    assert s.api_key is not None and s.api_key.reveal() == "clipia_live_fromalias12345"
    assert "fromalias" not in repr(s)
    with pytest.raises(ConfigError):
        Settings.from_env({"CLIPIA_MCP_POLL_MIN": "fast"})


def test_log_filter_redacts_keys(caplog: pytest.LogCaptureFixture) -> None:
    ApiKey("clipia_live_loggedsecret9876")
    logger = logging.getLogger("clipia_mcp.test")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO):
        logger.info("calling with %s", "clipia_live_loggedsecret9876")
    assert "loggedsecret" not in caplog.text and "[REDACTED]" in caplog.text


def test_error_to_dict_is_machine_readable() -> None:
    err = RateLimitError("slow down", http_status=429, retry_after=1.5, request_id="r")
    assert err.to_dict() == {"code": "rate_limit_exceeded", "message": "slow down", "http_status": 429,
                             "retry_after": 1.5, "request_id": "r"}
    assert isinstance(err, ClipiaMcpError)
