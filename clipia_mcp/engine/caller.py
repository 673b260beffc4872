"""Who is calling: the upstream clients that serve them, and the owner id that scopes their data."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from clipia_mcp.core.errors import InvalidInputError
from clipia_mcp.providers.base import QueueProvider
from clipia_mcp.providers.clipia.client import ClipiaClient
from clipia_mcp.providers.registry import EXTRA_PROVIDERS, spec_for


@dataclass(frozen=True)
class Caller:
    """One caller: Clipia client, extra providers, and ``owner`` (a hash of their credential)."""

    clipia: ClipiaClient
    owner: str
    #: Embedded sandbox or a ``clipia_test_`` key: nothing is charged.
    sandbox: bool = False
    #: True when several tenants share one Clipia key: then only ids this tenant submitted are visible,
    #: because the API itself would show any of the key's requests to every tenant.
    shared_key: bool = False
    #: Extra providers configured for this caller, by provider name (see :mod:`clipia_mcp.providers.registry`).
    providers: Mapping[str, QueueProvider] = field(default_factory=dict)
    #: The server's webhook receiver can verify this caller's deliveries: Clipia signs with one secret per
    #: account, and the server holds only the secret of its own key's account. False for a caller's own key
    #: (``caller-key`` mode), whose submits then never carry the server's webhook_url (polling serves them).
    server_webhooks: bool = True

    def provider_for(self, model: str | None) -> QueueProvider:
        """The provider serving ``model`` (Clipia unless another provider claims the slug)."""
        spec = spec_for(model)
        if spec is None:
            return self.clipia
        provider = self.providers.get(spec.name)
        if provider is None:
            raise InvalidInputError(spec.setup_hint)
        return provider

    def upstream_idempotency_key(self, key: str) -> str:
        """The Idempotency-Key sent upstream for the agent's ``key``: namespaced by tenant on a shared key.

        Tenants sharing the operator's key (token/OAuth modes) must never meet each other's keys upstream,
        so theirs is a hash of (owner, key): still a valid header value, never the same for two tenants.
        """
        if not self.shared_key:
            return key
        return "t-" + hashlib.sha256(f"{self.owner}\0{key}".encode()).hexdigest()[:48]

    def catalogue_extras(self) -> list[dict[str, object]]:
        """Catalogue entries of the extra providers this caller can use."""
        return [dict(e) for spec in EXTRA_PROVIDERS if spec.name in self.providers for e in spec.catalogue]
