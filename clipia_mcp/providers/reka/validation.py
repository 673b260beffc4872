"""Local checks of a Reka clip-creation body, from Reka's API reference (not from our emulator).

Each problem names the field, so the agent can fix exactly that field.
"""

from __future__ import annotations

from typing import Any

from clipia_mcp.core.errors import InvalidInputError

TEMPLATES = ("moments", "compilation")
ASPECT_RATIOS = ("9:16", "16:9", "4:5", "1:1")
RESOLUTIONS = (240, 360, 480, 720, 1080)
TEXT_TRANSFORMS = ("initial", "uppercase", "lowercase")


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _problem(data: dict[str, Any]) -> tuple[str, str] | None:
    urls = data.get("video_urls")
    if not isinstance(urls, list) or not urls:
        return "video_urls", "a non-empty list of YouTube, Twitch or MP4 links is required"
    for i, url in enumerate(urls):
        if not isinstance(url, str) or not url.lower().startswith(("https://", "http://")):
            return f"video_urls[{i}]", "must be an http(s) URL"
    prompt = data.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        return "prompt", "must be a string"
    gen = data.get("generation_config")
    if gen is not None:
        if not isinstance(gen, dict):
            return "generation_config", "must be an object"
        if gen.get("template", "moments") not in TEMPLATES:
            return "generation_config.template", f"must be one of {', '.join(TEMPLATES)}"
        n = gen.get("num_generations", 1)
        if not _int(n) or not 1 <= n <= 3:
            return "generation_config.num_generations", "must be an integer from 1 to 3"
        lo = gen.get("min_duration_seconds", 0)
        hi = gen.get("max_duration_seconds", 90)
        if not _int(lo) or lo < 0:
            return "generation_config.min_duration_seconds", "must be an integer >= 0"
        if not _int(hi) or not 1 <= hi <= 600:
            return "generation_config.max_duration_seconds", "must be an integer from 1 to 600"
        if hi < lo:
            return "generation_config.max_duration_seconds", "must not be below min_duration_seconds"
        for name in ("source_start_time", "source_end_time"):
            if name in gen and (not _int(gen[name]) or gen[name] < 0):
                return f"generation_config.{name}", "must be an integer number of seconds >= 0"
    ren = data.get("rendering_config")
    if ren is not None:
        if not isinstance(ren, dict):
            return "rendering_config", "must be an object"
        if ren.get("aspect_ratio", "9:16") not in ASPECT_RATIOS:
            return "rendering_config.aspect_ratio", f"must be one of {', '.join(ASPECT_RATIOS)}"
        res = ren.get("resolution", 720)
        if not _int(res) or res not in RESOLUTIONS:
            return "rendering_config.resolution", f"must be one of {', '.join(map(str, RESOLUTIONS))}"
        for flag in ("show_watermark", "subtitles"):
            if flag in ren and not isinstance(ren[flag], bool):
                return f"rendering_config.{flag}", "must be true or false"
        style = ren.get("caption_style")
        if style is not None:
            if not isinstance(style, dict):
                return "rendering_config.caption_style", "must be an object"
            size = style.get("desired_font_size", 120)
            if not _int(size) or not 60 <= size <= 120:
                return "rendering_config.caption_style.desired_font_size", "must be an integer from 60 to 120"
            if style.get("text_transform", "uppercase") not in TEXT_TRANSFORMS:
                return "rendering_config.caption_style.text_transform", f"must be one of {', '.join(TEXT_TRANSFORMS)}"
    return None


def check_clip_input(data: dict[str, Any]) -> None:
    """Raise :class:`InvalidInputError` (``invalid_input``) naming the first bad field."""
    problem = _problem(data)
    if problem is not None:
        raise InvalidInputError(f"{problem[0]}: {problem[1]}.")
