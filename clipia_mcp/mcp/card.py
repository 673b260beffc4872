"""Where the MCP Apps generation card lives (see :mod:`clipia_mcp.mcp.apps`)."""

from __future__ import annotations

from typing import Any

CARD_URI = "ui://clipia/generation-card.html"
#: ``_meta`` of the tools whose results the card renders (``generate``, ``wait_for_result``, ``get_result``).
CARD_TOOL_META: dict[str, Any] = {"ui": {"resourceUri": CARD_URI}}
