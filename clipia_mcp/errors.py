"""One small exception tree with stable machine codes.

Codes mirror the Clipia API's error envelope (``insufficient_credits``,
``rate_limit_exceeded``, ...) so an agent can branch on them. Locally detected
problems use codes of our own (``invalid_input``, ``config_error``,
``network_error``). Messages never contain the API key: every message that
could echo user or server text goes through :func:`clipia_mcp.redaction.redact`.
"""

from __future__ import annotations

from typing import Any

from clipia_mcp.constants import TRANSIENT_HTTP_STATUSES
from clipia_mcp.redaction import redact


class ClipiaMcpError(Exception):
    """Base of every error this package raises on purpose."""

    default_code = "error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
    ) -> None:
        self.code = code or self.default_code
        self.message = redact(message)
        self.http_status = http_status
        self.retry_after = retry_after
        self.request_id = request_id
        super().__init__(f"{self.code}: {self.message}")

    @property
    def transient(self) -> bool:
        """True when the same call may succeed if retried later."""
        return False

    def to_dict(self) -> dict[str, Any]:
        """The machine-readable form returned to MCP clients."""
        data: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.http_status is not None:
            data["http_status"] = self.http_status
        if self.retry_after is not None:
            data["retry_after"] = round(self.retry_after, 3)
        if self.request_id is not None:
            data["request_id"] = self.request_id
        return data


class ConfigError(ClipiaMcpError):
    """Bad configuration (missing or malformed key, insecure base URL)."""

    default_code = "config_error"


class InvalidInputError(ClipiaMcpError):
    """Arguments rejected locally, before any upstream call."""

    default_code = "invalid_input"


class NotTrackedError(ClipiaMcpError):
    """A request id this server (or this caller) does not know and the API does not either."""

    default_code = "not_found"


class NetworkError(ClipiaMcpError):
    """The API could not be reached or the connection broke."""

    default_code = "network_error"

    @property
    def transient(self) -> bool:
        return True


class ApiError(ClipiaMcpError):
    """A non-2xx answer from the Clipia API."""

    default_code = "api_error"

    @property
    def transient(self) -> bool:
        return self.http_status in TRANSIENT_HTTP_STATUSES


class AuthenticationError(ApiError):
    default_code = "invalid_api_key"


class BillingError(ApiError):
    default_code = "insufficient_credits"


class ScopeError(ApiError):
    default_code = "insufficient_scope"


class NotFoundError(ApiError):
    default_code = "not_found"


class ConflictError(ApiError):
    default_code = "idempotency_key_reuse"

    @property
    def transient(self) -> bool:
        return self.code == "request_in_progress"


class InvalidRequestError(ApiError):
    default_code = "invalid_request"


class RateLimitError(ApiError):
    default_code = "rate_limit_exceeded"


class ServerError(ApiError):
    default_code = "internal_error"


_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    402: BillingError,
    403: ScopeError,
    404: NotFoundError,
    409: ConflictError,
    422: InvalidRequestError,
    429: RateLimitError,
}

_DEFAULT_CODES: dict[int, str] = {
    400: "invalid_request",
    401: "invalid_api_key",
    402: "insufficient_credits",
    403: "insufficient_scope",
    404: "not_found",
    409: "idempotency_key_reuse",
    422: "model_input_invalid",
    429: "rate_limit_exceeded",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


def api_error_from(
    status: int, code: str, message: str, *, retry_after: float | None = None, request_id: str | None = None
) -> ApiError:
    """Map an HTTP status and envelope code onto the tree; missing codes get a stable default."""
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    final_code = code or _DEFAULT_CODES.get(status, "api_error")
    text = message or f"The Clipia API answered HTTP {status}."
    return cls(text, code=final_code, http_status=status, retry_after=retry_after, request_id=request_id)
