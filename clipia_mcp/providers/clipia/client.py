"""The Clipia queue API: the official ``clipia`` SDK for the wire, our policy on top.

The SDK's own retries are switched off (``max_retries=0``) so that one policy
(:mod:`clipia_mcp.core.retry`) governs every call. A submit always carries an
``Idempotency-Key`` and every retry of it reuses that key, so a lost response
can never enqueue or charge twice. An answer we cannot read (HTML, wrong shape)
becomes ``upstream_invalid_response`` instead of an exception from deep inside.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from clipia_mcp.core import constants as C
from clipia_mcp.core.errors import InvalidInputError, NetworkError, UpstreamInvalidResponse, api_error_from
from clipia_mcp.core.retry import RetryPolicy
from clipia_mcp.core.settings import ApiKey, Settings
from clipia_mcp.core.upstream import (
    AccountResponse,
    EstimateResponse,
    ResultResponse,
    StatusResponse,
    SubmitResponse,
)
from clipia_mcp.providers.base import Capabilities
from clipia_mcp.providers.bounded import bounded_transport
from clipia_mcp.providers.clipia.ratelimit import RateLimitState, observing_transport

if TYPE_CHECKING:
    import httpx
    from clipia import AsyncClipia

T = TypeVar("T")
#: What a malformed body raises inside the SDK's parsers or ours.
_UNREADABLE = (ValidationError, TypeError, KeyError, ValueError, AttributeError)


class ClipiaClient:
    """A :class:`~clipia_mcp.providers.base.QueueProvider` for Clipia, plus its catalogue and account calls."""

    name = "clipia"
    capabilities = Capabilities(idempotency_keys=True, webhooks=True, credits=True, delete=False)

    def __init__(
        self,
        api_key: ApiKey,
        *,
        base_url: str,
        settings: Settings | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 100,
    ) -> None:
        s = settings or Settings()
        self.api_key = api_key
        self.base_url = base_url
        self.policy = RetryPolicy(
            max_attempts=s.retry_max_attempts,
            base_delay=s.retry_base_delay,
            max_delay=s.retry_max_delay,
            retry_after_cap=s.retry_after_cap,
        )
        self.rate_limit = RateLimitState()
        #: Size of the HTTP connection pool (submit admission keeps half of it for other calls).
        self.max_connections = max_connections
        self._timeout = s.http_timeout
        self._transport = transport
        self._client: AsyncClipia | None = None
        #: Upstream HTTP attempts per operation (for tests and benchmarks).
        self.calls: Counter[str] = Counter()

    @property
    def _sdk(self) -> AsyncClipia:
        """The official SDK client, built on the first upstream call (a server start loads no HTTP client)."""
        if self._client is None:
            import httpx
            from clipia import AsyncClipia

            inner = self._transport or httpx.AsyncHTTPTransport(limits=httpx.Limits(
                max_connections=self.max_connections, max_keepalive_connections=min(20, self.max_connections)))
            self._client = AsyncClipia(
                self.api_key.reveal(),
                base_url=self.base_url,
                timeout=httpx.Timeout(self._timeout, connect=min(10.0, self._timeout)),
                transport=observing_transport(bounded_transport(inner, C.MAX_API_ANSWER_BYTES), self.rate_limit),
                max_retries=0,
            )
        return self._client

    def __repr__(self) -> str:
        return f"ClipiaClient(base_url={self.base_url!r}, key={self.api_key!r})"

    @property
    def budget_key(self) -> str:
        """Identifies the upstream key (its fingerprint) for per-key poll budgets."""
        return self.api_key.fingerprint

    @property
    def is_test_key(self) -> bool:
        """A ``clipia_test_`` key: Clipia's sandbox, never charged."""
        return self.api_key.is_test

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
        elif self._transport is not None:
            await self._transport.aclose()

    async def __aenter__(self) -> ClipiaClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def check_input(self, model: str, data: dict[str, Any]) -> None:
        """Clipia validates inputs itself (``model_input_invalid``); nothing to add locally."""

    async def delete(self, request_id: str, *, delete_input: bool = False) -> None:
        raise InvalidInputError("Clipia generations cannot be deleted or cancelled through the API.")

    # ------------------------------------------------------------------ plumbing

    async def _once(self, op: str, call: Callable[[], Awaitable[T]], request_id: str | None = None) -> T:
        import httpx
        from clipia import ClipiaApiError

        self.calls[op] += 1
        try:
            return await call()
        except ClipiaApiError as exc:
            raise api_error_from(exc.status, exc.code, exc.message, retry_after=exc.retry_after,
                                 request_id=request_id, error_type=exc.type) from None
        except httpx.TransportError as exc:
            raise NetworkError(
                f"Could not reach the Clipia API at {self.base_url} ({type(exc).__name__}: "
                f"{str(exc).strip()[:120] or 'no detail'}).", request_id=request_id) from None
        except _UNREADABLE as exc:
            raise UpstreamInvalidResponse(
                f"The Clipia API answered {op} with a body that could not be read ({type(exc).__name__}).",
                request_id=request_id) from None

    async def _call(
        self, op: str, call: Callable[[], Awaitable[T]], request_id: str | None = None, retry: bool = True
    ) -> T:
        if not retry:
            return await self._once(op, call, request_id)
        return await self.policy.run(op, lambda: self._once(op, call, request_id))

    # ------------------------------------------------------------------ endpoints

    async def submit(
        self,
        model: str,
        input: dict[str, Any],  # noqa: A002 - the API's field name
        *,
        webhook_url: str | None = None,
        idempotency_key: str | None = None,
        retry: bool = True,
    ) -> SubmitResponse:
        """Queue a generation. Retries reuse one ``Idempotency-Key``: one request, one charge."""
        key = idempotency_key or str(uuid.uuid4())

        async def call() -> SubmitResponse:
            res = await self._sdk.submit(model, input, webhook_url=webhook_url, idempotency_key=key)
            sub = SubmitResponse.model_validate(_object(res.data))
            # The id goes into every later URL path and the journal: only the contract's UUID will do
            # (ValueError: unreadable, retried with the same key, so never paid twice).
            return sub.model_copy(update={"request_id": str(uuid.UUID(sub.request_id))})

        return await self._call("submit", call, retry=retry)

    async def status(self, request_id: str, *, retry: bool = True) -> StatusResponse:
        async def call() -> StatusResponse:
            res = await self._sdk.status(request_id)
            return StatusResponse.model_validate(_object(res.data))

        return await self._call("status", call, request_id, retry)

    async def result(self, request_id: str, *, retry: bool = True) -> ResultResponse:
        """The result; ``pending=True`` (HTTP 202) while the request is still running."""

        async def call() -> ResultResponse:
            res = await self._sdk.result(request_id)
            data = dict(_object(res.data))
            data["pending"] = res.pending
            return ResultResponse.model_validate(data)

        return await self._call("result", call, request_id, retry)

    async def list_models(self) -> list[dict[str, Any]]:
        async def call() -> list[dict[str, Any]]:
            res = _object(await self._sdk.models.list())
            data = res.get("data")
            if not isinstance(data, list):
                raise TypeError("no data list")
            return [dict(m) for m in data if isinstance(m, dict)]

        return await self._call("models", call)

    async def get_model(self, slug: str) -> dict[str, Any]:
        async def call() -> dict[str, Any]:
            return dict(_object(await self._sdk.models.get(slug)))

        return await self._call("model", call)

    async def estimate(self, slug: str, input: dict[str, Any]) -> EstimateResponse:  # noqa: A002
        async def call() -> EstimateResponse:
            res = await self._sdk.models.estimate(slug, input)
            return EstimateResponse.model_validate(_object(res.data))

        return await self._call("estimate", call)

    async def account(self) -> AccountResponse:
        async def call() -> AccountResponse:
            return AccountResponse.model_validate(_object(await self._sdk.account.get()))

        return await self._call("account", call)


def _object(value: Any) -> dict[str, Any]:
    """The parsed body as a JSON object; anything else is unreadable."""
    if not isinstance(value, dict):
        raise TypeError("answer is not a JSON object")
    return value
