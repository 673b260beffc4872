"""Canonical JSON: one encoding for hashing and storing, so equal values always give equal text."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def dumps_canonical(value: Any) -> str | None:
    """Compact JSON with sorted keys (``None`` stays ``None``, for nullable columns)."""
    return None if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True)


def canonical_hash(value: Any) -> str:
    """SHA-256 hex digest of the canonical JSON of ``value``."""
    return hashlib.sha256(json.dumps(value, separators=(",", ":"), sort_keys=True).encode()).hexdigest()
