"""One small exception tree with stable machine codes.

Every class says what the MCP client receives: an ``isError`` tool result whose error object
carries ``code`` (stable, documented in :data:`ERROR_CODES`), ``message``, and when known
``retry_after``, ``http_status``, ``request_id`` and the API envelope's ``type``. Codes from the
Clipia API are passed through unchanged; locally detected problems use codes of our own.
Messages never contain a secret: every message goes through :func:`clipia_mcp.core.redaction.redact`.
"""

from __future__ import annotations

import re
from typing import Any

from clipia_mcp.core.constants import TRANSIENT_HTTP_STATUSES
from clipia_mcp.core.redaction import redact

#: Every ``error.code`` a client can receive, with what it means. README and tests read this list.
ERROR_CODES: dict[str, str] = {
    # from the Clipia API (passed through)
    "invalid_request": "The API rejected the request as malformed.",
    "model_input_invalid": "The input does not fit the model; fix it (get_model lists the parameters).",
    "webhook_url_invalid": "The API rejected the webhook URL.",
    "invalid_api_key": "The API key is missing, wrong or revoked.",
    "insufficient_credits": "The balance is below the price.",
    "subscription_required": "The model needs an active Clipia plan.",
    "insufficient_scope": "The API key lacks a needed scope.",
    "not_found": "No such request for this caller.",
    "model_not_found": "No such model slug.",
    "idempotency_key_reuse": "The idempotency key was used with another input.",
    "request_in_progress": "The same submit is still being processed; retry shortly.",
    "rate_limit_exceeded": "Too many requests; retry after retry_after seconds.",
    "concurrency_limit_exceeded": "Too many generations in flight; retry when one finishes.",
    "internal_error": "The API failed; retry with backoff.",
    "service_unavailable": "The API (or its gateway) is temporarily unavailable; retry with backoff.",
    "api_error": "The API answered an error without a code.",
    # ours
    "invalid_input": "Arguments rejected locally, before any upstream call.",
    "config_error": "The server is misconfigured (key, URLs, auth).",
    "network_error": "The API could not be reached, or the connection broke.",
    "upstream_invalid_response": "The API answered something unreadable; retry.",
    "journal_error": "The journal (SQLite or PostgreSQL) failed; nothing was submitted after the failure.",
    "submit_pending": "The submit's outcome is not known yet; it stays deduplicated and is resolved later.",
    "confirmation_required": "The cost needs the user's confirmation: call again with confirm_cost=true.",
    "cost_declined": "The user declined the cost; nothing was submitted.",
    "spend_limit_exceeded": "The call would exceed a spend limit set by the operator.",
    "deadline_exceeded": "The call reached its deadline before the API answered; call again.",
    "internal_server_error": "An unexpected failure inside this server; the message has a reference.",
}


class ClipiaMcpError(Exception):
    """Base of every error this package raises on purpose; the client receives ``code`` and ``message``."""

    default_code = "error"
    #: The same call may succeed later (retries, polling and agents use this).
    always_transient = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
        error_type: str | None = None,
    ) -> None:
        self.code = code or self.default_code
        self.error_type = error_type or None
        self.message = redact(message)
        self.http_status = http_status
        self.retry_after = retry_after
        self.request_id = request_id
        super().__init__(f"{self.code}: {self.message}")

    @property
    def transient(self) -> bool:
        """True when the same call may succeed if retried later."""
        return self.always_transient

    def to_dict(self) -> dict[str, Any]:
        """The machine-readable form returned to MCP clients."""
        data: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.http_status is not None:
            data["http_status"] = self.http_status
        if self.retry_after is not None:
            data["retry_after"] = round(self.retry_after, 3)
        if self.request_id is not None:
            data["request_id"] = self.request_id
        if self.error_type is not None:
            data["type"] = self.error_type
        return data


class ConfigError(ClipiaMcpError):
    """Bad configuration (missing or malformed key, insecure URL): the client receives ``config_error``."""

    default_code = "config_error"


class InvalidInputError(ClipiaMcpError):
    """Arguments rejected before any upstream call: the client receives ``invalid_input`` naming the field."""

    default_code = "invalid_input"


class StoreError(ClipiaMcpError):
    """The journal could not be read or written: the client receives ``journal_error`` (transient).

    The message names the store and the cause, never a password.
    """

    default_code = "journal_error"
    always_transient = True


