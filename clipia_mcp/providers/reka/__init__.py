"""Reka Vision clip generation (model ``reka/clips``), enabled by ``REKA_API_KEY``."""

from __future__ import annotations

from clipia_mcp.core.settings import Settings
from clipia_mcp.providers.base import QueueProvider
from clipia_mcp.providers.reka.catalogue import CATALOGUE_ENTRY, REKA_MODEL
from clipia_mcp.providers.spec import ProviderSpec


def _build(settings: Settings, key: str, base_url: str) -> QueueProvider:
    from clipia_mcp.providers.reka.client import RekaClient

    return RekaClient(key, base_url=base_url, settings=settings)


def _credentials(settings: Settings) -> tuple[str, str] | None:
    return (settings.reka_api_key, settings.reka_base_url) if settings.reka_api_key else None


SPEC = ProviderSpec(
    name="reka",
    models=frozenset({REKA_MODEL}),
    catalogue=(CATALOGUE_ENTRY,),
    setup_hint="reka/clips needs REKA_API_KEY (Reka Vision clip generation is not set up).",
    build=_build,
    credentials=_credentials,
    deletes_jobs=True,
)
