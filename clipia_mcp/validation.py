"""Checks on tool arguments, done before anything touches the network or a URL path."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from urllib.parse import urlparse

from clipia_mcp import constants as C
from clipia_mcp.errors import InvalidInputError

_SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
_IDEM = re.compile(r"^[A-Za-z0-9._:\-]{1,255}$")
PROVIDER_MODELS = frozenset({"reka/clips"})  # models served by a second provider (see clipia_mcp.reka)
STATUSES = ("IN_QUEUE", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELED")


def request_id(value: str) -> str:
    """A Clipia request id must be a UUID; returns its canonical lower-case form."""
    try:
        return str(uuid.UUID(value.strip()))
    except (ValueError, AttributeError):
        raise InvalidInputError(
            f"request_id must be a UUID like 764cabcf-b745-4b3e-ae38-1200304cf45b, got {value[:80]!r}."
        ) from None


def model_slug(value: str) -> str:
    """Model slugs are lower-case letters, digits, '.', '_' and '-' (no slashes, no spaces)."""
    slug = value.strip()
    if slug in PROVIDER_MODELS:
        return slug
    if not _SLUG.match(slug):
        raise InvalidInputError(
            f"model must be a Clipia model slug such as 'nano-banana-2' (lower-case letters, digits, '.', '_', '-'), "
            f"got {value[:80]!r}. Call list_models to see the catalogue."
        )
    return slug


def idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not _IDEM.match(value):
        raise InvalidInputError(
            "idempotency_key must be 1-255 characters of letters, digits, '.', '_', ':' or '-'."
        )
    return value


def _depth(value: Any, level: int = 1) -> int:
    if isinstance(value, dict):
        return max([level, *(_depth(v, level + 1) for v in value.values())])
    if isinstance(value, list):
        return max([level, *(_depth(v, level + 1) for v in value)])
    return level


def generation_input(value: Any) -> dict[str, Any]:
    """The model ``input`` object: a JSON object, bounded in size, depth and prompt length."""
    if not isinstance(value, dict):
        raise InvalidInputError("input must be a JSON object, e.g. {\"prompt\": \"a red fox\"}.")
    try:
        encoded = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise InvalidInputError("input must contain only JSON values (no NaN or Infinity).") from None
    if len(encoded.encode()) > C.MAX_INPUT_BYTES:
        raise InvalidInputError(f"input is larger than {C.MAX_INPUT_BYTES // 1024} KiB.")
    if _depth(value) > C.MAX_INPUT_DEPTH:
        raise InvalidInputError(f"input is nested deeper than {C.MAX_INPUT_DEPTH} levels.")
    prompt = value.get("prompt")
    if isinstance(prompt, str) and len(prompt) > C.MAX_PROMPT_CHARS:
        raise InvalidInputError(f"input.prompt is longer than {C.MAX_PROMPT_CHARS} characters.")
    return value


def webhook_url(value: str | None, *, allow_loopback: bool = False) -> str | None:
    if value is None:
        return None
    parsed = urlparse(value.strip())
    if parsed.scheme == "https" and parsed.hostname and len(value) <= 2048:
        return value.strip()
    if allow_loopback and parsed.scheme == "http" and parsed.hostname in ("127.0.0.1", "localhost"):
        return value.strip()
    raise InvalidInputError("webhook_url must be an https:// URL.")


def status_filter(value: str | None) -> str | None:
    if value is None:
        return None
    upper = value.strip().upper()
    if upper not in STATUSES:
        raise InvalidInputError(f"status must be one of {', '.join(STATUSES)}.")
    return upper


def wait_timeout(value: float | None, maximum: float) -> float | None:
    """A requested wait, capped at ``maximum``; None (no request) stays None."""
    if value is None:
        return None
    if value != value or value < 0:  # NaN or negative
        raise InvalidInputError("timeout_s must be a non-negative number of seconds.")
    return min(float(value), maximum)
