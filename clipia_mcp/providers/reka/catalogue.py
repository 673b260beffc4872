"""The catalogue entry for Reka clips, in the Clipia model-object shape list_models shows."""

from __future__ import annotations

from typing import Any

REKA_MODEL = "reka/clips"

CATALOGUE_ENTRY: dict[str, Any] = {
    "slug": REKA_MODEL,
    "type": "video",
    "name": "Reka Vision clips",
    "description": "Short highlight clips cut from source videos (YouTube, Twitch or MP4 links), with titles, "
                   "captions and hashtags. Minutes per job; about 10 jobs per day per key.",
    "capabilities": ["video-to-video", "highlights"],
    "pricing": {"available": True, "note": "Metered by Reka, not in Clipia credits."},
    "input_schema": {"parameters": [
        {"name": "video_urls", "type": "urls", "required": True, "label": "Source video URLs"},
        {"name": "prompt", "type": "text", "required": False, "maxLength": 5000},
        {"name": "generation_config", "type": "object", "required": False,
         "hint": "template moments|compilation, num_generations 1-3, min/max_duration_seconds (max 1-600)"},
        {"name": "rendering_config", "type": "object", "required": False,
         "hint": "aspect_ratio 9:16|16:9|4:5|1:1, resolution 240|360|480|720|1080, subtitles, show_watermark"},
    ], "parameterGroups": []},
}
