"""mcp/results: error results say their code first, then one line of advice, for every documented code."""

from __future__ import annotations

from mcp.types import TextContent

from clipia_mcp.core.errors import ERROR_CODES, ClipiaMcpError
from clipia_mcp.mcp.results import ERROR_META_KEY, error_result


def test_every_documented_error_code_comes_with_advice() -> None:
    for code in ERROR_CODES:
        result = error_result(ClipiaMcpError("What happened.", code=code))
        block = result.content[0]
        assert isinstance(block, TextContent)
        first, _, advice = block.text.partition("\n")
        assert first == f"Error {code}: What happened." and advice.strip(), code
        assert result.is_error and result.structured_content is None
        assert result.meta is not None and result.meta[ERROR_META_KEY]["code"] == code
