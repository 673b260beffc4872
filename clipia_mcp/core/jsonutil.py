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
    """Compact JSON for text mirrors (UTF-8 kept, no spaces); about 4x faster than ``json.dumps``."""
    return pydantic_core.to_json(value).decode()
