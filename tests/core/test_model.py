"""core/model: ``trusted`` builds what validation would; ``replaced`` copies as ``model_copy(update=...)``."""

from __future__ import annotations

import pytest
from mcp.types import CallToolResult, ResourceLink, TextContent

from clipia_mcp.core.model import replaced, trusted
from clipia_mcp.core.records import GenerationError, RequestRecord

LINK = {"type": "resource_link", "uri": "https://cdn.example/out.png", "name": "out.png", "title": "image output",
        "mime_type": "image/png", "size": 1234, "description": "image 1024x1024"}


def same(a: object, b: object) -> None:
    assert type(a) is type(b) and a == b
    assert a.model_fields_set == b.model_fields_set  # type: ignore[attr-defined]
    assert (a.model_dump(by_alias=True, mode="json", exclude_none=True)  # type: ignore[attr-defined]
            == b.model_dump(by_alias=True, mode="json", exclude_none=True))  # type: ignore[attr-defined]


@pytest.mark.parametrize("meta", [None, {"io.clipia/error": {"code": "x"}}])
def test_a_trusted_result_is_the_validated_one(meta: dict | None) -> None:
    blocks = [TextContent(type="text", text="{}"), ResourceLink(**LINK)]
    data = {"request_id": "r", "media": [{"kind": "image"}]}
    same(trusted(CallToolResult, content=list(blocks), structured_content=data, meta=meta),
         CallToolResult(content=list(blocks), structured_content=data, _meta=meta))
    same(trusted(ResourceLink, **LINK), ResourceLink(**LINK))
    same(trusted(ResourceLink, **{**LINK, "size": None}), ResourceLink(**{**LINK, "size": None}))


def test_trusted_refuses_a_missing_or_unknown_field() -> None:
    with pytest.raises(TypeError, match="no value for \\['content'\\]"):
        trusted(CallToolResult, structured_content={})
    with pytest.raises(TypeError, match="unknown fields \\['contents'\\]"):
        trusted(CallToolResult, content=[], contents=[])
    with pytest.raises(TypeError, match="needs pydantic's own construction"):
        trusted(type("Extra", (CallToolResult,), {"model_config": {**CallToolResult.model_config, "extra": "allow"}}),
                content=[])


def test_replaced_is_model_copy_and_leaves_the_original() -> None:
    record = RequestRecord(request_id="r", owner="o", status="IN_PROGRESS", created_at=1.0, updated_at=1.0,
                           logs=[{"message": "a"}])
    changes = {"status": "FAILED", "error": GenerationError(code="NSFW"), "updated_at": 2.0, "model": "m"}
    copy = replaced(record, **changes)
    same(copy, record.model_copy(update=changes))
    assert record.status == "IN_PROGRESS" and record.error is None and record.model_fields_set == {
        "request_id", "owner", "status", "created_at", "updated_at", "logs"}
    assert copy.logs is record.logs  # shallow, as model_copy
    same(replaced(copy), copy.model_copy())
