"""How a provider is registered: its models, its catalogue entries and how to build it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from clipia_mcp.core.settings import Settings
from clipia_mcp.providers.base import QueueProvider


@dataclass(frozen=True)
class ProviderSpec:
    """A provider besides Clipia, as the registry knows it."""

    name: str
    #: Model slugs this provider serves (exact matches).
    models: frozenset[str]
    #: Catalogue entries shown by list_models/get_model, in the API's model-object shape.
    catalogue: tuple[dict[str, Any], ...]
    #: What the user must configure to enable it (said in the error when it is not).
    setup_hint: str
    #: Build a client from settings and (key, base_url); None when the provider is not configured.
    build: Callable[[Settings, str, str], QueueProvider] = field(repr=False)
    #: The API key and base URL from settings, or None when the provider is not configured.
    credentials: Callable[[Settings], tuple[str, str] | None] = field(repr=False, default=lambda s: None)
    #: Its finished jobs can be deleted (``capabilities.delete``): the ``delete_clip`` tool is offered.
    deletes_jobs: bool = False
