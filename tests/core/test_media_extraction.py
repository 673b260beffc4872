"""core/media: every output shape gives the same files, in order, as JSON objects and as validated models."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


# ---------------------------------------------------------------- the one-function _media against its spelled-out form

def _reference(kind: str, item: dict[str, Any]) -> dict[str, Any] | None:
    """``_media`` as it was written before it became one function (a helper per field): the specification."""
    from clipia_mcp.core.media import _DEFAULT_MIME, _MIME_BY_EXT, _POSTER_KEYS

    def web(url: Any) -> bool:
        return isinstance(url, str) and url[:8].lower().startswith(("https://", "http://"))

    def as_int(v: Any) -> int | None:
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    url = item.get("original_url") or item.get("url")
    if not web(url):
        return None
    m: dict[str, Any] = {"kind": kind, "url": url}
    if item.get("original_url"):
        preview = item.get("url")
        if preview != url and web(preview):
            m["preview_url"] = preview
    fmt = item.get("format")
    fmt = fmt if isinstance(fmt, str) else None
    rest = url.partition("://")[2] or url
    path = "" if rest.find("/") < 0 else rest[rest.find("/"):].partition("?")[0].partition("#")[0]
    name = path.rsplit("/", 1)[-1]
    stem, dot, ext = name.rpartition(".")
    mime = _MIME_BY_EXT.get(f".{ext.lower()}") if dot and stem else None
    if mime is None:
        mime = _MIME_BY_EXT[f".{fmt.lower()}"] if fmt and f".{fmt.lower()}" in _MIME_BY_EXT else _DEFAULT_MIME[kind]
    m["mime_type"] = mime
    m["name"] = name or kind
    for key in ("width", "height"):
        if as_int(item.get(key)) is not None:
            m[key] = item[key]
    dur = item.get("duration")
    if isinstance(dur, (int, float)) and not isinstance(dur, bool):
        m["duration"] = float(dur)
    if fmt is not None:
        m["format"] = fmt
    if kind == "video":
        for key in _POSTER_KEYS:
            if web(item.get(key)):
                m["poster_url"] = item[key]
                break
    return m


_urls = st.builds(
    lambda scheme, host, path, query: f"{scheme}{host}{path}{query}",
    st.sampled_from(["https://", "http://", "HTTPS://", "HtTp://", "ftp://", "file://", "javascript:", "", "https:/"]),
    st.sampled_from(["c.example", "", "c.example:8443"]),
    st.sampled_from(["", "/", "/a/out.PNG", "/x.mp4", "/render", "/.png", "/a.b/c", "/v.MOV/", "/dir/file.wav"]),
    st.sampled_from(["", "?sig=x.mp4", "#frag.wav", "?a=1#b", "?x/y.png"]))
_values = st.one_of(_urls, st.none(), st.booleans(), st.integers(-5, 5000), st.floats(allow_nan=False),
                    st.sampled_from(["png", "JPG", "webp", "mov", "", "9", "x"]), st.lists(st.integers(), max_size=1))
_items = st.dictionaries(st.sampled_from(["url", "original_url", "format", "width", "height", "duration",
                                          "thumbnail_url", "poster_url", "cover_url", "other"]), _values)


@given(kind=st.sampled_from(["image", "video", "audio"]), item=_items)
def test_media_is_the_spelled_out_extraction(kind: str, item: dict[str, Any]) -> None:
    from clipia_mcp.core.media import _media

    got = _media(kind, item)  # type: ignore[arg-type]
    assert got == _reference(kind, item)
    if got is not None:
        assert list(got.items()) == list(_reference(kind, item).items())  # type: ignore[union-attr]  # order too
        MediaFile(**got)
