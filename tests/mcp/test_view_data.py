"""The fast answer builder equals the output model's own dump, field for field and in order."""

from __future__ import annotations

import time

import anyio
import pytest

from clipia_mcp.core.records import GenerationError, RequestRecord
from clipia_mcp.core.timeutil import iso_seconds
from clipia_mcp.mcp.results import request_result, summary_data, view, view_data
from clipia_mcp.mcp.views import RequestSummary

NOW = time.time()
RECORDS = [
    RequestRecord(request_id="a", owner="o", model="m", status="IN_QUEUE", queue_position=3, created_at=NOW,
                  updated_at=NOW),
    RequestRecord(request_id="b", owner="o", model="m", status="IN_PROGRESS", progress=40,
                  logs=[{"message": "x"}, "plain"], created_at=NOW, updated_at=NOW, cost=5),
    RequestRecord(request_id="c", owner="o", model="m", status="COMPLETED", cost=5, created_at=NOW, updated_at=NOW,
                  completed_at=NOW, output={"images": [{"url": "https://cdn.example/a.png", "width": 8, "height": 8}],
                                            "video": {"url": "https://cdn.example/v.mp4"}}),
    RequestRecord(request_id="d", owner="o", model="m", status="FAILED", cost=0, created_at=NOW, updated_at=NOW,
                  error=GenerationError(code="NSFW", message="no")),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.status)
@pytest.mark.parametrize("is_test", [False, True])
def test_view_data_is_the_models_dump(record: RequestRecord, is_test: bool) -> None:
    data, _ = view_data(record, is_test=is_test)
    expected = view(record, is_test=is_test).model_dump(mode="json", exclude_none=True)
    assert data == expected
    assert None not in data.values() and all(None not in m.values() for m in data.get("media", []))
    assert list(data) == list(expected)


def test_waiters_on_one_record_share_one_build_and_a_new_version_is_rebuilt() -> None:
    async def main() -> None:
        first = await request_result(RECORDS[2], media_http=None, include_preview=False)  # type: ignore[arg-type]
        again = await request_result(RECORDS[2], media_http=None, include_preview=False)  # type: ignore[arg-type]
        assert first.structured_content is again.structured_content
        newer = RECORDS[2].model_copy(update={"cost": 6})
        fresh = await request_result(newer, media_http=None, include_preview=False)  # type: ignore[arg-type]
        assert fresh.structured_content is not None and fresh.structured_content["cost"] == 6

    anyio.run(main)


LONG_PROMPT = RECORDS[0].model_copy(update={"model": None, "input": {"prompt": "p" * 300}})


@pytest.mark.parametrize("record", [*RECORDS, LONG_PROMPT], ids=lambda r: r.status)
def test_summary_data_is_the_models_dump(record: RequestRecord) -> None:
    prompt = (record.input or {}).get("prompt")
    expected = RequestSummary(
        request_id=record.request_id, model=record.model or "unknown", status=record.status, cost=record.cost,
        prompt=prompt[:200] if isinstance(prompt, str) else None, created_at=iso_seconds(record.created_at) or "",
        updated_at=iso_seconds(record.updated_at) or "", resource_uri=f"clipia://requests/{record.request_id}",
    ).model_dump(mode="json", exclude_none=True)
    assert summary_data(record) == expected and list(summary_data(record)) == list(expected)
