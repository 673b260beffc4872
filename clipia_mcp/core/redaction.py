"""Keeping credentials out of everything we print, log or return.

Every key that the process handles is registered here; :func:`redact` replaces
any registered secret (and anything shaped like a Clipia key) with a mask. It is
applied to error messages and installed as a logging filter.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading

_KEY_SHAPE = re.compile(r"clipia_(?:live|test)_[A-Za-z0-9_\-]{4,}")
_MASK = "[REDACTED]"
_lock = threading.Lock()
_known: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret so that :func:`redact` masks it wherever it appears."""
    if value and len(value) >= 6:
        with _lock:
            _known.add(value)


def redact(text: str) -> str:
    """Return ``text`` with every known secret and every key-shaped token masked."""
    if not text:
        return text
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, _MASK)
    return _KEY_SHAPE.sub(_MASK, text)


def fingerprint(secret: str) -> str:
    """A stable, non-reversible identifier for a key (used to scope stored data)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:32]


def mask(secret: str) -> str:
    """A short human hint for a key: its prefix and the last 4 characters."""
    if len(secret) <= 8:
        return _MASK
    prefix = "clipia_live_" if secret.startswith("clipia_live_") else (
        "clipia_test_" if secret.startswith("clipia_test_") else ""
    )
    return f"{prefix}…{secret[-4:]}"


class RedactingFilter(logging.Filter):
    """A logging filter that redacts secrets from the fully formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not kill logging
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True
