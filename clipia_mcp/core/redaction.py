"""Keeping credentials out of everything we print, log or return.

Every key that the process handles is registered here; :func:`redact` replaces
any registered secret (and anything shaped like a Clipia key) with a mask. It is
applied to error messages and installed as a logging filter.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import threading

_KEY_SHAPE = re.compile(r"clipia_(?:live|test)_[A-Za-z0-9_\-]{4,}")
_MASK = "[REDACTED]"
#: A run of this many characters of a secret (or of its base64 forms) is masked wherever it appears: an
#: echo of part of a key (its body without the prefix, its tail, "Bearer <key>" in base64) gives nothing away.
WINDOW = 12
#: Text every key of a kind shares (documented prefixes): a run of it alone gives nothing away.
_PUBLIC = "clipia_live_ clipia_test_ whsec_ Bearer "
_lock = threading.Lock()
_registered: set[str] = set()
_short: frozenset[str] = frozenset()  # secrets shorter than a window: masked only whole
_windows: set[str] = set()  # only ever grows; a membership test needs no lock


def register_secret(value: str | None, *, encoded: bool = True) -> None:
    """Remember a secret so that :func:`redact` masks it, any 12-character run of it and (``encoded``) its
    base64 forms. A hosted server's callers' keys are registered without those (~3 KB each instead of ~15)."""
    if not value or len(value) < 6 or value in _registered:
        return  # (registering again would rebuild the sets for nothing)
    global _short
    encodings = [base64.b64encode((lead + value).encode()).decode()[len(lead) * 4 // 3 + 2:-2]
                 for lead in (("", " ", "  ", "Bearer ") if encoded else ())]  # 3 alignments, an encoded header
    # A base64 fragment shorter than a window is too common to mask wherever it appears.
    forms = [value, *(e for e in encodings if len(e) >= WINDOW)]
    with _lock:
        _registered.add(value)
        if len(value) < WINDOW:
            _short = _short | {value}
        # In place: the cost of a registration is the secret's own length, however many are registered.
        _windows.update(w for f in forms if len(f) >= WINDOW for i in range(len(f) - WINDOW + 1)
                        if (w := f[i:i + WINDOW]) not in _PUBLIC)


def redact(text: str) -> str:
    """Return ``text`` with every known secret, every run of 12 of its characters and every key-shaped
    token masked."""
    if not text:
        return text
    known, windows = _short, _windows  # _short is replaced whole on register: iterating it needs no lock
    # Each run of the text looked up in the set: the cost is the text's length, however many keys (a hosted
    # server holds one per caller) are registered.
    spans = [(i, i + WINDOW) for i in range(len(text) - WINDOW + 1) if text[i:i + WINDOW] in windows] \
        if windows else []
    for secret in known:  # secrets shorter than a window: only whole
        at = text.find(secret)
        while at >= 0:
            spans.append((at, at + len(secret)))
            at = text.find(secret, at + 1)
    if spans:
        out, end = [], 0
        for start, stop in sorted(spans):
            if start > end:
                out.append(text[end:start])
                out.append(_MASK)
            elif not out or out[-1] != _MASK:
                out.append(_MASK)
            end = max(end, stop)
        out.append(text[end:])
        text = "".join(out)
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
        # A traceback is text too: format it now (handlers reuse exc_text) so it is redacted as well.
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FORMATTER = logging.Formatter()
