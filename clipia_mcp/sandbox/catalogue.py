"""The emulator's model catalogue: shapes, pricing and input validation.

Source: API contract, shared/reference/clipia-api.md §12.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

ASPECTS = ["1:1", "16:9", "9:16", "4:3", "3:4"]


def _opt(values: list[str]) -> list[dict[str, str]]:
    return [{"value": v, "label": v} for v in values]


def _p(name: str, type_: str, **extra: Any) -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "type": type_, "required": False, "label": name.replace("_", " ").title()}
    param.update(extra)
    return param


def _seedance_pricing() -> dict[str, Any]:
    """Seedance 2 Fast pricing (text- and image-to-video cost the same)."""
    return {
        "credits": 47,
        "credits_base": 47,
        "multipliers": {"resolution": {"480p": 0.6, "720p": 1}},
        "billing_unit": "per_5_seconds",  # of duration; multipliers keep the {param: {value: number}} shape
        "minimum_credits": 10,
        "available": True,
    }


MODELS: list[dict[str, Any]] = [
    {
        "slug": "nano-banana-2",
        "type": "image",
        "name": "Nano Banana 2",
        "description": "Fast, high-quality text-to-image and image editing.",
        "capabilities": ["text-to-image", "image-to-image"],
        "pricing": {
            "credits": 4,
            "credits_base": 4,
            "multipliers": {"resolution": {"1K": 1, "2K": 1.5, "4K": 2}},
            "minimum_credits": 1,
            "available": True,
        },
        "input_schema": {
            "parameters": [
                _p("prompt", "text", required=True, minLength=1, maxLength=5000),
                _p("aspect_ratio", "select", default="1:1", options=_opt(ASPECTS)),
                _p("resolution", "select", default="1K", options=_opt(["1K", "2K", "4K"])),
                _p("num_images", "integer", default=1, min=1, max=4, step=1),
                _p("image_urls", "images", hint="Up to 4 https reference images"),
                _p("seed", "integer", min=0, max=2_147_483_647),
            ],
            "parameterGroups": [{"name": "basic", "parameters": ["prompt", "aspect_ratio"]}],
        },
    },
    {
        "slug": "seedance-2-fast-t2v",
        "type": "video",
        "name": "Seedance 2 Fast (text-to-video)",
        "description": "Text-to-video, 4-15 s clips.",
        "capabilities": ["text-to-video"],
        "pricing": _seedance_pricing(),
        "input_schema": {
            "parameters": [
                _p("prompt", "text", required=True, minLength=1, maxLength=5000),
                _p("duration", "number", default=5, min=4, max=15, step=1),
                _p("aspect_ratio", "select", default="16:9", options=_opt(["16:9", "9:16", "1:1"])),
                _p("resolution", "select", default="720p", options=_opt(["480p", "720p"])),
                _p("generate_audio", "boolean", default=False),
                _p("seed", "integer", min=0, max=2_147_483_647),
            ],
            "parameterGroups": [],
        },
    },
    {
        "slug": "seedance-2-fast-i2v",
        "type": "video",
        "name": "Seedance 2 Fast (image-to-video)",
        "description": "Animate a start frame into a 4-15 s clip.",
        "capabilities": ["image-to-video"],
        "pricing": _seedance_pricing(),
        "input_schema": {
            "parameters": [
                _p("prompt", "text", required=True, minLength=1, maxLength=5000),
                _p("image_url", "image", required=True, hint="https URL of the start frame"),
                _p("duration", "number", default=5, min=4, max=15, step=1),
                _p("aspect_ratio", "select", default="16:9", options=_opt(["16:9", "9:16", "1:1"])),
                _p("resolution", "select", default="720p", options=_opt(["480p", "720p"])),
                _p("seed", "integer", min=0, max=2_147_483_647),
            ],
            "parameterGroups": [],
        },
    },
    {
        "slug": "gemini-3-1-flash-tts",
        "type": "audio",
        "name": "Gemini 3.1 Flash TTS",
        "description": "Text-to-speech; billed per 1000 characters.",
        "capabilities": ["text-to-speech"],
        "pricing": {
            "credits": 2,
            "billing_unit": "per_1000_characters",
            "unit_size": 1000,
            "character_count": "unicode_codepoints",
            "rounding": "ceil",
            "minimum_credits": 2,
            "available": True,
        },
        "text_limits": {"min_chars": 1, "max_chars": 5000},
        "input_schema": {
            "parameters": [
                _p("prompt", "text", required=True, minLength=1, maxLength=5000, hint="The narration text"),
                _p("voice", "select", default="Zephyr", options=_opt(["Zephyr", "Puck", "Kore", "Charon"])),
                _p("language", "string", maxLength=16),
            ],
            "parameterGroups": [],
        },
    },
    {
        "slug": "suno-music",
        "type": "audio",
        "name": "Suno Music",
        "description": "Songs and soundtracks; returns several variants.",
        "capabilities": ["text-to-music"],
        "pricing": {"credits": 10, "credits_base": 10, "minimum_credits": 10, "available": True},
        "input_schema": {
            "parameters": [
                _p("prompt", "text", required=True, minLength=1, maxLength=3000),
                _p("instrumental", "boolean", default=False),
            ],
            "parameterGroups": [],
        },
    },
    {
        "slug": "video-upscale",
        "type": "video",
        "name": "Video Upscale",
        "description": "Upscale a video; the price depends on the source length.",
        "capabilities": ["video-to-video"],
        "pricing": {"estimate_required": True, "minimum_credits": 5, "available": True,
                    "note": "Price depends on the source length; call estimate."},
        "input_schema": {
            "parameters": [_p("video_url", "string", required=True, minLength=8, maxLength=2048)],
            "parameterGroups": [],
        },
    },
    {
        "slug": "imagen-legacy",
        "type": "image",
        "name": "Imagen (retired)",
        "description": "No longer available.",
        "capabilities": ["text-to-image"],
        "pricing": {"available": False, "note": "Retired"},
        "input_schema": {"parameters": [_p("prompt", "text", required=True)], "parameterGroups": []},
    },
    {
        "id": "claude-sonnet-4-6",
        "slug": "claude-sonnet-4-6",
        "object": "model",
        "created": 1767225600,
        "owned_by": "clipia",
        "type": "text",
        "name": "Claude Sonnet 4.6",
        "context_length": 200000,
        "pricing": {"prompt": "0.000003", "completion": "0.000015"},
        "supported_parameters": ["tools", "temperature", "response_format"],
    },
]

BY_SLUG = {m["slug"]: m for m in MODELS}
ALL_PARAMETER_NAMES = {p["name"] for m in MODELS for p in (m.get("input_schema") or {}).get("parameters", [])}


class InputInvalid(Exception):
    """The input does not fit the model (``model_input_invalid``)."""


@dataclass(frozen=True)
class Checked:
    cost: int
    warnings: list[dict[str, str]]


def list_entry(model: dict[str, Any]) -> dict[str, Any]:
    """The list shape: everything but the bulky input_schema."""
    return {k: v for k, v in model.items() if k != "input_schema"}


def _params(model: dict[str, Any]) -> list[dict[str, Any]]:
    return list((model.get("input_schema") or {}).get("parameters", []))


def check_input(model: dict[str, Any], data: dict[str, Any]) -> Checked:
    """Validate ``data`` against the model and price it; raise :class:`InputInvalid`."""
    params = _params(model)
    declared = {p["name"]: p for p in params}
    for p in params:
        name = p["name"]
        if name not in data or data[name] is None:
            if p.get("required"):
                raise InputInvalid(f"Missing required parameter '{name}'.")
            continue
        value = data[name]
        kind = p["type"]
        if kind in ("text", "string", "image"):
            if not isinstance(value, str):
                raise InputInvalid(f"Parameter '{name}' must be a string.")
            if "minLength" in p and len(value) < p["minLength"]:
                raise InputInvalid(f"Parameter '{name}' must be at least {p['minLength']} characters.")
            if "maxLength" in p and len(value) > p["maxLength"]:
                raise InputInvalid(f"Parameter '{name}' must be at most {p['maxLength']} characters.")
            if kind == "image" and not value.startswith("https://"):
                raise InputInvalid(f"Parameter '{name}' must be an https:// URL.")
        elif kind == "select":
            allowed = [o["value"] for o in p.get("options", [])]
            if value not in allowed:
                raise InputInvalid(f"Parameter '{name}' must be one of {allowed}, got {value!r}.")
        elif kind in ("integer", "number"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputInvalid(f"Parameter '{name}' must be a number.")
            if kind == "integer" and not float(value).is_integer():
                raise InputInvalid(f"Parameter '{name}' must be an integer.")
            if "min" in p and value < p["min"]:
                raise InputInvalid(f"Parameter '{name}' must be >= {p['min']}.")
            if "max" in p and value > p["max"]:
                raise InputInvalid(f"Parameter '{name}' must be <= {p['max']}.")
        elif kind == "boolean":
            if not isinstance(value, bool):
                raise InputInvalid(f"Parameter '{name}' must be true or false.")
        elif kind == "images":
            if not isinstance(value, list) or len(value) > 4 or not all(
                isinstance(u, str) and u.startswith("https://") for u in value
            ):
                raise InputInvalid(f"Parameter '{name}' must be a list of at most 4 https:// URLs.")
    limits = model.get("text_limits")
    if limits:
        n = len(str(data.get("prompt", "")))
        if not limits["min_chars"] <= n <= limits["max_chars"]:
            raise InputInvalid(
                f"The text must be {limits['min_chars']}-{limits['max_chars']} characters, got {n}."
            )
    warnings = []
    for key in data:
        if key in declared:
            continue
        code = "unsupported_parameter" if key in ALL_PARAMETER_NAMES else "unknown_parameter"
        verb = "is not supported by this model" if code == "unsupported_parameter" else "is not recognized"
        warnings.append({
            "code": code,
            "parameter": key,
            "message": f'Parameter "{key}" {verb} and was ignored. Declared parameters: {", ".join(declared)}.',
        })
    return Checked(cost=price(model, data), warnings=warnings)


def price(model: dict[str, Any], data: dict[str, Any]) -> int:
    """One deterministic cost function for estimate and submit (API contract, shared/reference/clipia-api.md §12.2)."""
    pricing = model.get("pricing", {})
    minimum = int(pricing.get("minimum_credits", 0))
    if pricing.get("estimate_required"):
        # Stand-in for "depends on the source length": deterministic in the URL.
        url = str(data.get("video_url", ""))
        return max(minimum, 5 + sum(url.encode()) % 40)
    if pricing.get("billing_unit") == "per_1000_characters":
        chars = len(str(data.get("prompt", "")))
        return max(minimum, math.ceil(chars / int(pricing["unit_size"])) * int(pricing["credits"]))
    base = float(pricing.get("credits_base", pricing.get("credits", 0)))
    factor = 1.0
    defaults = {p["name"]: p.get("default") for p in _params(model)}
    for param, table in (pricing.get("multipliers") or {}).items():
        value = data.get(param, defaults.get(param))
        if isinstance(table, dict) and value in table:
            factor *= float(table[value])
    if pricing.get("billing_unit") == "per_5_seconds":
        factor *= float(data.get("duration", defaults.get("duration")) or 5) / 5
    if param_n := data.get("num_images"):
        if isinstance(param_n, int) and not isinstance(param_n, bool):
            factor *= param_n
    return max(minimum, math.ceil(base * factor - 1e-9))
