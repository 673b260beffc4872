"""The provider seam: what the engine needs from a generation queue (Clipia, Reka, the next one).

A provider turns our calls into its API's calls and maps its answers onto
:mod:`clipia_mcp.core.upstream` shapes, so the engine, store and MCP layer never branch on
which queue serves a request. What a provider can and cannot do is stated in
:class:`Capabilities`, and the engine asks that instead of asking for a provider's name.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol

from clipia_mcp.core.upstream import ResultResponse, StatusResponse, SubmitResponse


@dataclass(frozen=True)
class Capabilities:
    """What a provider supports; the engine branches on these, never on a provider's name."""

    #: Submits carry an idempotency key: a retry or a replay after a crash cannot create a second job.
    idempotency_keys: bool = True
    #: The provider can POST the result to a webhook URL.
    webhooks: bool = True
    #: Jobs are priced in Clipia credits (estimate, balance, cost confirmation apply).
    credits: bool = True
    #: Finished jobs can be deleted through the provider.
    delete: bool = False


class QueueProvider(Protocol):
    """One generation queue: submit, status, result (and, if capable, delete)."""

    name: str
    capabilities: Capabilities
    #: Upstream HTTP attempts per operation (tests and benchmarks count them).
    calls: Counter[str]

    def check_input(self, model: str, data: dict[str, Any]) -> None:
        """Raise :class:`~clipia_mcp.core.errors.InvalidInputError` naming the field, before any call."""
        ...

    async def submit(self, model: str, input: dict[str, Any], *,  # noqa: A002 - the API's own name
                     webhook_url: str | None = None, idempotency_key: str | None = None) -> SubmitResponse:
        """Create a job; with ``idempotency_keys`` every retry reuses ``idempotency_key``."""
        ...

    async def status(self, request_id: str, *, retry: bool = True) -> StatusResponse:
        """The job's current status (cheap; the tracker polls this)."""
        ...

    async def result(self, request_id: str, *, retry: bool = True) -> ResultResponse:
        """The job's result; ``pending`` while it is still running."""
        ...

    async def delete(self, request_id: str, *, delete_input: bool = False) -> None:
        """Delete a finished job (only when ``capabilities.delete``)."""
        ...

    async def aclose(self) -> None:
        """Close connections."""
        ...
