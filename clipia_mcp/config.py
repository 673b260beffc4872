"""Configuration from the environment and the command line.

The API key is held in :class:`ApiKey`, whose ``repr``/``str`` never show it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from clipia_mcp import constants as C
from clipia_mcp.errors import ConfigError
from clipia_mcp.redaction import fingerprint, mask, register_secret

_LOCAL_HTTP = re.compile(r"^http://(localhost|127\.0\.0\.1|\[::1\])(:\d+)?(/|$)", re.IGNORECASE)


class ApiKey:
    """A Clipia API key that refuses to be printed."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        value = value.strip()
        if not value:
            raise ConfigError("The Clipia API key is empty. Set CLIPIA_API_KEY to a clipia_live_/clipia_test_ key.")
        if not (value.startswith(C.LIVE_KEY_PREFIX) or value.startswith(C.TEST_KEY_PREFIX)):
            raise ConfigError(
                "The Clipia API key does not look like a Clipia key: it must start with "
                f"'{C.LIVE_KEY_PREFIX}' (billed) or '{C.TEST_KEY_PREFIX}' (sandbox). "
                "Copy it again from https://clipia.ai/en/developer → API keys."
            )
        register_secret(value)
        self._value = value

    def reveal(self) -> str:
        """The raw key, for the Authorization header only."""
        return self._value

    @property
    def is_test(self) -> bool:
        return self._value.startswith(C.TEST_KEY_PREFIX)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self._value)

    def __repr__(self) -> str:
        return f"ApiKey({mask(self._value)})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiKey) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:  # pickling would write the key somewhere
        raise TypeError("ApiKey cannot be pickled")


