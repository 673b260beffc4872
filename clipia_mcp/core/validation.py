"""Checks on tool arguments, done before anything touches the network or a URL path.

Each failure is an :class:`~clipia_mcp.core.errors.InvalidInputError` (``invalid_input``)
naming the argument.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import uuid
from collections.abc import Collection
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from clipia_mcp.core import constants as C
from clipia_mcp.core.errors import InvalidInputError
from clipia_mcp.core.records import STATUSES

_SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
#: The API accepts any non-empty string up to 255 characters (contract §10); it travels in a header, so
#: only printable ASCII and spaces (no control characters, no line breaks).
_IDEM = re.compile(r"^[\x20-\x7e]{1,255}$")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def request_id(value: str) -> str:
    """A request id must be a UUID; returns its canonical lower-case form."""
    try:
        return str(uuid.UUID(value.strip()))
    except (ValueError, AttributeError):
        raise InvalidInputError(
            f"request_id must be a UUID like 764cabcf-b745-4b3e-ae38-1200304cf45b, got {value[:80]!r}."
        ) from None


def model_slug(value: str, extra: Collection[str] = ()) -> str:
    """Model slugs are lower-case letters, digits, '.', '_' and '-' (no slashes, no spaces).

    ``extra``: slugs of other providers (e.g. ``reka/clips``), accepted exactly as they are.
    """
    slug = value.strip()
    if slug in extra:
        return slug
    if not _SLUG.match(slug):
        raise InvalidInputError(
            f"model must be a model slug such as 'nano-banana-2' (lower-case letters, digits, '.', '_', '-'), "
            f"got {value[:80]!r}. Call list_models to see the catalogue."
        )
    return slug


def idempotency_key(value: str | None) -> str | None:
    """1-255 printable ASCII characters, no stricter than the API (it travels in an HTTP header)."""
    if value is None:
        return None
    if not _IDEM.fullmatch(value) or value != value.strip():  # a header value loses outer spaces
        raise InvalidInputError(
            "idempotency_key must be 1-255 printable ASCII characters, without line breaks or outer spaces."
        )
    return value


def _depth(value: Any, level: int = 1) -> int:
    if isinstance(value, dict):
        return max([level, *(_depth(v, level + 1) for v in value.values())])
    if isinstance(value, list):
        return max([level, *(_depth(v, level + 1) for v in value)])
    return level


def generation_input(value: Any) -> dict[str, Any]:
    """The model ``input`` object: a JSON object, bounded in size, depth and prompt length, valid UTF-8."""
    if not isinstance(value, dict):
        raise InvalidInputError("input must be a JSON object, e.g. {\"prompt\": \"a red fox\"}.")
    try:
        encoded = json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a ValueError too: catch it first
        raise InvalidInputError("input contains text that is not valid Unicode (a lone surrogate).") from None
    except (TypeError, ValueError):
        raise InvalidInputError("input must contain only JSON values (no NaN or Infinity).") from None
    if len(encoded) > C.MAX_INPUT_BYTES:
        raise InvalidInputError(f"input is larger than {C.MAX_INPUT_BYTES // 1024} KiB.")
    if _depth(value) > C.MAX_INPUT_DEPTH:
        raise InvalidInputError(f"input is nested deeper than {C.MAX_INPUT_DEPTH} levels.")
    prompt = value.get("prompt")
    if isinstance(prompt, str) and len(prompt) > C.MAX_PROMPT_CHARS:
        raise InvalidInputError(f"input.prompt is longer than {C.MAX_PROMPT_CHARS} characters.")
    return value


def private_host(host: str) -> bool:
    """Whether ``host`` (a name or an IP literal in any spelling) is loopback, private, link-local or
    otherwise not public. Names are judged by their spelling only; resolving them is the caller's part."""
    name = host.strip("[]").lower().rstrip(".")
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(name)
    except ValueError:
        # The other IPv4 spellings resolvers accept (inet_aton): 127.1, 2130706433, 0x7f000001, 0177.0.0.1, 0.
        if not _NUMERIC_HOST.fullmatch(name):
            return False
        try:
            ip = ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            return False
    return not ip.is_global or ip.is_multicast


_NUMERIC_HOST = re.compile(r"[0-9a-fx.]+")


def webhook_url(value: str | None, *, allow_loopback: bool = False) -> str | None:
    """A caller-supplied webhook URL: https, no control characters, no userinfo, no private address.

    ``allow_loopback`` (sandbox and tests only) also admits ``http://127.0.0.1`` / ``localhost``.
    """
    if value is None:
        return None
    if len(value) > 2048 or _CONTROL.search(value):
        raise InvalidInputError("webhook_url must be at most 2048 characters with no spaces or control characters.")
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise InvalidInputError("webhook_url is not a valid URL.") from None
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidInputError("webhook_url must not contain a user name or password.")
    if not host:
        raise InvalidInputError("webhook_url must name a host.")
    loopback = host.strip("[]") in ("127.0.0.1", "::1", "localhost")
    if allow_loopback and loopback and parts.scheme in ("http", "https"):
        return value
    if parts.scheme != "https":
        raise InvalidInputError("webhook_url must be an https:// URL.")
    if private_host(host):
        raise InvalidInputError("webhook_url must point to a public host (not loopback, private or link-local).")
    return value


def status_filter(value: str | None) -> str | None:
    """One of the request statuses (any case), or None."""
    if value is None:
        return None
    upper = value.strip().upper()
    if upper not in STATUSES:
        raise InvalidInputError(f"status must be one of {', '.join(STATUSES)}.")
    return upper


def time_bound(value: str | None, name: str, *, end: bool = False) -> float | None:
    """A date (``2026-11-24``, UTC; as an end bound it includes that whole day) or an ISO 8601 time, as epoch."""
    if value is None or not value.strip():
        return None
    raw = value.strip()
    try:
        if len(raw) == 10:
            moment = datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=timezone.utc)
            if end:
                moment = moment + timedelta(days=1) if moment.year < 9999 else _LAST_MOMENT
        else:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(f"{name} must be a date like 2026-11-24 or an ISO 8601 time, got {raw[:40]!r}.") \
            from None
    try:
        ts = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()
    except OverflowError:  # year 1 or 9999 pushed past the calendar by its UTC offset
        ts = 0.0 if moment.year < 1970 else _LAST_MOMENT.timestamp()
    # Nothing is older than 1970 or newer than 9999: a bound past either end means "from/until the end".
    return min(max(ts, 0.0), _LAST_MOMENT.timestamp())


_LAST_MOMENT = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
