"""Configuration from the environment and the command line.

The API key is held in :class:`ApiKey`, whose ``repr``/``str`` never show it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from clipia_mcp.core import constants as C
from clipia_mcp.core.errors import ConfigError
from clipia_mcp.core.redaction import fingerprint, mask, register_secret

_LOCAL_HTTP = re.compile(r"^http://(localhost|127\.0\.0\.1|\[::1\])(:\d+)?(/|$)", re.IGNORECASE)


class ApiKey:
    """A Clipia API key that refuses to be printed."""

    __slots__ = ("_value",)

    def __init__(self, value: str, *, register: bool = True) -> None:
        """``register=False``: a credential from an untrusted caller, registered as a secret only once the
        API confirmed it (an invented key must not cost the redaction registry memory)."""
        value = value.strip()
        if not value:
            raise ConfigError("The Clipia API key is empty. Set CLIPIA_API_KEY to a clipia_live_/clipia_test_ key.")
        if not (value.startswith(C.LIVE_KEY_PREFIX) or value.startswith(C.TEST_KEY_PREFIX)):
            raise ConfigError(
                "The Clipia API key does not look like a Clipia key: it must start with "
                f"'{C.LIVE_KEY_PREFIX}' (billed) or '{C.TEST_KEY_PREFIX}' (sandbox). "
                "Copy it again from https://clipia.ai/en/developer → API keys."
            )
        if register:
            register_secret(value)
        if any(c.isspace() or not c.isprintable() for c in value):  # would break (and echo) the header
            raise ConfigError("The Clipia API key contains spaces, line breaks or control characters; copy it again "
                              "from https://clipia.ai/en/developer → API keys.")
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


def store_url(raw: str) -> str | None:
    """``CLIPIA_MCP_STORE`` / ``--store``: a SQLite path, or a PostgreSQL URL with its scheme written
    ``postgresql://`` (any case, ``postgres://`` or ``postgresql+<driver>://`` accepted). Its password is
    registered as a secret first; no error repeats the value (it may hold one)."""
    value = raw.strip()
    if not value:
        return None
    scheme, sep, rest = value.partition("://")
    if sep:
        _register_password(rest)  # up to the last "@": a password may hold an unescaped "/"
        if scheme.lower().split("+")[0] not in ("postgresql", "postgres"):
            raise ConfigError("CLIPIA_MCP_STORE must be a file path or a postgresql:// URL; its scheme is neither.")
        return f"postgresql://{rest}"
    if re.search(r"(^|\s)(host|dbname|user|password|port)\s*=", value):
        register_secret(re.sub(r".*password\s*=\s*(\S+).*", r"\1", value, flags=re.S) if "password" in value else None)
        raise ConfigError("CLIPIA_MCP_STORE looks like a key=value connection string; write it as a "
                          "postgresql://user:password@host/dbname URL.")
    return value


def _register_password(after_scheme: str) -> None:
    """Register the password of a URL's ``user:password@`` part (``after_scheme``: what follows ``://``)."""
    register_secret(after_scheme.rpartition("@")[0].partition(":")[2])


def validate_base_url(url: str) -> str:
    """Return ``url`` without a trailing slash, or raise if it would send the key in cleartext."""
    url = url.strip().rstrip("/")
    authority = url.partition("://")[2].partition("/")[0]
    if "@" in authority:
        _register_password(authority)
        raise ConfigError("An API base URL must not contain a user name or password (the API key is the "
                          "credential); remove the part before '@'.")
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


def default_output_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The user's media folder for saved outputs: ``~/Pictures/Clipia`` (``XDG_PICTURES_DIR`` when set)."""
    env = os.environ if environ is None else environ
    pictures = env.get("XDG_PICTURES_DIR")
    base = Path(pictures).expanduser() if pictures else Path(env.get("HOME") or Path.home()) / "Pictures"
    return base / "Clipia"


def _output_dir(env: Mapping[str, str]) -> tuple[bool | None, Path | None]:
    """``CLIPIA_MCP_OUTPUT_DIR``: a path (on), ``off`` (never save), unset/``auto`` (by transport)."""
    raw = (env.get("CLIPIA_MCP_OUTPUT_DIR") or "").strip()
    if raw.lower() in ("", "auto"):
        return None, None
    if raw.lower() in ("off", "none", "0", "false", "no"):
        return False, None
    if raw.lower() in ("on", "1", "true", "yes"):
        return True, None
    return True, Path(raw).expanduser()


AUTH_MODES = ("auto", "none", "caller-key", "token", "oauth")


