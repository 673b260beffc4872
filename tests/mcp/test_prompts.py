"""mcp/prompts: the prompts are added on the first prompts request (not at every start) and then work."""

from __future__ import annotations

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from clipia_mcp.core.settings import ApiKey, Settings
from clipia_mcp.mcp.server import build_server

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leftover_log_forwarding")]
LIVE = Settings(api_key=ApiKey("clipia_live_promptsprompts00"), journal_path=None)


async def test_prompts_are_added_on_the_first_prompts_request_and_advertised_before() -> None:
    server = build_server(LIVE)
    assert server._prompt_manager.list_prompts() == []  # noqa: SLF001 - nothing built at start
    async with Client(server) as client:
        caps = client.server_capabilities
        assert caps is not None and caps.prompts is not None and caps.completions is not None
        assert server._prompt_manager.list_prompts() == []  # noqa: SLF001 - initialize builds none either
        listed = (await client.list_prompts()).prompts
        assert [p.name for p in listed] == ["create_media", "check_generation"]
        assert [a.name for a in listed[0].arguments or []] == ["description", "model"]
        got = await client.get_prompt("check_generation", {"request_id": "r-1"})
        assert "wait_for_result(request_id='r-1')" in str(got.messages[0].content)
        with pytest.raises(MCPError) as err:
            await client.get_prompt("check_generation", {})
        assert err.value.error.code == -32602


async def test_get_prompt_first_builds_them_too() -> None:
    async with Client(build_server(LIVE)) as client:
        got = await client.get_prompt("create_media", {"description": "a red fox"})
        assert "a red fox" in str(got.messages[0].content)
