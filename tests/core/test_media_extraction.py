"""core/media: every output shape gives the same files, in order, as JSON objects and as validated models."""

from __future__ import annotations

from typing import Any

import pytest

from clipia_mcp.core.media import MediaFile, extract_media, media_items


def test_files_come_in_shape_order_without_duplicates() -> None:
    output = {
        "audios": [{"url": "https://c.example/a2.mp3"}],
        "audio": {"url": "https://c.example/a1.wav"},
        "videos": [{"url": "https://c.example/v2.webm"}],
        "video": {"url": "https://c.example/v1.mp4", "thumbnail_url": "https://c.example/t.jpg", "duration": 5},
        "image": {"url": "https://c.example/i2.png"},
        "images": [{"url": "https://c.example/i1.jpg", "width": 8, "height": 9},
                   {"url": "https://c.example/i2.png"}],  # listed again under "image": one file
    }
    items = media_items(output)
    assert [(m["kind"], m["name"], m["mime_type"]) for m in items] == [
        ("image", "i1.jpg", "image/jpeg"), ("image", "i2.png", "image/png"), ("video", "v1.mp4", "video/mp4"),
        ("video", "v2.webm", "video/webm"), ("audio", "a1.wav", "audio/wav"), ("audio", "a2.mp3", "audio/mpeg")]
    assert items[0]["width"] == 8 and items[2]["poster_url"] == "https://c.example/t.jpg"
    assert items[2]["duration"] == 5.0
    # The model's fields that have a value, in its order, and nothing else.
    dumps = [m.model_dump(mode="json", exclude_none=True) for m in extract_media(output)]
    assert [list(d.items()) for d in dumps] == [list(m.items()) for m in items]


@pytest.mark.parametrize(("item", "name", "mime"), [
    ({"url": "https://c.example/a/b/out.PNG?sig=x.mp4#frag.wav"}, "out.PNG", "image/png"),
    ({"url": "https://c.example/render", "format": "webp"}, "render", "image/webp"),
    ({"url": "https://c.example/"}, "image", "image/png"),
    ({"url": "https://c.example"}, "image", "image/png"),
    ({"url": "https://c.example/.png"}, ".png", "image/png"),
    ({"url": "https://c.example/small.jpg", "original_url": "https://c.example/full.png"}, "full.png", "image/png"),
])
def test_name_and_type_come_from_the_url_path(item: dict[str, Any], name: str, mime: str) -> None:
    (m,) = media_items({"images": [item]})
    assert (m["name"], m["mime_type"]) == (name, mime)
    MediaFile(**m)  # every item is a valid model


def test_unusable_shapes_give_no_files() -> None:
    assert media_items(None) == [] and media_items({"images": {"url": "https://c.example/x.png"}}) == []
    assert media_items({"images": [None, "x", {"url": ""}, {"url": 3}], "video": "x"}) == []
    (m,) = media_items({"images": [{"url": "https://c.example/x.png", "width": True, "height": "9"}]})
    assert "width" not in m and "height" not in m  # booleans and strings are not sizes


def test_only_web_urls_become_files_and_a_huge_output_is_bounded() -> None:
    from clipia_mcp.core import constants as C

    odd = {"images": [{"url": u} for u in ("file:///etc/passwd", "javascript:alert(1)", "data:image/png;base64,AA",
                                            "ftp://127.0.0.2/x.png", "HTTPS://cdn.example/ok.png")],
           "video": {"url": "https://cdn.example/v.mp4", "thumbnail_url": "file:///etc/shadow"}}
    files = media_items(odd)
    assert [m["url"] for m in files] == ["HTTPS://cdn.example/ok.png", "https://cdn.example/v.mp4"]
    assert "poster_url" not in files[1]
    many = media_items({"images": [{"url": f"https://cdn.example/{i}.png"} for i in range(10_000)]})
    assert len(many) == C.MAX_OUTPUT_FILES