def _switch(env: Mapping[str, str], name: str) -> bool | None:
    raw = (env.get(name) or "").strip().lower()
    if raw in ("", "auto"):
        return None
    if raw in ("1", "on", "true", "yes"):
        return True
    if raw in ("0", "off", "false", "no"):
        return False
    raise ConfigError(f"{name} must be on, off or auto, got {raw!r}.")


def _list(raw: str | None) -> tuple[str, ...]:
    return tuple(x.strip() for x in (raw or "").split(",") if x.strip())


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


def _limit(env: Mapping[str, str], name: str) -> int | None:
    """A credit limit: unset, empty or ``off`` means none."""
    raw = (env.get(name) or "").strip().lower()
    if raw in ("", "off", "none"):
        return None
    return int(_float(env, name, 0, 0, 10**12))


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
    #: With webhooks on (public_url + webhook_secret), seconds between fallback polls of a request (doubling).
    webhook_fallback_interval: float = C.WEBHOOK_FALLBACK_INTERVAL
    wait_default: float = C.WAIT_DEFAULT
    #: The deadline of one tool call (retries, Retry-After and waits included), below hosts' ~60 s timeout.
    call_deadline: float = C.CALL_DEADLINE
    #: How long a submit may wait in the admission queue before it expires unsent.
    submit_queue_ttl: float = C.SUBMIT_QUEUE_TTL
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
    oauth_client_id: str | None = None
    oauth_client_secret: str | None = field(default=None, repr=False)
    #: Static bearer tokens for ``--auth token`` (each its own tenant).
    tokens: tuple[str, ...] = field(default=(), repr=False)
    #: Clients known to reset their tool timeout on progress (lower-case name prefixes).
    long_wait_clients: tuple[str, ...] = C.LONG_WAIT_CLIENTS
    #: Extra Host / Origin values allowed by DNS-rebinding protection.
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    #: HTTP auth mode: auto, none, caller-key, token, oauth.
    auth: str = "auto"
    #: Inline image previews in results: None = auto (on for stdio desktop use, off for HTTP hosting).
    previews: bool | None = None
    #: Save finished outputs locally: None = auto (on for stdio desktop use, off for HTTP hosting).
    save_outputs: bool | None = None
    #: Where outputs are saved (None: the user's media folder, :func:`default_output_dir`).
    output_dir: Path | None = None
    #: Forget finished requests (prompts, results, tasks, file records) after this many days; None keeps them.
    retention_days: float | None = None
    #: Where durable state lives: a SQLite path (the journal) or a ``postgresql://`` URL.
    store_url: str | None = field(default=None, repr=False)
    #: Seconds a replica's poll lease lasts unless renewed (a dead replica's requests move on after this).
    lease_ttl: float = C.LEASE_TTL
    #: Spend limits (credits, from the estimate before the paid call); None = no limit. The per-call limit
    #: applies to every billed caller, the tenant caps to tenants sharing the operator's key (token/OAuth).
    max_cost_per_call: int | None = None
    tenant_daily_credits: int | None = None
    tenant_monthly_credits: int | None = None
    #: HTTP hosting: a request's headers and body must arrive within this; sessions are bounded and reaped.
    request_read_timeout: float = C.REQUEST_READ_TIMEOUT
    max_sessions: int = C.MAX_HTTP_SESSIONS
    #: Of those, how many one authenticated caller (a key, a token, an OAuth principal) may hold at once.
    max_sessions_per_caller: int = C.MAX_HTTP_SESSIONS_PER_CALLER
    session_idle_timeout: float = C.SESSION_IDLE_TIMEOUT

    def for_transport(self, transport: str) -> Settings:
        """Settings with the transport's defaults filled in (previews and saved outputs: on for stdio, off for HTTP)."""
        settings = self
        if settings.previews is None:
            settings = replace(settings, previews=transport == "stdio")
        if settings.save_outputs is None:
            settings = replace(settings, save_outputs=transport == "stdio")
        if settings.save_outputs and settings.output_dir is None:
            settings = replace(settings, output_dir=default_output_dir())
        return settings

    @property
    def sandbox_dir(self) -> Path | None:
        """Where the embedded sandbox keeps its key, requests and port (beside the journal; None in memory)."""
        return self.journal_path.parent / "sandbox" if self.journal_path is not None else None

    @property
    def wait_max(self) -> float:
        """The longest inline wait: the call deadline less a margin for building the answer."""
        return max(0.05, self.call_deadline - min(2.0, self.call_deadline * 0.1))

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
            webhook_fallback_interval=_float(env, "CLIPIA_MCP_WEBHOOK_FALLBACK", C.WEBHOOK_FALLBACK_INTERVAL,
                                             0.01, 86_400),
            wait_default=_float(env, "CLIPIA_MCP_WAIT_DEFAULT", C.WAIT_DEFAULT, 0.1, 3600),
            call_deadline=_float(env, "CLIPIA_MCP_DEADLINE", _float(env, "CLIPIA_MCP_WAIT_MAX", C.CALL_DEADLINE,
                                                                    0.1, 3600), 0.1, 3600),
            submit_queue_ttl=_float(env, "CLIPIA_MCP_SUBMIT_QUEUE_TTL", C.SUBMIT_QUEUE_TTL, 1, 86_400),
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
            oauth_client_id=env.get("CLIPIA_MCP_OAUTH_CLIENT_ID") or None,
            oauth_client_secret=env.get("CLIPIA_MCP_OAUTH_CLIENT_SECRET") or None,
            tokens=_list(env.get("CLIPIA_MCP_TOKENS")),
            long_wait_clients=tuple(x.lower() for x in _list(env.get("CLIPIA_MCP_LONG_WAIT_CLIENTS")))
            if env.get("CLIPIA_MCP_LONG_WAIT_CLIENTS") is not None else C.LONG_WAIT_CLIENTS,
            allowed_hosts=_list(env.get("CLIPIA_MCP_ALLOWED_HOSTS")),
            allowed_origins=_list(env.get("CLIPIA_MCP_ALLOWED_ORIGINS")),
            auth=(env.get("CLIPIA_MCP_AUTH") or "auto").strip().lower(),
            store_url=env.get("CLIPIA_MCP_STORE") or None,
            lease_ttl=_float(env, "CLIPIA_MCP_LEASE_TTL", C.LEASE_TTL, 0.2, 10),
            previews=_switch(env, "CLIPIA_MCP_PREVIEWS"),
            max_cost_per_call=_limit(env, "CLIPIA_MCP_MAX_COST_PER_CALL"),
            tenant_daily_credits=_limit(env, "CLIPIA_MCP_TENANT_DAILY_CREDITS"),
            tenant_monthly_credits=_limit(env, "CLIPIA_MCP_TENANT_MONTHLY_CREDITS"),
            request_read_timeout=_float(env, "CLIPIA_MCP_READ_TIMEOUT", C.REQUEST_READ_TIMEOUT, 0.1, 3600),
            max_sessions=int(_float(env, "CLIPIA_MCP_MAX_SESSIONS", C.MAX_HTTP_SESSIONS, 1, 1_000_000)),
            max_sessions_per_caller=int(_float(env, "CLIPIA_MCP_MAX_SESSIONS_PER_CALLER",
                                               C.MAX_HTTP_SESSIONS_PER_CALLER, 1, 1_000_000)),
            session_idle_timeout=_float(env, "CLIPIA_MCP_SESSION_IDLE", C.SESSION_IDLE_TIMEOUT, 1, 86_400),
        )
        retention = (env.get("CLIPIA_MCP_RETENTION_DAYS") or "").strip().lower()
        if retention not in ("", "off", "none", "forever"):
            settings = replace(settings, retention_days=_float(env, "CLIPIA_MCP_RETENTION_DAYS", 0, 0.001, 100_000))
        save, out_dir = _output_dir(env)
        settings = replace(settings, save_outputs=save, output_dir=out_dir)
        for token in settings.tokens:
            register_secret(token)
        register_secret(settings.oauth_client_secret)
        confirm = (env.get("CLIPIA_MCP_CONFIRM_ABOVE") or "").strip().lower()
        if confirm in ("off", "none", "never"):
            settings = replace(settings, confirm_above=None)
        elif confirm:
            settings = replace(settings, confirm_above=int(_float(env, "CLIPIA_MCP_CONFIRM_ABOVE", 0, 0, 10**9)))
        if overrides:
            settings = replace(settings, **overrides)  # type: ignore[arg-type]
        if settings.store_url is not None:  # after the overrides: --store is checked the same way
            settings = replace(settings, store_url=store_url(settings.store_url))
        if settings.wait_default > settings.wait_max:
            settings = replace(settings, wait_default=settings.wait_max)
        if settings.auth not in AUTH_MODES:
            raise ConfigError(f"CLIPIA_MCP_AUTH must be one of {', '.join(AUTH_MODES)}, got {settings.auth!r}.")
        return settings
