"""Canonical JSON: one encoding for hashing and storing, so equal values always give equal text."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pydantic_core


def dumps_canonical(value: Any) -> str | None:
    """Compact JSON with sorted keys (``None`` stays ``None``, for nullable columns)."""
    return None if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True)


def canonical_hash(value: Any) -> str:
    """SHA-256 hex digest of the canonical JSON of ``value``."""
    return hashlib.sha256(json.dumps(value, separators=(",", ":"), sort_keys=True).encode()).hexdigest()


def dumps_compact(value: Any) -> str:
    """Compact JSON for text mirrors of JSON values (UTF-8 kept, no spaces; NaN and infinities as ``null``, as the
    SDK writes structured content). Give it JSON-native values, as tool results are: a ``datetime`` or dataclass
    would be spelled orjson's way, not pydantic's.

    orjson where it can (every waiter's answer has a text mirror: 9 k instructions where ``pydantic_core`` takes
    24 k and ``json.dumps`` 77 k), imported on first use (startup does not need it); what orjson refuses (an
    integer past 64 bits, a key that is not a string) goes through ``pydantic_core``.
    """
    global _orjson
    if _orjson is None:
        import orjson

        _orjson = orjson
    try:
        text: str = _orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return pydantic_core.to_json(value, inf_nan_mode="null").decode()
    return text


_orjson: Any = None
