"""Which provider serves a model slug. Clipia serves every slug no other provider claims.

Adding a provider: a new folder under ``providers/`` with a ``SPEC`` and one line in
:data:`EXTRA_PROVIDERS`.
"""

from __future__ import annotations

from clipia_mcp.core.settings import Settings
from clipia_mcp.providers.reka import SPEC as REKA
from clipia_mcp.providers.spec import ProviderSpec

#: Providers besides Clipia, each owning the model slugs its ``SPEC`` claims.
EXTRA_PROVIDERS: tuple[ProviderSpec, ...] = (REKA,)


def spec_for(model: str | None) -> ProviderSpec | None:
    """The extra provider that owns ``model``; None means Clipia."""
    if model:
        for spec in EXTRA_PROVIDERS:
            if model in spec.models:
                return spec
    return None


def configured(settings: Settings) -> tuple[ProviderSpec, ...]:
    """The extra providers this server can use: configured by the operator, or emulated by the sandbox."""
    return tuple(spec for spec in EXTRA_PROVIDERS if settings.sandbox or spec.credentials(settings) is not None)


def extra_models() -> frozenset[str]:
    """Every slug an extra provider owns (allowed through slug validation as they are)."""
    return frozenset(m for spec in EXTRA_PROVIDERS for m in spec.models)