class NotTrackedError(ClipiaMcpError):
    """A request id unknown to this caller (and to the API): the client receives ``not_found``."""

    default_code = "not_found"


class NetworkError(ClipiaMcpError):
    """The API could not be reached or the connection broke: ``network_error`` (transient), naming the host."""

    default_code = "network_error"
    always_transient = True


class UpstreamInvalidResponse(ClipiaMcpError):
    """The API answered something unreadable (HTML, wrong shape): ``upstream_invalid_response`` (transient)."""

    default_code = "upstream_invalid_response"
    always_transient = True


class SubmitPending(ClipiaMcpError):
    """A submit whose outcome is unknown within the call's deadline: ``submit_pending`` (transient).

    The intent and its idempotency key are durable; the same submit stays deduplicated until
    the journal's recovery (or a later call) learns its request id. Nothing is paid twice.
    """

    default_code = "submit_pending"
    always_transient = True


class SpendLimitExceeded(ClipiaMcpError):
    """The estimate exceeds a spend limit set by the operator: ``spend_limit_exceeded``, nothing is submitted.

    ``remaining_credits`` (what the limit still allows) and ``limit`` (which one) reach the client.
    """

    default_code = "spend_limit_exceeded"

    def __init__(self, message: str, *, remaining: int, limit: str) -> None:
        super().__init__(message)
        self.remaining = remaining
        self.limit = limit

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "remaining_credits": self.remaining, "limit": self.limit}


class ApiError(ClipiaMcpError):
    """A non-2xx answer from the API: the client receives the API's own ``code`` and ``type``."""

    default_code = "api_error"

    @property
    def transient(self) -> bool:
        return self.http_status in TRANSIENT_HTTP_STATUSES


class AuthenticationError(ApiError):
    """HTTP 401: ``invalid_api_key``."""

    default_code = "invalid_api_key"


class BillingError(ApiError):
    """HTTP 402: ``insufficient_credits`` or ``subscription_required``."""

    default_code = "insufficient_credits"


class ScopeError(ApiError):
    """HTTP 403: ``insufficient_scope``."""

    default_code = "insufficient_scope"


class NotFoundError(ApiError):
    """HTTP 404: ``not_found`` or ``model_not_found``."""

    default_code = "not_found"


class ConflictError(ApiError):
    """HTTP 409: ``idempotency_key_reuse``, or ``request_in_progress`` (transient)."""

    default_code = "idempotency_key_reuse"

    @property
    def transient(self) -> bool:
        return self.code == "request_in_progress"


class InvalidRequestError(ApiError):
    """HTTP 400/422: ``invalid_request``, ``model_input_invalid`` or ``webhook_url_invalid``."""

    default_code = "invalid_request"


class RateLimitError(ApiError):
    """HTTP 429: ``rate_limit_exceeded`` or ``concurrency_limit_exceeded``, with ``retry_after``."""

    default_code = "rate_limit_exceeded"


class ServerError(ApiError):
    """HTTP 5xx: ``internal_error`` or ``service_unavailable`` (transient)."""

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
    # 502/504 come from a gateway, often without an envelope; they mean "try again", like a 503.
    502: "service_unavailable",
    503: "service_unavailable",
    504: "service_unavailable",
}


def api_error_from(
    status: int, code: str, message: str, *, retry_after: float | None = None, request_id: str | None = None,
    error_type: str | None = None,
) -> ApiError:
    """Map an HTTP status and envelope ``code``/``type`` onto the tree; missing codes get a stable default."""
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    # A code is an identifier clients switch on: anything else the API sends there (an echo of a header,
    # a sentence) is not one, and is replaced by the status's default rather than passed on.
    final_code = _identifier(code) or _DEFAULT_CODES.get(status, "api_error")
    text = message or f"The Clipia API answered HTTP {status}."
    return cls(text, code=final_code, http_status=status, retry_after=retry_after, request_id=request_id,
               error_type=_identifier(error_type))


def _identifier(value: str | None) -> str | None:
    """``value`` if it is an identifier (lower-case, at most 64 characters) that holds no secret, else None."""
    return value if value and _CODE_SHAPE.fullmatch(value) and redact(value) == value else None


_CODE_SHAPE = re.compile(r"[a-z][a-z0-9_.]{0,63}")
