"""The MCP Apps card on the wire: tool links, the ui:// resource, the app-only refresh tool, and
unchanged results for hosts without the extension (the browser test is tests/e2e/test_apps_card_browser.py)."""

from __future__ import annotations

import re
from pathlib import Path

import anyio
import pytest
from conftest import structured
from mcp import Client
from support import AppsHost

from clipia_mcp.core.settings import Settings
from clipia_mcp.mcp.apps import card_html, media_domains
from clipia_mcp.mcp.server import build_server
from clipia_mcp.sandbox import EmulatorServer

pytestmark = pytest.mark.anyio
CARD = "ui://clipia/generation-card.html"


def _settings(emu: EmulatorServer, key: str) -> Settings:
    return Settings.from_env({
        "CLIPIA_API_KEY": key, "CLIPIA_BASE_URL": emu.base_url, "CLIPIA_MCP_JOURNAL": ":memory:",
        "CLIPIA_MCP_POLL_MIN": "0.02", "CLIPIA_MCP_POLL_MAX": "0.1", "CLIPIA_MCP_POLL_BUDGET_RPM": "60000",
    })


async def test_tools_link_the_card_and_the_resource_declares_its_media_hosts(emu: EmulatorServer, live_key) -> None:
    async with Client(build_server(_settings(emu, live_key.value)), extensions=[AppsHost()]) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        for name in ("generate", "wait_for_result", "get_result"):
            assert (tools[name].meta or {}).get("ui") == {"resourceUri": CARD}
        assert (tools["card_refresh"].meta or {})["ui"] == {"resourceUri": CARD, "visibility": ["app"]}
        assert "ui" not in (tools["submit_generation"].meta or {})
        listed = {r.uri: r for r in (await client.list_resources()).resources}
        assert listed[CARD].mime_type == "text/html;profile=mcp-app"
        content = (await client.read_resource(CARD)).contents[0]
        assert content.mime_type == "text/html;profile=mcp-app"
        csp = (content.meta or {})["ui"]["csp"]
        assert "https://media.clipia.ai" in csp["resourceDomains"]
        assert "http://127.0.0.1:*" in csp["resourceDomains"]  # the emulator serves media on loopback
        assert "connectDomains" not in csp  # the card talks only to its host


def test_card_is_self_contained() -> None:
    html = card_html()
    assert not re.search(r"""<(script|link|img|iframe)[^>]+(src|href)=["']?(https?:)?//""", html)
    assert "ui/initialize" in html and "card_refresh" in html
    assert len(html.encode()) < 20_000


def test_media_domains_follow_the_api() -> None:
    real = media_domains(Settings(api_key=None, base_url="https://api.clipia.ai"))
    assert real == ["https://media.clipia.ai", "https://*.clipia.ai"]
    proxy = media_domains(Settings(base_url="https://clipia-proxy.example.com"))
    assert proxy[-1] == "https://clipia-proxy.example.com"


async def test_card_refresh_returns_the_request_and_results_are_unchanged_without_apps(
        emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    emu.emulator.config.time_scale = 0.05
    async with Client(build_server(_settings(emu, live_key.value))) as client:
        sub = structured(await client.call_tool(
            "submit_generation", {"model": "nano-banana-2", "input": {"prompt": "card"}}))
        with anyio.fail_after(20):
            while True:
                res = await client.call_tool("card_refresh", {"request_id": sub["request_id"], "wait_s": 1})
                data = structured(res)
                if data["done"]:
                    break
        assert data["status"] == "COMPLETED" and data["media"][0]["kind"] == "image"
        plain = await client.call_tool("get_result", {"request_id": sub["request_id"]})
        # A client without the extension gets the same text, links and structured content as before.
        assert structured(plain)["media"] == data["media"]
        assert [c.type for c in plain.content][0] == "text"
        assert "resource_link" in [c.type for c in plain.content]
        assert "ui" not in (plain.meta or {})
        bad = await client.call_tool("card_refresh", {"request_id": "not-a-uuid"})
        assert bad.is_error
        # Without the extension the app-only tool and the ui:// document stay out of the lists (lean tools/list).
        assert "card_refresh" not in {t.name for t in (await client.list_tools()).tools}
        assert not [r for r in (await client.list_resources()).resources if r.uri.startswith("ui://")]
        assert (await client.read_resource(CARD)).contents[0].mime_type == "text/html;profile=mcp-app"