def validate_base_url(url: str) -> str:
    """Return ``url`` without a trailing slash, or raise if it would send the key in cleartext."""
    url = url.strip().rstrip("/")
    if url.lower().startswith("https://") and len(url) > len("https://"):
        return url
    if _LOCAL_HTTP.match(url):
        return url
    raise ConfigError(
        f"CLIPIA_BASE_URL must be https:// (got {url!r}); plain http is allowed only for "
        "localhost / 127.0.0.1, because the API key travels in a header."
    )


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The user's data directory for the request journal (XDG on Linux, Library on macOS)."""
    env = os.environ if environ is None else environ
    if env.get("CLIPIA_MCP_DATA_DIR"):
        return Path(env["CLIPIA_MCP_DATA_DIR"]).expanduser()
    if os.name == "nt":
        base = Path(env.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
        return base / "clipia-mcp"
    if env.get("XDG_DATA_HOME"):
        return Path(env["XDG_DATA_HOME"]) / "clipia-mcp"
    mac = Path.home() / "Library" / "Application Support"
    if mac.is_dir():
        return mac / "clipia-mcp"
    return Path.home() / ".local" / "share" / "clipia-mcp"


def _float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}.") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {value}.")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to run; build it with :meth:`from_env`."""

    api_key: ApiKey | None = None
    base_url: str = C.DEFAULT_BASE_URL
    sandbox: bool = False
    journal_path: Path | None = None  # None = in memory
    webhook_secret: str | None = field(default=None, repr=False)
    public_url: str | None = None
    http_timeout: float = C.HTTP_TIMEOUT
    retry_max_attempts: int = C.RETRY_MAX_ATTEMPTS
    retry_base_delay: float = C.RETRY_BASE_DELAY
    retry_max_delay: float = C.RETRY_MAX_DELAY
    retry_after_cap: float = C.RETRY_AFTER_CAP
    poll_min_interval: float = C.POLL_MIN_INTERVAL
    poll_max_interval: float = C.POLL_MAX_INTERVAL
    poll_budget_rpm: int = C.POLL_BUDGET_RPM
    wait_default: float = C.WAIT_DEFAULT
    wait_max: float = C.WAIT_MAX
    heartbeat_interval: float = C.HEARTBEAT_INTERVAL
    dedup_window: float = C.DEDUP_WINDOW
    sandbox_time_scale: float = 0.2
    confirm_above: int | None = C.CONFIRM_ABOVE_CREDITS  # None: never ask before a submit
    reka_api_key: str | None = field(default=None, repr=False)
    reka_base_url: str = "https://vision-agent.api.reka.ai"
    oauth_introspection_url: str | None = None
    oauth_issuer_url: str | None = None
    oauth_resource_url: str | None = None
    oauth_required_scopes: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, /, **overrides: object) -> Settings:
        """Read ``CLIPIA_*`` variables; keyword overrides (from CLI flags) win."""
        env = os.environ if environ is None else environ
        raw_key = env.get("CLIPIA_API_KEY") or env.get("CLIPIA_KEY") or ""
        api_key = ApiKey(raw_key) if raw_key.strip() else None
        base_url = validate_base_url(env.get("CLIPIA_BASE_URL") or C.DEFAULT_BASE_URL)
        journal_env = env.get("CLIPIA_MCP_JOURNAL")
        if journal_env == ":memory:":
            journal: Path | None = None
        elif journal_env:
            journal = Path(journal_env).expanduser()
        else:
            journal = default_data_dir(env) / "journal.sqlite3"
        secret = env.get("CLIPIA_WEBHOOK_SECRET") or None
        register_secret(secret)
        register_secret(env.get("REKA_API_KEY"))
        settings = cls(
            api_key=api_key,
            base_url=base_url,
            journal_path=journal,
            webhook_secret=secret,
            public_url=env.get("CLIPIA_MCP_PUBLIC_URL") or None,
            http_timeout=_float(env, "CLIPIA_MCP_HTTP_TIMEOUT", C.HTTP_TIMEOUT, 1, 600),
            poll_min_interval=_float(env, "CLIPIA_MCP_POLL_MIN", C.POLL_MIN_INTERVAL, 0.01, 60),
            poll_max_interval=_float(env, "CLIPIA_MCP_POLL_MAX", C.POLL_MAX_INTERVAL, 0.01, 600),
            poll_budget_rpm=int(_float(env, "CLIPIA_MCP_POLL_BUDGET_RPM", C.POLL_BUDGET_RPM, 1, 100_000)),
            wait_default=_float(env, "CLIPIA_MCP_WAIT_DEFAULT", C.WAIT_DEFAULT, 0.1, 3600),
            wait_max=_float(env, "CLIPIA_MCP_WAIT_MAX", C.WAIT_MAX, 0.1, 3600),
            heartbeat_interval=_float(env, "CLIPIA_MCP_HEARTBEAT", C.HEARTBEAT_INTERVAL, 0.05, 60),
            dedup_window=_float(env, "CLIPIA_MCP_DEDUP_WINDOW", C.DEDUP_WINDOW, 0, 86_400),
            retry_base_delay=_float(env, "CLIPIA_MCP_RETRY_BASE", C.RETRY_BASE_DELAY, 0, 60),
            retry_after_cap=_float(env, "CLIPIA_MCP_RETRY_AFTER_CAP", C.RETRY_AFTER_CAP, 0, 3600),
            sandbox_time_scale=_float(env, "CLIPIA_SANDBOX_TIME_SCALE", 0.2, 0.0001, 10),
            reka_api_key=env.get("REKA_API_KEY") or None,
            reka_base_url=validate_base_url(env.get("REKA_BASE_URL") or "https://vision-agent.api.reka.ai"),
            oauth_introspection_url=env.get("CLIPIA_MCP_OAUTH_INTROSPECTION_URL") or None,
            oauth_issuer_url=env.get("CLIPIA_MCP_OAUTH_ISSUER") or None,
            oauth_resource_url=env.get("CLIPIA_MCP_OAUTH_RESOURCE") or None,
            oauth_required_scopes=tuple((env.get("CLIPIA_MCP_OAUTH_SCOPES") or "").split()),
        )
        confirm = (env.get("CLIPIA_MCP_CONFIRM_ABOVE") or "").strip().lower()
        if confirm in ("off", "none", "never"):
            settings = replace(settings, confirm_above=None)
        elif confirm:
            settings = replace(settings, confirm_above=int(_float(env, "CLIPIA_MCP_CONFIRM_ABOVE", 0, 0, 10**9)))
        if overrides:
            settings = replace(settings, **overrides)  # type: ignore[arg-type]
        if settings.wait_default > settings.wait_max:
            settings = replace(settings, wait_default=settings.wait_max)
        return settings
