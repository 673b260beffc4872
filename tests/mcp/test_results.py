"""mcp/results: error results say their code first, then one line of advice, for every documented code; a huge
raw output stays out of results."""

from __future__ import annotations

import json

import jsonschema
import pytest
from mcp.types import TextContent

from clipia_mcp.core import constants as C
from clipia_mcp.core.errors import ERROR_CODES, ClipiaMcpError
from clipia_mcp.core.jsonutil import dumps_compact
from clipia_mcp.core.records import RequestRecord
from clipia_mcp.mcp.results import ERROR_META_KEY, error_result, request_result, status_result, view
from clipia_mcp.mcp.schemas import load_published

pytestmark = pytest.mark.anyio


def test_every_documented_error_code_comes_with_advice() -> None:
    for code in ERROR_CODES:
        result = error_result(ClipiaMcpError("What happened.", code=code))
        block = result.content[0]
        assert isinstance(block, TextContent)
        first, _, advice = block.text.partition("\n")
        assert first == f"Error {code}: What happened." and advice.strip(), code
        assert result.is_error and result.structured_content is None
        assert result.meta is not None and result.meta[ERROR_META_KEY]["code"] == code


def _completed(output: dict[str, object]) -> RequestRecord:
    return RequestRecord(request_id="764cabcf-b745-4b3e-ae38-1200304cf45b", owner="o", model="nano-banana-2",
                         status="COMPLETED", output=output, created_at=0.0, updated_at=0.0, completed_at=1.0)


IMAGE = {"url": "https://cdn.clipia.ai/out.png", "width": 8, "height": 8}


async def test_a_huge_raw_output_is_left_out_of_results_but_not_its_media_or_the_resource() -> None:
    """A buggy or hostile API's 100 KB ``output`` would be context on every call: results carry its media and
    say where the whole object is; the request's resource still has all of it."""
    record = _completed({"images": [IMAGE], "debug": "x" * 100_000})
    for result in (await request_result(record, media_http=None, include_preview=False),  # type: ignore[arg-type]
                   status_result(record)):
        data = result.structured_content
        assert data is not None and "output" not in data
        assert [m["url"] for m in data["media"]] == [IMAGE["url"]]
        assert "left out of this result" in data["next_step"] and data["resource_uri"] in data["next_step"]
        block = result.content[0]
        assert isinstance(block, TextContent) and json.loads(block.text) == data
        assert len(block.text) < C.MAX_INLINE_OUTPUT
        jsonschema.validate(data, load_published()["get_result"]["output"])
    assert view(record).output == record.output  # the resource's view keeps it whole


async def test_an_output_at_the_bound_stays_in() -> None:
    small = _completed({"images": [IMAGE], "seed": 7})
    data = (await request_result(small, media_http=None, include_preview=False)).structured_content  # type: ignore[arg-type]
    assert data is not None and data["output"] == small.output and "left out" not in data["next_step"]
    pad = C.MAX_INLINE_OUTPUT - len(dumps_compact({"images": [IMAGE], "p": ""}))
    edge = _completed({"images": [IMAGE], "p": "y" * pad})
    assert len(dumps_compact(edge.output)) == C.MAX_INLINE_OUTPUT
    assert status_result(edge).structured_content["output"] == edge.output  # type: ignore[index]
    over = _completed({"images": [IMAGE], "p": "y" * (pad + 1)})
    assert "output" not in status_result(over).structured_content  # type: ignore[operator]


async def test_the_bound_is_in_utf8_bytes_and_an_output_without_files_stays() -> None:
    """15,000 CJK characters are 45,000 bytes: over the bound. An output with no files is the result itself
    (a text or JSON answer): it stays whole, however large."""
    cjk = _completed({"images": [IMAGE], "caption": "\u732b" * 15_000})
    assert len(dumps_compact(cjk.output)) < C.MAX_INLINE_OUTPUT < len(dumps_compact(cjk.output).encode())
    assert "output" not in status_result(cjk).structured_content  # type: ignore[operator]
    text_only = _completed({"text": "t" * 100_000})
    data = (await request_result(text_only, media_http=None, include_preview=False)).structured_content  # type: ignore[arg-type]
    assert data is not None and data["output"] == text_only.output and not data.get("media")
